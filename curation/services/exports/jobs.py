"""Export jobs: create a snapshot, run it on a worker (or inline), resume it after a crash.

The procedure (``export_run``):

1. Claim the snapshot with a conditional UPDATE (a lease); a second worker finds
   nothing to claim and stops.
2. Work in a hidden sibling folder (``.<name>.partial``). A first run chooses the
   documents once (``rows.ids_materialize``); a resumed run reads the state file
   and drops whatever was written after the last completed shard.
3. Read chunks of rows by keyset and write them into shards of bounded size. Each
   completed shard is committed under a row lock that checks the lease: renamed
   to its part name, recorded in the state file, progress saved. A worker killed
   mid-shard loses that shard only.
4. Name the shards the Hugging Face way (``train-00000-of-00003``), write the
   card, then rename the folder into place and mark the snapshot succeeded in one
   transaction. Until that rename nothing sits under the snapshot's path.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from curation.errors import LeaseLostError, PermanentError
from curation.models import Dataset, ExportSnapshot, RecipeVersion
from curation.services.exports.card import card_render, stats_summarize
from curation.services.exports.options import (
    ExportOptions,
    ExportOptionsError,
    export_options_clean,
    export_plan,
)
from curation.services.exports.rows import RowReader, id_chunks, ids_materialize
from curation.services.exports.shards import ClosedShard, ShardWriter, shard_suffix
from curation.services.leases import lease_claim, lease_renew, lease_resume_delays, stale_jobs
from curation.workers import worker_name

logger = logging.getLogger(__name__)

STATE = Path(".winnow") / "state.json"
IDS = Path(".winnow") / "document_ids.i64"
STATS = Path(".winnow") / "stats"


def exports_root() -> Path:
    return Path(settings.DATA_DIR) / "exports"


def partial_dir(path: Path) -> Path:
    """Where a snapshot is written before it is renamed to ``path``."""
    return path.parent / f".{path.name}.partial"


def export_create(
    *,
    dataset: Dataset,
    fmt: str = ExportSnapshot.Format.PARQUET,
    options: ExportOptions | None = None,
    recipe_version: RecipeVersion | None = None,
    user: User | AnonymousUser | None = None,
    path: Path | str | None = None,
) -> ExportSnapshot:
    """Check the options and record a pending snapshot.

    Without ``path`` the files go to ``DATA_DIR/exports/<id>``; with one (the CLI),
    to that folder, which must not exist yet or be empty: snapshots are immutable.
    """
    if recipe_version is not None and recipe_version.recipe.dataset_id != dataset.pk:
        raise ExportOptionsError(f"{recipe_version} is a recipe of another dataset")
    options = export_options_clean(options=options or ExportOptions(), fmt=fmt)
    if options.hub_repo:
        from curation.services.exports.hub import hub_push_enabled

        if not hub_push_enabled():
            raise ExportOptionsError("pushing to the Hub needs HF_TOKEN (a write token) set")
    target = Path(path).resolve() if path is not None else None
    if target is not None and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportOptionsError(f"{target} already exists: export into a new or empty folder")
    with transaction.atomic():
        snapshot = ExportSnapshot.objects.create(
            dataset=dataset,
            recipe_version=recipe_version,
            format=fmt,
            options=options.to_json(),
            path=str(target or ""),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        if target is None:
            snapshot.path = str(exports_root() / str(snapshot.pk))
            snapshot.save(update_fields=["path"])
    return snapshot


def export_dispatch(*, snapshot: ExportSnapshot) -> None:
    """Queue the snapshot for a worker once the current transaction commits."""
    transaction.on_commit(lambda: _queue([snapshot.pk]))


def _queue(snapshot_ids: list[int], countdown: float = 0.0) -> None:
    from curation.tasks import export_run as task

    ExportSnapshot.objects.filter(pk__in=snapshot_ids).update(queued_at=timezone.now())
    for snapshot_id in snapshot_ids:
        task.apply_async((snapshot_id,), countdown=countdown)


def export_run(*, snapshot_id: int, owner: str | None = None) -> ExportSnapshot:
    """Run (or resume) an export to the end. Safe to call twice: the second finds no lease."""
    owner = owner or worker_name()
    seconds = settings.WINNOW_EXPORT_LEASE_SECONDS
    if not lease_claim(model=ExportSnapshot, pk=snapshot_id, owner=owner, seconds=seconds):
        logger.info("export %s: not claimable (finished or held by a live worker)", snapshot_id)
        return ExportSnapshot.objects.get(pk=snapshot_id)
    snapshot = ExportSnapshot.objects.select_related("dataset", "recipe_version__recipe").get(
        pk=snapshot_id
    )
    logger.info("export %s: %s claimed it", snapshot.pk, owner)
    try:
        _Export(snapshot, owner).run()
    except LeaseLostError:
        logger.warning("export %s: lease lost to another worker; stopping", snapshot.pk)
    except PermanentError as exc:
        _fail(snapshot, owner, str(exc))
    except OSError as exc:
        _fail(snapshot, owner, f"could not write the files ({exc}): check the disk and retry")
    snapshot.refresh_from_db()
    if snapshot.status == ExportSnapshot.Status.SUCCEEDED and snapshot.options.get("hub_repo"):
        from curation.services.exports.hub import export_push_to_hub

        try:
            export_push_to_hub(snapshot=snapshot, repo_id=snapshot.options["hub_repo"])
        except PermanentError as exc:  # the files are exported all the same
            ExportSnapshot.objects.filter(pk=snapshot.pk).update(error=str(exc))
        snapshot.refresh_from_db()
    return snapshot


def _fail(snapshot: ExportSnapshot, owner: str, error: str) -> None:
    updated = ExportSnapshot.objects.filter(pk=snapshot.pk, lease_owner=owner).update(
        status=ExportSnapshot.Status.FAILED,
        error=error,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    if updated:
        shutil.rmtree(partial_dir(Path(snapshot.path)), ignore_errors=True)
        logger.warning("export %s: failed: %s", snapshot.pk, error)


def _state_save(work: Path, state: dict[str, Any]) -> None:
    tmp = work / STATE.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, work / STATE)


def _state_load(work: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads((work / STATE).read_bytes())
    except FileNotFoundError:
        return None


class _Export:
    """One run of one snapshot by one lease owner."""

    def __init__(self, snapshot: ExportSnapshot, owner: str) -> None:
        self.snapshot, self.owner = snapshot, owner
        self.options = ExportOptions.from_json(snapshot.options)
        self.plan = export_plan(options=self.options)
        self.final = Path(snapshot.path)
        self.work = partial_dir(self.final)
        self.suffix = shard_suffix(snapshot.format, self.options.compression)
        self.seconds = settings.WINNOW_EXPORT_LEASE_SECONDS

    def run(self) -> None:
        done = _state_load(self.final)
        if done is not None and done.get("complete"):
            # The folder was renamed into place but the worker died before the commit.
            self._succeed(done)
            return
        state = self._prepare()
        writer = ShardWriter(
            root=self.work,
            fmt=self.snapshot.format,
            compression=self.options.compression,
            schema=self.plan.schema,
            shard_rows=self.options.shard_rows,
            shard_bytes=self.options.shard_bytes,
            first_index=len(state["shards"]),
            on_close=lambda shard: self._commit_shard(state, shard),
        )
        reader = RowReader(plan=self.plan, dataset_id=self.snapshot.dataset_id)
        try:
            for position, ids in id_chunks(
                self.work / IDS,
                start=state["rows_done"],
                chunk_rows=settings.WINNOW_EXPORT_CHUNK_ROWS,
                chunk_chars=settings.WINNOW_EXPORT_CHUNK_CHARS,
            ):
                writer.write(reader.read(ids))
                self._renew(rows_done=position + len(ids))
            writer.close()
        finally:
            writer.abort()
        self._finalize(state)

    def _renew(self, **fields: Any) -> None:
        lease_renew(
            model=ExportSnapshot,
            pk=self.snapshot.pk,
            owner=self.owner,
            seconds=self.seconds,
            **fields,
        )

    def _prepare(self) -> dict[str, Any]:
        """Start afresh, or resume from the last committed shard."""
        state = _state_load(self.work)
        if state is None:
            shutil.rmtree(self.work, ignore_errors=True)
            (self.work / STATS).mkdir(parents=True)
            rows = ids_materialize(
                dataset_id=self.snapshot.dataset_id,
                recipe_version=self.snapshot.recipe_version,
                target=self.work / IDS,
            )
            if rows == 0:
                # ``datasets`` refuses a split without rows: there would be nothing to load.
                version = self.snapshot.recipe_version
                raise ExportOptionsError(
                    f"{version} keeps no documents: change its rules and save a new version"
                    if version
                    else f"{self.snapshot.dataset.name} has no documents yet: import some first"
                )
            state = {"rows_total": rows, "rows_done": 0, "shards": []}
            _state_save(self.work, state)
        elif not state.get("finalizing"):
            self._drop_uncommitted(state)
            logger.info("export %s: resuming after row %d", self.snapshot.pk, state["rows_done"])
        self._renew(
            rows_total=state["rows_total"],
            rows_done=state["rows_done"],
            bytes_written=sum(s["bytes"] for s in state["shards"]),
            error="",
        )
        return state

    def _drop_uncommitted(self, state: dict[str, Any]) -> None:
        kept = {s["name"] for s in state["shards"]}
        stats = {f"{i:05d}.f64" for i in range(len(state["shards"]))}
        for folder, names in ((self.work / "data", kept), (self.work / STATS, stats)):
            for path in folder.iterdir() if folder.exists() else ():
                if path.name not in names:
                    path.unlink()

    def _commit_shard(self, state: dict[str, Any], shard: ClosedShard) -> None:
        """Rename a complete shard into the state, under a row lock that checks the lease."""
        with transaction.atomic():
            held = (
                ExportSnapshot.objects.select_for_update()
                .filter(pk=self.snapshot.pk, lease_owner=self.owner)
                .values_list("pk", flat=True)
                .first()
            )
            if held is None:
                shard.path.unlink(missing_ok=True)
                shard.stats_path.unlink(missing_ok=True)
                raise LeaseLostError(f"export {self.snapshot.pk}: lease taken over")
            name = f"part-{shard.index:05d}{self.suffix}"
            os.replace(shard.path, self.work / "data" / name)
            os.replace(shard.stats_path, self.work / STATS / f"{shard.index:05d}.f64")
            state["shards"].append({"name": name, "rows": shard.rows, "bytes": shard.bytes})
            state["rows_done"] += shard.rows
            _state_save(self.work, state)
            self._renew(
                rows_done=state["rows_done"],
                bytes_written=sum(s["bytes"] for s in state["shards"]),
            )
        logger.info(
            "export %s: shard %d done (%d rows, %d bytes)",
            self.snapshot.pk,
            shard.index,
            shard.rows,
            shard.bytes,
        )

    def _finalize(self, state: dict[str, Any]) -> None:
        """Final shard names, the card, then the folder into place (idempotent)."""
        count = len(state["shards"])
        if not state.get("finalizing"):
            for i, shard in enumerate(state["shards"]):
                shard["part"] = shard["name"]
                shard["name"] = f"data/train-{i:05d}-of-{count:05d}{self.suffix}"
            state["finalizing"] = True
            _state_save(self.work, state)
        for shard in state["shards"]:
            part = self.work / "data" / shard["part"]
            if part.exists():
                os.replace(part, self.work / shard["name"])
        stats_paths = [self.work / STATS / f"{i:05d}.f64" for i in range(count)]
        summary = stats_summarize(plan=self.plan, stats_paths=stats_paths, rows=state["rows_done"])
        card = card_render(
            snapshot=self.snapshot,
            options=self.options,
            plan=self.plan,
            summary=summary,
            shards=state["shards"],
            pattern=f"data/train-*{self.suffix}",
        )
        (self.work / "README.md.tmp").write_text(card, encoding="utf-8")
        os.replace(self.work / "README.md.tmp", self.work / "README.md")
        shutil.rmtree(self.work / STATS, ignore_errors=True)
        state["files"] = [
            {"name": "README.md", "bytes": (self.work / "README.md").stat().st_size},
            *({"name": s["name"], "bytes": s["bytes"], "rows": s["rows"]} for s in state["shards"]),
        ]
        state["complete"] = True
        _state_save(self.work, state)
        with transaction.atomic():
            held = (
                ExportSnapshot.objects.select_for_update()
                .filter(pk=self.snapshot.pk, lease_owner=self.owner)
                .values_list("pk", flat=True)
                .first()
            )
            if held is None:
                raise LeaseLostError(f"export {self.snapshot.pk}: lease taken over")
            self.final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.work, self.final)  # replaces an empty folder; fails on a full one
            self._succeed(state)

    def _succeed(self, state: dict[str, Any]) -> None:
        data = [f for f in state["files"] if f["name"] != "README.md"]
        ExportSnapshot.objects.filter(pk=self.snapshot.pk, lease_owner=self.owner).update(
            status=ExportSnapshot.Status.SUCCEEDED,
            rows_total=state["rows_done"],
            rows_done=state["rows_done"],
            bytes_written=sum(f["bytes"] for f in state["files"]),
            files=state["files"],
            finished_at=timezone.now(),
            lease_expires_at=None,
        )
        logger.info(
            "export %s: %d rows in %d files at %s",
            self.snapshot.pk,
            state["rows_done"],
            len(data),
            self.final,
        )


def exports_resume_stale() -> list[int]:
    """Queue exports whose worker died (lease expired) or whose queue message was lost."""
    stale = list(
        ExportSnapshot.objects.filter(
            stale_jobs(model=ExportSnapshot, requeue_after=settings.WINNOW_REQUEUE_AFTER_SECONDS)
        ).values_list("pk", flat=True)
    )
    _queue(stale)
    return stale


def exports_resume_after_restart() -> list[int]:
    """On worker start: resume running exports as soon as their (dead) holder's lease runs out."""
    delays = lease_resume_delays(model=ExportSnapshot)
    for snapshot_id, wait in delays:
        _queue([snapshot_id], countdown=wait)
    return [snapshot_id for snapshot_id, _ in delays]
