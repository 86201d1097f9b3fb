"""LLM-as-judge as a signal step (``llm_judge``): a rubric prompt, a panel of judges, pooled scores.

How a batch of documents is judged:

1. Each document is rendered into the rubric (a sandboxed Jinja template with ``text``, cut to
   ``max_chars``, and ``meta``; also ``minimum``, ``maximum``, ``attributes``, ``definitions``
   (HelpSteer2's, by attribute) and ``format``, the line saying how to reply). The default
   rubric is FineWeb-Edu's educational value (0-5) for one score, or HelpSteer2's attribute
   definitions when ``attributes`` are set.
2. Every judge of the panel (a generation backend config with a name) answers every prompt of
   the batch in one ``generate`` call. A reply is read as one number, or as a JSON object with
   a number per attribute, each within ``minimum``-``maximum``.
3. A reply that cannot be read is asked again, up to ``max_retries`` times: the conversation
   goes on with the judge's reply and the reason it could not be used. Every unreadable reply
   is counted; a judge still unreadable after its retries gives no score for that document.
4. The scores of the judges that gave one are pooled per attribute by ``aggregation`` (mean,
   majority, min: PoLL's panel); each judge's own scores are kept beside the pooled ones.
   A document that no judge scored gets None, never a made-up number.

A backend that fails outright (a model that cannot load, an endpoint that keeps refusing)
fails the batch with the judge's name: a panel silently short of a judge would pool different
votes for different documents.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.generation.base import Backend, GenerationError, GenerationParams, Prompt
from pipelines.steps.base import Document, Param, SignalSpec, Step, StepParamError, register
from pipelines.steps.judging import AGGREGATIONS, ReplyError, Scale, Scores, pool, reask
from pipelines.synthetic.prompts import PromptTemplateError, template_check

logger = logging.getLogger(__name__)

PREFIX = re.compile(r"[a-z][a-z0-9_]{0,59}\Z")
ATTRIBUTE = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
JUDGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
# Backends that run a model in the worker (on its GPU when it has one); "http" calls a server.
LOCAL_BACKENDS = ("transformers", "vllm")
RESERVED = ("per_judge", "malformed", "failed")

EDUCATIONAL_TEMPLATE = """\
Below is an extract from a web page. Rate its educational value for teaching from primary \
school to grade school levels, adding up points:
- Add 1 point if the extract gives some basic information relevant to educational topics, \
even if it also holds irrelevant or non-academic content such as advertisements.
- Add another point if it addresses elements pertinent to education but does not align \
closely with educational standards, mixing educational and non-educational material.
- Award a third point if it is appropriate for educational use and introduces key concepts \
relevant to school curricula, coherently though perhaps not comprehensively.
- Grant a fourth point if it is highly relevant and beneficial for education at grade school \
level, with a clear and consistent writing style, like a chapter of a textbook or a tutorial.
- Give a fifth point if it is outstanding in its educational value, perfectly suited for \
teaching at primary or grade school level, with no non-educational content.
An extract that meets none of these gets {{ minimum }}.

The extract:
{{ text }}

{{ format }}
"""

ATTRIBUTE_TEMPLATE = """\
Rate the response below on each attribute, from {{ minimum }} (least) to {{ maximum }} (most):
{% for name in attributes %}- {{ name }}{% if name in definitions %}: {{ definitions[name] }}\
{% endif %}
{% endfor %}
{% if meta.get("prompt") %}The prompt:
{{ meta.get("prompt") }}

{% endif %}The response:
{{ text }}

