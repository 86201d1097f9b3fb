"""The assignment queue: hand the next item to an annotator under a lease.

Every change to an item's assignments first locks the item row, so that all of them
are serialized per item; the queue itself skips items that others hold locked
(``FOR UPDATE SKIP LOCKED``), so fifty annotators asking at once take fifty different
items instead of waiting on each other. Lease times use the database clock (``now()``,
the transaction's start) so that app servers with skewed clocks agree. The statements
rely on READ COMMITTED (PostgreSQL's and Django's default): each one sees what others
committed before it started.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Greatest, Now

from annotate.errors import AssignmentClosedError
from annotate.models import Annotation, AnnotationProject, Assignment
from annotate.services.items import item_lock, item_status_recompute

logger = logging.getLogger(__name__)

MAX_TIME_SPENT_MS = 7 * 86400 * 1000
# Tries per call when the item found was taken between the search and the claim.
CLAIM_ATTEMPTS = 5

# Slots an item has in use: submissions plus leases still running.
_USED_SLOTS = (
    "(SELECT count(*) FROM annotate_assignment a WHERE a.item_id = {item} "
    "AND (a.state = 'submitted' OR (a.state = 'leased' AND a.leased_until > now())))"
)

# The first open item this user never had, with a free slot, partly annotated items
# first (they finish sooner), then oldest first; walks the partial index item_queue_idx.
_CANDIDATE = f"""
SELECT i.id FROM annotate_item i
WHERE i.project_id = %(project)s AND i.status IN ('pending', 'partial')
  AND NOT EXISTS (SELECT 1 FROM annotate_assignment a
                  WHERE a.item_id = i.id AND a.user_id = %(user)s)
  AND {_USED_SLOTS.format(item="i.id")} < %(k)s
ORDER BY i.submitted_count DESC, i.id
LIMIT 1
FOR UPDATE OF i SKIP LOCKED
"""

_COLUMNS = ", ".join(str(f.column) for f in Assignment._meta.concrete_fields)

# Renew the user's open lease, if any. The inner SELECT may pick a lease that another
# annotator's claim is marking expired; the UPDATE re-checks state = 'leased' on the
# row once it holds the row's lock, so one of the two wins, never both.
_RESUME = f"""
UPDATE annotate_assignment SET leased_until = now() + make_interval(secs => %(lease)s)
WHERE id = (SELECT id FROM annotate_assignment
            WHERE project_id = %(project)s AND user_id = %(user)s AND state = 'leased'
            ORDER BY leased_until DESC, id DESC LIMIT 1)
  AND state = 'leased'
RETURNING {_COLUMNS}
"""

# The claim runs in a new snapshot and re-checks: the search's snapshot may predate a
# lease that another transaction committed just before we got the item's lock. Leases
# on the item that ran out are marked expired on the way (their slot is given away;
# the re-check already leaves them out).
_CLAIM = f"""
WITH expired AS (
    UPDATE annotate_assignment SET state = 'expired'
    WHERE item_id = %(item)s AND state = 'leased' AND leased_until <= now()
)
INSERT INTO annotate_assignment
    (project_id, item_id, user_id, state, leased_until, time_spent_ms, created_at)
SELECT %(project)s, %(item)s, %(user)s, 'leased',
       now() + make_interval(secs => %(lease)s), 0, now()
