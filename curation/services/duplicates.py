"""Duplicate review: reviewers' verdicts on duplicate groups and pairs."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from curation.errors import PermanentError
from curation.models import DuplicateGroup, DuplicateMember, DuplicateVerdict


def _pair(group: DuplicateGroup, document_id: int) -> tuple[int, int]:
    """The (smaller, larger) ids of the pair (representative, member)."""
    members = dict(
        DuplicateMember.objects.filter(group=group).values_list("document_id", "is_representative")
    )
    if document_id not in members:
        raise PermanentError(f"document {document_id} is not a member of group {group.pk}")
    if members[document_id]:
        raise PermanentError(
            "that is the group's representative: judge a member against it, or the whole group"
        )
    representative = next((d for d, rep in members.items() if rep), None)
    if representative is None:
        raise PermanentError(f"group {group.pk} has no representative to compare with")
    low, high = sorted((representative, document_id))
    return low, high


@transaction.atomic
def duplicate_verdict_set(
    *,
    group: DuplicateGroup,
    verdict: str,
    user: User | AnonymousUser | None,
    document_id: int | None = None,
) -> DuplicateVerdict:
    """Record a verdict on the whole group, or on ``document_id`` vs the representative.

    One verdict per group and per pair: a new one replaces the old (the latest
    reviewer's word counts). Recipes saved afterwards honour it.
    """
    if verdict not in DuplicateVerdict.Verdict.values:
        raise PermanentError(f"verdict must be one of {', '.join(DuplicateVerdict.Verdict.values)}")
    a, b = _pair(group, document_id) if document_id is not None else (None, None)
    row, _ = DuplicateVerdict.objects.update_or_create(
        group=group,
        document_a=a,
        document_b=b,
        defaults={
            "verdict": verdict,
            "user": user if user is not None and user.is_authenticated else None,
        },
    )
    return row


@transaction.atomic
def duplicate_verdict_clear(*, group: DuplicateGroup, document_id: int | None = None) -> int:
    """Withdraw the verdict on the group (or on one pair); returns how many were removed."""
    a, b = _pair(group, document_id) if document_id is not None else (None, None)
    deleted, _ = DuplicateVerdict.objects.filter(group=group, document_a=a, document_b=b).delete()
    return deleted