{{ format }}
"""

# HelpSteer2's attribute definitions, shown by the default attribute rubric.
DEFINITIONS = {
    "helpfulness": "overall helpfulness of the response to the prompt",
    "correctness": "inclusion of all pertinent facts without errors",
    "coherence": "consistency and clarity of expression",
    "complexity": "intellectual depth needed to write the response (basic language "
    "competency to deep domain expertise)",
    "verbosity": "amount of detail, relative to what the prompt asks for",
}


@dataclass(frozen=True)
class Judge:
    """One panel member: its name in signals and the backend config it is built from."""

    name: str
    config: dict[str, Any]

    @property
    def local(self) -> bool:
        return self.config["backend"] in LOCAL_BACKENDS

    def label(self) -> str:
        return f"judge {self.name!r} ({self.config['backend']}, {self.config['model']})"


def parse_panel(value: Sequence[Any]) -> tuple[Judge, ...]:
    """The panel from the ``judges`` parameter; StepParamError names the judge and the key."""
    from pipelines.generation.registry import check_config

    where = "step 'llm_judge', parameter 'judges'"
    if not value:
        raise StepParamError(
            f"{where}: give at least one judge, like "
            '[{"name": "qwen", "backend": "transformers", "model": "Qwen/Qwen2.5-0.5B-Instruct"}]'
        )
    judges: list[Judge] = []
    for position, entry in enumerate(value, start=1):
        if not isinstance(entry, dict):
            raise StepParamError(f"{where}: judge {position} must be an object, got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not JUDGE_NAME.match(name):
            raise StepParamError(
                f"{where}: judge {position} needs a 'name' of letters, digits, '.', '_' or '-' "
                f"(at most 64), got {name!r}"
            )
        if any(j.name == name for j in judges):
            raise StepParamError(f"{where}: two judges are named {name!r}; names must differ")
        config = {k: v for k, v in entry.items() if k != "name"}
        try:
            check_config(config)
        except GenerationError as exc:
            raise StepParamError(f"{where}: judge {name!r}: {exc}") from exc
        judges.append(Judge(name, config))
    return tuple(judges)


@register
class LLMJudge(Step):
    """Scores from a panel of LLM judges answering a rubric; see the module docstring.

    Signals: ``<prefix>_score`` (or ``<prefix>_<attribute>`` per attribute), the pooled float;
    ``<prefix>_per_judge``, each judge's scores ({judge: score, or {attribute: score}, or None});
    ``<prefix>_malformed``, the replies that could not be read (retries included);
    ``<prefix>_failed``, the judges that gave no score.
    """

    name = "llm_judge"
    version = "1"
    description = "Rubric scores from a panel of LLM judges (PoLL), with retries on bad replies."
    device = "gpu"  # "cpu" for a panel of HTTP judges only (set per instance)
    params = (
        Param(
            "judges",
            list,
            [],
            'the panel: [{"name": ..., "backend": "transformers"|"vllm"|"http", "model": ..., '
            "backend options}] (required)",
        ),
        Param(
            "template",
            str,
            "",
            "rubric (Jinja; variables text, meta, minimum, maximum, attributes, definitions, "
            "format); '': educational value, or HelpSteer2 definitions when attributes are set",
        ),
        Param(
            "attributes",
            tuple,
            (),
            "attributes scored in a JSON reply (HelpSteer2: helpfulness, correctness, "
            "coherence, complexity, verbosity with maximum 4); empty: one number",
        ),
        Param("minimum", float, 0.0, "lowest score on the scale"),
        Param("maximum", float, 5.0, "highest score on the scale"),
        Param("aggregation", str, "mean", "how the panel is pooled", choices=AGGREGATIONS),
        Param("max_retries", int, 2, "re-asks after an unreadable reply", minimum=0, maximum=10),
        Param("max_new_tokens", int, 64, "tokens per reply", minimum=1, maximum=8192),
        Param("temperature", float, 0.0, "sampling temperature (0: greedy)", minimum=0.0),
        Param("seed", int, 0, "sampling seed"),
        Param("chat", bool, True, "send chat messages (False: plain text for base models)"),
        Param(
            "max_chars",
            int,
            6000,
            "characters of the text put in the rubric (None: all)",
            nullable=True,
            minimum=1,
        ),
        Param("prefix", str, "judge", "signal name prefix, [a-z][a-z0-9_]*"),
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        config = self.config
        where = f"step {self.name!r}, parameter"
        if not PREFIX.match(config["prefix"]):
            raise StepParamError(
                f"{where} 'prefix': {config['prefix']!r} must be at most 60 lowercase letters, "
                "digits and underscores, starting with a letter"
            )
        attributes = config["attributes"]
        for attribute in attributes:
            if not isinstance(attribute, str) or not ATTRIBUTE.match(attribute):
                raise StepParamError(
                    f"{where} 'attributes': {attribute!r} must be lowercase letters, digits and "
                    "underscores, starting with a letter"
                )
            if attribute in RESERVED or attribute == "score":
                raise StepParamError(
                    f"{where} 'attributes': {attribute!r} is a name this step uses itself"
                )
        if len(set(attributes)) != len(attributes):
            raise StepParamError(f"{where} 'attributes': {list(attributes)} repeats a name")
        if config["minimum"] >= config["maximum"]:
            raise StepParamError(
                f"{where} 'maximum': {config['maximum']} must be above minimum {config['minimum']}"
            )
        self.judges = parse_panel(config["judges"])
        self.scale = Scale(config["minimum"], config["maximum"], tuple(attributes))
        source = config["template"] or (ATTRIBUTE_TEMPLATE if attributes else EDUCATIONAL_TEMPLATE)
        try:
            self.template = template_check(name="llm_judge rubric", source=source)
        except PromptTemplateError as exc:
            raise StepParamError(f"{where} 'template': {exc}") from exc
        self.generation = GenerationParams(
            max_new_tokens=config["max_new_tokens"],
            temperature=config["temperature"],
            seed=config["seed"],
        )
        self.device = "gpu" if any(j.local for j in self.judges) else "cpu"

    def signals(self) -> list[SignalSpec]:
        prefix, scale = self.config["prefix"], self.scale
        panel = ", ".join(j.name for j in self.judges)
        how = f"{self.config['aggregation']} of judges {panel}, {scale.describe_range()}"
        pooled = [
            SignalSpec(f"{prefix}_{key}", "float", f"{key}: {how}; None when no judge scored")
            for key in scale.keys
        ]
        return [
            *pooled,
            SignalSpec(
                f"{prefix}_per_judge", "json", "each judge's scores (None: no usable reply)"
            ),
            SignalSpec(f"{prefix}_malformed", "int", "judge replies that could not be read"),
            SignalSpec(f"{prefix}_failed", "int", "judges that gave no usable score"),
        ]

    def backend(self, judge: Judge) -> Backend:
        """The judge's generation backend, built once per process and config."""
        from pipelines.generation.registry import backend_from_config

        return backend_from_config(judge.config)

    def prompt(self, doc: Document) -> Prompt:
        limit = self.config["max_chars"]
        text = doc.text if limit is None else doc.text[:limit]
        scale = self.scale
        try:
            rendered = self.template.render(
                text=text,
                meta=doc.meta,
                minimum=_number(scale.minimum),
                maximum=_number(scale.maximum),
                attributes=list(scale.attributes),
                definitions=DEFINITIONS,
                format=scale.instruction(),
            )
        except PromptTemplateError as exc:
            raise StepParamError(
                f"step 'llm_judge', parameter 'template': document {doc.id}: {exc}"
            ) from exc
        if self.config["chat"]:
            return [{"role": "user", "content": rendered}]
        return rendered

    def ask(self, judge: Judge, prompts: Sequence[Prompt]) -> tuple[list[Scores | None], list[int]]:
        """The judge's scores for each prompt (None: unreadable after every retry) and how many
        of its replies to each could not be read."""
        started = time.perf_counter()
        backend = self.backend(judge)
        scores: list[Scores | None] = [None] * len(prompts)
        malformed = [0] * len(prompts)
        current = list(prompts)
        pending = list(range(len(prompts)))
        for _ in range(self.config["max_retries"] + 1):
            if not pending:
                break
            try:
                replies = backend.generate([current[i] for i in pending], self.generation)
            except GenerationError as exc:
                raise GenerationError(f"{judge.label()}: {exc}") from exc
            if len(replies) != len(pending):
                raise GenerationError(
                    f"{judge.label()}: {len(replies)} replies to {len(pending)} prompts"
                )
            unread = []
            for i, reply in zip(pending, replies, strict=True):
                try:
                    scores[i] = self.scale.parse(reply.text)
                except ReplyError as exc:
                    malformed[i] += 1
                    current[i] = reask(current[i], reply.text, str(exc), self.scale)
                    unread.append(i)
            pending = unread
        logger.info(
            "llm_judge %s: %d prompts, %d unreadable replies, %d unscored, %.2fs",
            judge.name,
            len(prompts),
            sum(malformed),
            len(pending),
            time.perf_counter() - started,
        )
        return scores, malformed

    def run(self, batch: Sequence[Document]) -> dict[str, list[Any]]:
        prefix, keys = self.config["prefix"], self.scale.keys
        prompts = [self.prompt(doc) for doc in batch]
        votes: dict[str, list[Scores | None]] = {}
        malformed = [0] * len(batch)
        for judge in self.judges:
            votes[judge.name], bad = self.ask(judge, prompts) if prompts else ([], [])
            malformed = [a + b for a, b in zip(malformed, bad, strict=True)]
        out: dict[str, list[Any]] = {f"{prefix}_{key}": [] for key in keys}
        out.update({f"{prefix}_per_judge": [], f"{prefix}_malformed": malformed})
        out[f"{prefix}_failed"] = []
        for i in range(len(batch)):
            mine = [votes[j.name][i] for j in self.judges]
            pooled = pool(mine, self.scale, self.config["aggregation"])
            for key in keys:
                out[f"{prefix}_{key}"].append(None if pooled is None else pooled[key])
            out[f"{prefix}_per_judge"].append(
                {j.name: self._shown(v) for j, v in zip(self.judges, mine, strict=True)}
            )
            out[f"{prefix}_failed"].append(sum(v is None for v in mine))
        return out

    def _shown(self, scores: Scores | None) -> float | Scores | None:
        if scores is None or self.scale.attributes:
            return scores
        return scores["score"]


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value
