"""Pipeline runs: plan batches, execute them on workers, finish, cancel, retry, resume.

A run snapshots its pipeline's definition (step versions, params, signals) and
is cut into batches: one per (stage, contiguous id range), where a stage is a
run of consecutive steps on the same device. Running a stage's steps together
reads each document once, lets them share per-process caches (the heuristic
steps tokenize each document once between them) and writes all their signals
in one upsert. Each batch is one Celery task that:

1. claims the batch with a conditional UPDATE (a lease), so a batch runs once at a
   time and a re-delivered or duplicated task finds nothing to do;
2. reads the range's documents, runs the stage's steps, and in one transaction
   upserts their signal values and marks the batch done; a worker killed mid-batch
   leaves it running with a lease that expires, and the batch is queued again;
3. finishes the run when no batch is left, with the status derived from the
   batches (never counted up).

Layout: ``plan`` creates a run and its batches, ``dispatch`` queues batches and moves
the run on (finish, cancel, resume, the stale-batch sweep), ``execute`` runs one batch
on a worker (steps 1 and 2; step 3 is ``dispatch.run_finish_if_complete``).
"""

from __future__ import annotations

from pipelines.services.runs.dispatch import (
    ACTIVE,
    run_cancel,
    run_dispatch,
    run_finish_if_complete,
    run_resume,
    runs_resume_after_restart,
    runs_resume_stale,
)
from pipelines.services.runs.execute import run_batch_execute
from pipelines.services.runs.plan import document_ranges, plan_stages, run_create

__all__ = [
    "ACTIVE",
    "document_ranges",
    "plan_stages",
    "run_batch_execute",
    "run_cancel",
    "run_create",
    "run_dispatch",
    "run_finish_if_complete",
    "run_resume",
    "runs_resume_after_restart",
    "runs_resume_stale",
]
