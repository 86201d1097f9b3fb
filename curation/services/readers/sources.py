"""What to read under an import root: files by extension, Hugging Face datasets by layout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from curation.services.readers.base import FORMATS, SourceError, _Unit

# Longest suffix first, so that ".jsonl.gz" wins over ".gz"-less matches.
_SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    (".jsonl.zstd", "jsonl", "zstd"),
    (".ndjson.zstd", "jsonl", "zstd"),
    (".json.zstd", "jsonl", "zstd"),
    (".jsonl.zst", "jsonl", "zstd"),
    (".ndjson.zst", "jsonl", "zstd"),
    (".json.zst", "jsonl", "zstd"),
    (".jsonl.gz", "jsonl", "gzip"),
    (".ndjson.gz", "jsonl", "gzip"),
    (".json.gz", "jsonl", "gzip"),
    (".parquet", "parquet", None),
    (".ndjson", "jsonl", None),
    (".csv.gz", "csv", "gzip"),
    (".jsonl", "jsonl", None),
    (".csv", "csv", None),
)
_SUPPORTED = ".jsonl, .ndjson, .jsonl.gz, .json.gz, .jsonl.zst, .csv, .csv.gz, .parquet"


def detect_format(path: Path) -> str:
    """Return the format of `path`: one of FORMATS for a readable source, or "dir".

    Files are judged by extension only (see `_SUFFIXES`). A directory holding a Hugging Face
    `save_to_disk` Dataset (state.json or dataset_info.json next to *.arrow shards) or
    DatasetDict (dataset_dict.json) is "hf"; any other directory is "dir".
    Raises SourceError for a missing path or an unsupported file name.
    """
    if path.is_dir():
        return "hf" if _is_hf_dir(path) else "dir"
    if not path.exists():
        raise SourceError(
            f"{path} does not exist; check the path (it must be readable by the server)"
        )
    match = _match_suffix(path.name)
    if match is None:
        raise SourceError(_unknown_reason(path))
    return match[0]


def count_bytes(root: Path, *, fmt: str | None = None) -> int:
    """Total size in bytes of the files `iter_records(root, fmt=fmt)` would read.

    Compressed files count with their compressed size. Raises SourceError like iter_records.
    """
    units, _ = _plan(root, fmt)
    return sum(unit.path.stat().st_size for unit in units if unit.problem is None)


def _plan(root: Path, fmt: str | None) -> tuple[list[_Unit], bool]:
    """List what to read under `root`; the flag says whether root is a directory."""
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not root.exists():
        raise SourceError(
            f"{root} does not exist; check the path (it must be readable by the server)"
        )
    if root.is_dir():
        if _is_hf_dir(root):
            if fmt not in (None, "hf"):
                raise SourceError(
                    f"{root} is a Hugging Face save_to_disk dataset, not {fmt}; choose format hf"
                )
            return _hf_units(root, ""), True
        if fmt == "hf":
            raise SourceError(
                f"{root} is not a Hugging Face save_to_disk dataset (no state.json or "
                "dataset_dict.json next to .arrow files); choose another format"
            )
        units = list(_walk(root, root, fmt, set()))
        if not any(unit.problem is None for unit in units):
            raise SourceError(
                f"{root} contains no supported data files ({_SUPPORTED}); check the path"
            )
        return units, True
    if not root.is_file():
        raise SourceError(f"{root} is not a regular file or directory; point the import at data")
    if fmt == "hf":
        raise SourceError(
            f"{root} is a file; the hf format reads the directory written by save_to_disk"
        )
    match = _match_suffix(root.name)
    if fmt is None:
        if match is None:
            raise SourceError(_unknown_reason(root))
        kind, compression = match
    elif fmt == "parquet":
        kind, compression = fmt, None
    else:
        kind = fmt
        compression = match[1] if match is not None else _compression_of(root.name)
    return [_Unit(root, root.name, kind, compression)], False


def _walk(
    root: Path, directory: Path, fmt: str | None, seen: set[tuple[int, int]]
) -> Iterator[_Unit]:
    """Yield units for `directory` recursively, in sorted order, skipping hidden entries."""
    stat = directory.stat()
    # Following directory symlinks is useful for data farms but must not loop forever.
    if (stat.st_dev, stat.st_ino) in seen:
        return
    seen.add((stat.st_dev, stat.st_ino))
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        raise SourceError(
            f"cannot list {directory} ({exc.strerror}); check its permissions"
        ) from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        source = path.relative_to(root).as_posix()
        if entry.is_dir():
            if _is_hf_dir(path):
                if fmt is None:
                    yield from _hf_units(path, source + "/")
                else:
                    yield _Unit(
                        path,
                        source,
                        "skip",
                        problem=f"skipped: a Hugging Face dataset directory, but the import "
                        f"format is {fmt}",
                    )
                continue
            yield from _walk(root, path, fmt, seen)
            continue
        if not entry.is_file():
            continue
        match = _match_suffix(entry.name)
        if match is None:
            yield _Unit(path, source, "skip", problem=_unknown_reason(Path(source)))
        elif fmt is not None and match[0] != fmt:
            yield _Unit(
                path,
                source,
                "skip",
                problem=f"skipped: a {match[0]} file, but the import format is {fmt}",
            )
        else:
            yield _Unit(path, source, match[0], match[1])


def _match_suffix(name: str) -> tuple[str, str | None] | None:
    lowered = name.lower()
    for suffix, kind, compression in _SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return kind, compression
    return None


def _compression_of(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".gz"):
        return "gzip"
    if lowered.endswith((".zst", ".zstd")):
        return "zstd"
    return None


def _unknown_reason(path: Path) -> str:
    lowered = path.name.lower()
    if lowered.endswith(".arrow"):
        return (
            f"{path} is a bare Arrow shard; import the Hugging Face dataset directory "
            "(the one holding state.json) instead"
        )
    if lowered.endswith(".json"):
        return (
            f"{path} has extension .json; if it holds one JSON object per line, rename it "
            "to .jsonl (a single JSON document is not supported)"
        )
    return f"{path} has an unsupported extension; supported: {_SUPPORTED}"


def _is_hf_dir(path: Path) -> bool:
    if (path / "dataset_dict.json").is_file():
        return True
    has_metadata = (path / "state.json").is_file() or (path / "dataset_info.json").is_file()
    return has_metadata and any(path.glob("*.arrow"))


def _read_small_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SourceError(
            f"cannot read {path} ({exc}); re-save the dataset with save_to_disk"
        ) from exc


def _hf_units(directory: Path, prefix: str) -> list[_Unit]:
    """Units for a save_to_disk Dataset or DatasetDict; sources are prefixed with `prefix`."""
    dict_file = directory / "dataset_dict.json"
    if dict_file.is_file():
        info = _read_small_json(dict_file)
        splits = info.get("splits") if isinstance(info, dict) else None
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise SourceError(
                f"{dict_file} has no list of splits; re-save the dataset with save_to_disk"
            )
        units: list[_Unit] = []
        for split in splits:
            split_dir = directory / split
            if not split_dir.is_dir():
                raise SourceError(
                    f"{dict_file} lists split {split!r} but {split_dir} is missing; "
                    "re-save the dataset with save_to_disk"
                )
            units.extend(_hf_units(split_dir, f"{prefix}{split}/"))
        return units
    names: list[str] | None = None
    state_file = directory / "state.json"
    if state_file.is_file():
        state = _read_small_json(state_file)
        files = state.get("_data_files") if isinstance(state, dict) else None
        if isinstance(files, list):
            names = [f["filename"] for f in files if isinstance(f, dict) and "filename" in f]
    if not names:
        names = sorted(p.name for p in directory.glob("*.arrow"))
    if not names:
        raise SourceError(
            f"{directory} looks like a Hugging Face dataset but has no .arrow files; "
            "re-save it with save_to_disk"
        )
    for name in names:
        if not (directory / name).is_file():
            raise SourceError(
                f"{directory / name} is listed in state.json but missing; "
                "re-save the dataset with save_to_disk"
            )
    return [_Unit(directory / name, prefix + name, "arrow") for name in names]
