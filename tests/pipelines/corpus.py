"""A few hundred varied documents for the step tests, made from the standard library's docstrings
plus noisy variants (repeated lines, bullets, ellipses, boilerplate, code, other languages)."""

from __future__ import annotations

import importlib
import inspect
import random
import warnings
from collections.abc import Callable
from functools import cache

MODULES = (
    "abc argparse array ast asyncio base64 bisect calendar cmath codecs collections contextlib "
    "copy csv dataclasses datetime decimal difflib doctest email enum fnmatch fractions "
    "functools glob gzip hashlib heapq hmac html http.client inspect io ipaddress itertools "
    "json logging math numbers operator os pathlib pickle pprint queue random re secrets "
    "selectors shutil signal socket sqlite3 ssl statistics string struct subprocess tarfile "
    "tempfile textwrap threading time typing unittest urllib.parse uuid warnings weakref zipfile"
).split()

FOREIGN = (
    "Le chat dort sur le canapé depuis ce matin. Il ne veut pas sortir parce qu'il pleut. "
    "Nous irons au marché demain si le temps le permet.",
    "Der Hund läuft jeden Morgen durch den Park. Danach trinkt er Wasser und schläft. "
    "Am Wochenende fahren wir an den See.",
    "El tren sale a las ocho de la mañana. Compramos los billetes ayer por la tarde. "
    "Mi hermana viene con nosotros.",
    "Москва — столица России. Летом здесь тепло, а зимой идёт снег. Мы гуляли по парку.",
    "今日は天気がいいので、公園で散歩しました。明日は雨が降るそうです。",
    "北京是中国的首都。我们明天去图书馆看书。",
)
BOILERPLATE = (
    "Please enable JavaScript to view this page.",
    "This website uses cookies to improve your experience.",
    "By continuing you agree to our Terms of Use and Privacy Policy.",
    "Read our cookie policy for more details about how we work.",
    '<script type="text/javascript">var x = {a: 1};</script>',
    "Home | About | Contact",
    "Share this article",
    "Copyright 2024. All rights reserved.",
)
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua."
)


@cache
def docstrings() -> tuple[str, ...]:
    found: dict[str, None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # typing.io and the like
        for name in MODULES:
            module = importlib.import_module(name)
            for obj in [module, *vars(module).values()]:
                if isinstance(obj, (int, float, str, bytes, tuple, list, dict, frozenset, set)):
                    continue
                doc = inspect.getdoc(obj)
                if doc:
                    found[doc] = None
    return tuple(found)


@cache
def sources() -> tuple[str, ...]:
    import json
    import textwrap

    code: list[Callable[..., object]] = [
        textwrap.fill,
        textwrap.dedent,
        json.dumps,
        random.Random.shuffle,
        importlib.reload,
    ]
    return tuple(inspect.getsource(obj) for obj in code)


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()] or [text]


def _variants(rng: random.Random, base: str) -> list[str]:
    lines = _lines(base)
    repeated = lines + rng.choices(lines, k=max(1, len(lines) // 2))
    rng.shuffle(repeated)
    paragraphs = base.split("\n\n")
    return [
        "\n".join(repeated),
        "\n\n".join(paragraphs + paragraphs[: max(1, len(paragraphs) // 2)]),
        "\n".join(rng.choice(("- ", "• ", "  - ", "* ")) + line for line in lines),
        "\n".join(line.rstrip(".") + rng.choice(("...", " …", "", "...")) for line in lines),
        " ".join(f"#{w}" if rng.random() < 0.3 else w for w in base.split(" ")),
        "\n".join(rng.sample(BOILERPLATE, 3) + lines + rng.sample(BOILERPLATE, 2)),
        base.replace("\n", "\r\n"),
        base.replace(". ", ". [1] ").replace("\n\n", " [edit]\n\n"),
        " ".join(base.split()[: rng.randint(1, 12)]),
        (base + " ") * rng.randint(2, 5),
    ]


@cache
def documents() -> tuple[str, ...]:
    """About 650 documents, the same on every call and in every process."""
    rng = random.Random(20240601)
    pool = list(docstrings())
    rng.shuffle(pool)
    docs: list[str] = pool[:220]
    for _ in range(120):
        docs.append("\n\n".join(rng.sample(pool, rng.randint(3, 15))))
    for base in rng.sample(docs[220:], 30) + rng.sample(pool[:220], 10):
        docs.extend(_variants(rng, base))
    docs.extend(sources())
    docs.extend(FOREIGN)
    docs.extend("\n".join(rng.sample(FOREIGN, 3)) for _ in range(5))
    docs.extend(
        [
            "",
            " ",
            "\n\n\n",
            "...",
            "### --- ***",
            "\u200b",
            "\xa0\n\xa0",
            LOREM,
            "\n".join([LOREM, *rng.sample(pool, 1)]) * 3,
            '{"key": "value", "list": [1, 2, 3]}',
            "int main() {\n    return 0;\n}\n",
            "word " * 60,
            "a\u2028b\u2029c\x1cd\x1de\x85f\ng",
            "x" * 1200 + " is a very long word. This line has more words. And more.",
            "Lines end here.\nAnd here!\nAnd here?\n" * 4,
            "The " + "the and of to with be that have " * 8 + ".",
            "... ... ...\n… … …\nwhat …\nthe end...",
        ]
    )
    return tuple(docs)