WHERE NOT EXISTS (SELECT 1 FROM annotate_assignment a
                  WHERE a.item_id = %(item)s AND a.user_id = %(user)s)
  AND {_USED_SLOTS.format(item="%(item)s")} < %(k)s
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}
"""


def _assignment_from_row(row: tuple[object, ...]) -> Assignment:
    names = [f.attname for f in Assignment._meta.concrete_fields]
    return Assignment.from_db("default", names, list(row))


def _lease_end(project: AnnotationProject) -> CombinedExpression:
    return Now() + timedelta(seconds=project.lease_seconds)


def time_spent_clamp(ms: int) -> int:
    """Time spent as the browser reported it, kept within 0 and a week."""
    return max(0, min(int(ms), MAX_TIME_SPENT_MS))


@transaction.atomic
def assignment_next(*, project: AnnotationProject, user: User) -> Assignment | None:
    """Lease the next item to ``user``; None when nothing is left for them.

    1. An open lease of theirs in this project (a reload, or a lease past its end that
       nobody took) is renewed and returned.
    2. Else the first open item they never had (whatever became of it: submitted,
       skipped, expired) with fewer than ``k`` slots in use is locked, skipping
       items that other transactions hold; partly annotated items come first.
    3. Under that lock the lease is inserted only if a new snapshot still shows a
       free slot (leases on it that ran out are marked expired: their slot returns to
       the pool); else the next candidate is tried.

    Three statements when an item is found: resume, search, claim.
    """
    params = {
        "project": project.pk,
        "user": user.pk,
        "k": project.k,
        "lease": float(project.lease_seconds),
    }
    with connection.cursor() as cursor:
        cursor.execute(_RESUME, params)
        row = cursor.fetchone()
        if row is not None:
            return _assignment_from_row(row)
        for _ in range(CLAIM_ATTEMPTS):
            cursor.execute(_CANDIDATE, params)
            row = cursor.fetchone()
            if row is None:
                return None
            params["item"] = row[0]
            cursor.execute(_CLAIM, params)
            claimed = cursor.fetchone()
            if claimed is not None:
                return _assignment_from_row(claimed)
            logger.info("project %s: item %s was taken meanwhile; next", project.pk, row[0])
    return None


@transaction.atomic
def assignment_skip(*, assignment: Assignment, time_spent_ms: int = 0) -> Assignment:
    """The annotator passes on the item: it goes to others, never back to them.

    Their drafts on it are dropped.
    """
    item_lock(item_id=assignment.item_id)
    skipped = Assignment.objects.filter(pk=assignment.pk, state=Assignment.State.LEASED).update(
        state=Assignment.State.SKIPPED,
        finished_at=Now(),
        time_spent_ms=Greatest(F("time_spent_ms"), time_spent_clamp(time_spent_ms)),
    )
    if not skipped:
        raise AssignmentClosedError(
            f"this item is already {_state_of(assignment)}; take the next item"
        )
    Annotation.objects.filter(item_id=assignment.item_id, user=assignment.user_id).delete()
    assignment.refresh_from_db()
    return assignment


def _state_of(assignment: Assignment) -> str:
    state = Assignment.objects.filter(pk=assignment.pk).values_list("state", flat=True).first()
    return Assignment.State(state).label.lower() if state else "gone"


@transaction.atomic
def assignment_reopen_last(*, project: AnnotationProject, user: User) -> Assignment | None:
    """Go back: reopen the user's most recently submitted or skipped item, under a new lease.

    A submitted item keeps its slot (its answers become drafts again and the item's
    status is recomputed); a skipped one gets a slot back only if one is free. Returns
    None when there is nothing to go back to, or the skipped item is taken.
    """
    last = (
        Assignment.objects.filter(
            project=project,
            user=user,
            state__in=[Assignment.State.SUBMITTED, Assignment.State.SKIPPED],
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    if last is None:
        return None
    item_lock(item_id=last.item_id)
    last.refresh_from_db()
    if last.state == Assignment.State.SKIPPED:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_USED_SLOTS.format(item='%s')} < %s", [last.item_id, project.k]
            )
            (free,) = cursor.fetchone()
        if not free:
            return None
    elif last.state != Assignment.State.SUBMITTED:
        return None
    Assignment.objects.filter(pk=last.pk).update(
        state=Assignment.State.LEASED, leased_until=_lease_end(project), finished_at=None
    )
    Annotation.objects.filter(item_id=last.item_id, user=user).update(draft=True)
    item_status_recompute(item_id=last.item_id)
    last.refresh_from_db()
    return last
