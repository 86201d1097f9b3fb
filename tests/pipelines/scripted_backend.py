"""A deterministic generation backend for generator tests, registered as "scripted".

Listed in WINNOW_STEP_MODULES by the tests (the workers they start import it too).
It answers from what the prompt holds, so every reply can be predicted:

- a prompt containing MALFORMED always gets a reply with no fields;
- a prompt containing FLAKY gets one with the first seed only (the retry parses);
- otherwise the reply follows the template: JSON instruction/response or question/answer
  pairs made from the document's first words, a rewrite, a register change, or a yes/no
  verdict (yes only when the context contains ANSWERABLE).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pipelines.generation.base import Backend, Generation, GenerationParams, Prompt
from pipelines.steps.derive import BACKEND_FACTORIES

GARBAGE = "I am sorry, I cannot help with that."


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, model: str, style: str = "json") -> None:
        super().__init__(model)
        self.style = style
        self.calls: list[tuple[list[Prompt], GenerationParams]] = []

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "style": self.style}

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        # A retry appends turns to the conversation: the reply follows its first message.
        texts = [p if isinstance(p, str) else p[0]["content"] for p in prompts]
        self.calls.append((list(prompts), params))
        return [Generation(self._reply(t, params), len(t.split()), 10, "stop") for t in texts]

    def _reply(self, prompt: str, params: GenerationParams) -> str:
        document = prompt.split("Document:\n", 1)[-1].strip()
        words = document.split()
        if "MALFORMED" in prompt or ("FLAKY" in prompt and params.seed % 2 == 0) or not words:
            return GARBAGE
        if '"instruction"' in prompt:
            pair = {"instruction": f"Summarise: {' '.join(words[:4])}", "response": document}
            return f"Sure!\n```json\n{json.dumps(pair)}\n```"
        if '"question"' in prompt:
            n = int(re.search(r"Write (\d+) question", prompt).group(1))  # type: ignore[union-attr]
            pairs = [
                {
                    "question": f"What about {words[i % len(words)]}?",
                    "answer": words[i % len(words)],
                }
                for i in range(n)
            ]
            if self.style == "delimited":
                return "\n".join(f"Question: {p['question']}\nAnswer: {p['answer']}" for p in pairs)
            return json.dumps(pairs)
        if "Rewrite the document" in prompt:
            return f"Cleaned: {document}"
        if "register" in prompt and "Question:" in prompt:
            return "hey, " + prompt.rsplit("Question:", 1)[1].strip().lower()
        if "yes or no" in prompt:
            return "Yes." if "ANSWERABLE" in prompt else "No, it cannot."
        return GARBAGE


def scripted(config: dict[str, Any]) -> Backend:
    return ScriptedBackend(config["model"], style=config.get("style", "json"))


BACKEND_FACTORIES["scripted"] = scripted
