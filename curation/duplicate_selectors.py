"""Duplicate review reads: groups largest first, one group side by side, review rates."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Substr

from curation.models import Dataset, Document, DuplicateGroup, DuplicateMember, DuplicateVerdict
from curation.recipe_selectors import spared_by
from curation.services.recipes.plan import latest_runs

GROUPS_PER_PAGE = 25
MEMBERS_PER_PAGE = 10
DIFF_WORDS = 5000
# Read at most this much of a text for a diff: 5,000 words fit in it.
DIFF_CHARS = 200_000
HEAD_CHARS = 160


def current_groups(*, dataset: Dataset, kind: str = "") -> QuerySet[DuplicateGroup]:
    """Groups of the newest run of each kind (what recipes use), largest first."""
    runs = latest_runs(dataset_id=dataset.pk)
    if kind:
        runs = {k: v for k, v in runs.items() if k == kind}
    if not runs:
        return DuplicateGroup.objects.none()
    which = reduce(or_, (Q(kind=k, run_key=v) for k, v in runs.items()))
    return DuplicateGroup.objects.filter(which, dataset=dataset).order_by("-size", "id")


@dataclass(frozen=True)
class DocumentHead:
    id: int
    external_id: str
    head: str


@dataclass(frozen=True)
class GroupRow:
    group: DuplicateGroup
    representative: DocumentHead | None
    verdict: str | None
    pair_verdicts: int


@dataclass(frozen=True)
class GroupPage:
    rows: list[GroupRow]
    page: Page[DuplicateGroup]


def duplicate_group_page(*, dataset: Dataset, kind: str = "", page: int = 1) -> GroupPage:
    """A page of current groups with each representative's opening and its review state."""
    groups = Paginator(current_groups(dataset=dataset, kind=kind), GROUPS_PER_PAGE).get_page(page)
    ids = [g.pk for g in groups]
    reps = {
        group_id: DocumentHead(document_id, external_id, head)
        for group_id, document_id, external_id, head in DuplicateMember.objects.filter(
            group_id__in=ids, is_representative=True
        )
        .annotate(head=Substr("document__text", 1, HEAD_CHARS))
        .values_list("group_id", "document_id", "document__external_id", "head")
    }
    verdicts: dict[int, str] = {}
    pairs: dict[int, int] = {}
    for group_id, document_a, verdict in DuplicateVerdict.objects.filter(
        group_id__in=ids
    ).values_list("group_id", "document_a", "verdict"):
        if document_a is None:
            verdicts[group_id] = verdict
        else:
            pairs[group_id] = pairs.get(group_id, 0) + 1
    rows = [GroupRow(g, reps.get(g.pk), verdicts.get(g.pk), pairs.get(g.pk, 0)) for g in groups]
    return GroupPage(rows=rows, page=groups)


@dataclass(frozen=True)
class MethodStats:
    """Review of one dedup method: how often reviewers found its groups were not duplicates."""

    kind: str
    label: str
    groups: int
    reviewed: int
    not_duplicate: int

    @property
    def false_positive_rate(self) -> float | None:
        return self.not_duplicate / self.reviewed if self.reviewed else None


def duplicate_review_stats(*, dataset: Dataset) -> list[MethodStats]:
    """Per method (newest run): groups, verdicts given, and those saying "not a duplicate".

    A verdict on a whole group and one on a pair each count as one review.
    """
    groups = current_groups(dataset=dataset)
    sizes = dict(groups.order_by().values("kind").annotate(n=Count("id")).values_list("kind", "n"))
    reviews: dict[str, dict[str, int]] = {}
    rows = (
        DuplicateVerdict.objects.filter(group__in=groups.order_by())
        .order_by()
        .values("group__kind", "verdict")
        .annotate(n=Count("id"))
        .values_list("group__kind", "verdict", "n")
    )
    for kind, verdict, n in rows:
        reviews.setdefault(kind, {})[verdict] = n
    return [
        MethodStats(
            kind=kind,
            label=label,
            groups=sizes.get(kind, 0),
            reviewed=sum(reviews.get(kind, {}).values()),
            not_duplicate=reviews.get(kind, {}).get(DuplicateVerdict.Verdict.NOT_DUPLICATE, 0),
        )
        for kind, label in DuplicateGroup.Kind.choices
        if kind in sizes
    ]


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str  # "equal", "delete" (left only), "insert" (right only)


@dataclass(frozen=True)
class WordDiff:
    left: list[Segment]
    right: list[Segment]
    truncated: bool
    ratio: float


def word_diff(left: str, right: str, *, limit: int = DIFF_WORDS) -> WordDiff:
    """Word-level diff of two texts (whitespace collapsed), first ``limit`` words of each."""
    a, b = left.split(), right.split()
    truncated = len(a) > limit or len(b) > limit
    a, b = a[:limit], b[:limit]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=len(a) + len(b) > 400)
    out_a: list[Segment] = []
    out_b: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out_a.append(Segment(" ".join(a[i1:i2]), "equal"))
            out_b.append(Segment(" ".join(b[j1:j2]), "equal"))
            continue
        if i2 > i1:
            out_a.append(Segment(" ".join(a[i1:i2]), "delete"))
        if j2 > j1:
            out_b.append(Segment(" ".join(b[j1:j2]), "insert"))
    return WordDiff(out_a, out_b, truncated, matcher.ratio())


@dataclass(frozen=True)
class MemberView:
    member: DuplicateMember
    external_id: str
    diff: WordDiff
    verdict: DuplicateVerdict | None
    spared: bool


@dataclass(frozen=True)
class GroupDetail:
    group: DuplicateGroup
    representative: DocumentHead | None
    group_verdict: DuplicateVerdict | None
    members: list[MemberView]
    page: Page[DuplicateMember]


def duplicate_group_detail(*, group: DuplicateGroup, page: int = 1) -> GroupDetail:
    """The representative against a page of the other members, differences marked.

    Texts are read up to ``DIFF_CHARS`` and compared on their first ``DIFF_WORDS``
    words, so a megabyte document costs no more than a long one.
    """
    rep_id = (
        group.members.filter(is_representative=True).values_list("document_id", flat=True).first()
    )
    others = group.members.filter(is_representative=False).order_by("-similarity", "document_id")
    members = Paginator(others, MEMBERS_PER_PAGE).get_page(page)
    ids = [m.document_id for m in members] + ([rep_id] if rep_id else [])
    texts = {
        pk: (external_id, head)
        for pk, external_id, head in Document.objects.filter(pk__in=ids)
        .annotate(head=Substr("text", 1, DIFF_CHARS))
        .values_list("pk", "external_id", "head")
    }
    verdicts = list(DuplicateVerdict.objects.filter(group=group).select_related("user"))
    rep_name, rep_text = texts.get(rep_id, ("", "")) if rep_id else ("", "")
    views = []
    for m in members:
        pair = [
            v
            for v in verdicts
            if v.document_a is not None and m.document_id in (v.document_a, v.document_b)
        ]
        name, text = texts.get(m.document_id, ("", ""))
        views.append(
            MemberView(
                member=m,
                external_id=name,
                diff=word_diff(rep_text, text),
                verdict=pair[0] if pair else None,
                spared=spared_by(verdicts, rep_id, m.document_id),
            )
        )
    return GroupDetail(
        group=group,
        representative=DocumentHead(rep_id, rep_name, rep_text[:HEAD_CHARS]) if rep_id else None,
        group_verdict=next((v for v in verdicts if v.document_a is None), None),
        members=views,
        page=members,
    )
