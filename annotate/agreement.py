"""Inter-annotator agreement measures (pure functions, no Django).

Each measure returns a ``Score``: the value, or None with the reason it cannot be
computed (no overlapping ratings, a single category only) instead of dividing by zero.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOMINAL = "nominal"
ORDINAL = "ordinal"
INTERVAL = "interval"
LEVELS = (NOMINAL, ORDINAL, INTERVAL)


@dataclass(frozen=True)
class Score:
    """An agreement value, or None and the ``reason`` why; ``n`` counts what it rests on."""

    value: float | None
    reason: str = ""
    n: int = 0


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> Score:
    """Cohen's kappa of two raters' nominal labels, item by item (``n``: items rated by both).

    Cohen (1960), "A coefficient of agreement for nominal scales", Educational and
    Psychological Measurement 20(1): kappa = (p_o - p_e) / (1 - p_e), with p_o the share
    of items on which the raters agree and p_e = sum over categories c of
    p_a(c) * p_b(c), the agreement expected from each rater's own label frequencies.
    Items that either rater left out (None) are dropped.
    """
    if len(a) != len(b):
        raise ValueError(f"the raters rated {len(a)} and {len(b)} items; give the same items")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return Score(None, "no item was rated by both raters")
    observed = sum(x == y for x, y in pairs) / n
    count_a = Counter(x for x, _ in pairs)
    count_b = Counter(y for _, y in pairs)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1:
        return Score(None, "both raters used one and the same label only", n)
    return Score((observed - expected) / (1 - expected), n=n)


def _coincidences(
    units: Iterable[Sequence[Any]],
) -> tuple[dict[tuple[Any, Any], float], int]:
    """The coincidence matrix o_ck and the number of pairable units.

    Each unit with m_u >= 2 values adds, for every ordered pair of values from different
    raters, 1 / (m_u - 1) to o_ck; units with fewer values are not pairable.
    """
    matrix: dict[tuple[Any, Any], float] = {}
    pairable = 0
    for unit in units:
        counts = Counter(v for v in unit if v is not None)
        m = sum(counts.values())
        if m < 2:
            continue
        pairable += 1
        for c, k in itertools.product(counts, repeat=2):
            pairs = counts[c] * (counts[c] - 1) if c == k else counts[c] * counts[k]
            if pairs:
                matrix[c, k] = matrix.get((c, k), 0.0) + pairs / (m - 1)
    return matrix, pairable


def _delta_squared(level: str, marginals: Mapping[Any, float]) -> dict[tuple[Any, Any], float]:
    """The difference function delta^2_ck of the level of measurement, for every value pair."""
    values = list(marginals)
    if level == NOMINAL:
        return {(c, k): float(c != k) for c in values for k in values}
    if level == INTERVAL:
        return {(c, k): float(c - k) ** 2 for c in values for k in values}
    # Ordinal: (sum of n_g for g from c to k, minus (n_c + n_k) / 2) squared, over ranks.
    ranked = sorted(values)
    cumulative = list(itertools.accumulate(marginals[v] for v in ranked))
    position = {v: i for i, v in enumerate(ranked)}
    deltas = {}
    for c in values:
        for k in values:
            low, high = sorted((position[c], position[k]))
            between = cumulative[high] - (cumulative[low - 1] if low else 0.0)
            deltas[c, k] = (between - (marginals[c] + marginals[k]) / 2) ** 2
    return deltas


def krippendorff_alpha(units: Iterable[Sequence[Any]], level: str = NOMINAL) -> Score:
    """Krippendorff's alpha for any number of raters with missing data (``n``: pairable units).

    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", Annenberg School
    for Communication, University of Pennsylvania, section C (the coincidence-matrix
    formulation):

    1. ``units`` is one list per item of the values its raters gave, None for missing.
       Items with fewer than two values are not pairable and are left out.
    2. Coincidences o_ck = sum over units of (number of c-k pairs from different raters)
       / (m_u - 1); marginals n_c = sum_k o_ck; n = sum_c n_c.
    3. alpha = 1 - D_o / D_e = 1 - (n - 1) * sum_ck o_ck delta^2_ck
       / sum_ck n_c n_k delta^2_ck, with delta^2 the level's difference function:
       nominal 0/1, interval (c - k)^2, ordinal (sum_{g=c..k} n_g - (n_c + n_k)/2)^2.
    """
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    matrix, pairable = _coincidences(units)
    if not pairable:
        return Score(None, "no item has two or more ratings")
    marginals: dict[Any, float] = {}
    for (c, _), o in matrix.items():
        marginals[c] = marginals.get(c, 0.0) + o
    if len(marginals) < 2:
        return Score(None, "every rating is the same value (one category only)", pairable)
    n = sum(marginals.values())
    delta = _delta_squared(level, marginals)
    observed = sum(o * delta[ck] for ck, o in matrix.items())
    expected = sum(marginals[c] * marginals[k] * delta[c, k] for c, k in delta)
    if expected <= 0:
        return Score(None, "no disagreement is possible between the values given", pairable)
    return Score(1 - (n - 1) * observed / expected, n=pairable)


def span_f1(a_spans: Iterable[Hashable], b_spans: Iterable[Hashable]) -> Score:
    """Exact-match F1 of two annotators' spans (``n``: spans in both sets together).

    Spans are hashable tuples such as (start, end, label), or (item, start, end, label)
    over several items; one set is taken as reference, and since F1 is symmetric it does
    not matter which: F1 = 2 |A & B| / (|A| + |B|) (the harmonic mean of precision
    |A & B| / |B| and recall |A & B| / |A|; Tjong Kim Sang and De Meulder (2003), the
    CoNLL-2003 shared task's exact-match span F1, used for agreement by Hripcsak and
    Rothschild (2005), "Agreement, the F-measure, and reliability in information
    retrieval", JAMIA 12(3)).
    """
    a, b = set(a_spans), set(b_spans)
    if not a and not b:
        return Score(None, "neither annotator marked a span")
    return Score(2 * len(a & b) / (len(a) + len(b)), n=len(a) + len(b))


def span_f1_pairwise(
    spans: Mapping[Any, Mapping[Any, Iterable[tuple[Any, ...]]]],
) -> Score:
    """Span F1 averaged over annotator pairs (``n``: pairs with a value).

    ``spans`` maps annotator -> item -> that annotator's spans on the item. Each pair of
    annotators is compared with ``span_f1`` on the items both annotated (spans keyed by
    item), and the pairs' F1 values are averaged with equal weight (Hripcsak and
    Rothschild 2005: pairwise F1 between raters, averaged for more than two).
    """
    values = []
    for first, second in itertools.combinations(sorted(spans, key=str), 2):
        shared = set(spans[first]) & set(spans[second])
        if not shared:
            continue
        score = span_f1(
            ((item, *span) for item in shared for span in spans[first][item]),
            ((item, *span) for item in shared for span in spans[second][item]),
        )
        if score.value is not None:
            values.append(score.value)
    if not values:
        return Score(None, "no two annotators marked spans on the same items")
    return Score(sum(values) / len(values), n=len(values))


def mean_score(scores: Iterable[Score], reason: str) -> Score:
    """The mean of the scores that have a value (``n``: how many), else None with ``reason``."""
    values = [s.value for s in scores if s.value is not None]
    if not values:
        return Score(None, reason)
    return Score(sum(values) / len(values), n=len(values))
