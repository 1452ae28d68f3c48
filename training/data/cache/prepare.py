"""Preparing the training cache: each case decoded once, in parallel, resumable, redone only when it changed.

An entry's fingerprint hashes the preparation settings (:class:`~training.data.cache.entry.CacheSettings`)
and, for each of the case's files, its name, size and modification time: the check ``make`` and ``rsync``
make, cheap enough to run on every start over a whole release. A case whose fingerprint matches its entry
is reused as it is; any other is (re)written, so a changed file or setting redoes exactly the cases it
touches. Entries are swapped in atomically, so an interrupted preparation resumes where it stopped.

A case that cannot be read (corrupt or truncated file, images on different grids, no brain) is reported by
name and skipped, and its failure is kept with its fingerprint, so an unchanged broken case is not decoded
again on every run; ``strict`` turns any failure into an error once the other cases are done.

Several processes that share a node (``torchrun`` ranks) may call :func:`prepare_cache` at once: a file
lock lets one of them prepare while the others wait, then find every entry fresh.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from synnet.dataset_layout import CaseFiles
from synnet.errors import SynnetError
from training.data.cache.entry import CacheSettings, CaseRecord, read_record, write_entry
from training.data.errors import DataError

logger = logging.getLogger(__name__)

FAILED = "failed"  # <root>/failed/<case_id>.json: the fingerprint and reason of a case that could not be read
LOCK = ".lock"


@dataclass
class CacheSummary:
    """What a preparation found: the usable entries and the cases it had to skip."""

    root: Path
    entries: dict[str, CaseRecord] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # case id -> why
    written: int = 0
    reused: int = 0

    def describe(self) -> str:
        line = f"training cache {self.root}: {self.written} cases prepared, {self.reused} reused"
        return line + (f", {len(self.failed)} skipped ({self.failures()})" if self.failed else "")

    def failures(self) -> str:
        """Each case that could not be read, with why, in one line."""
        return "; ".join(_named(case_id, why) for case_id, why in sorted(self.failed.items()))


def _named(case_id: str, why: str) -> str:
    return why if why.startswith(f"case {case_id}") else f"case {case_id}: {why}"


def cache_root(cache_dir: str | Path, data_root: str | Path) -> Path:
    """The folder of one data folder's entries under ``cache_dir``: its name plus a hash of its full path."""
    resolved = Path(data_root).resolve()
    return Path(cache_dir) / f"{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"


def fingerprint(case: CaseFiles, settings: CacheSettings) -> str:
    """A hash of the settings and of each file's name, size and modification time."""
    files = {m.value: p for m, p in case.files.items()}
    files.update({"seg": case.seg, "brain_mask": case.brain_mask})
    identity = {"settings": settings.as_record(), "whole_tumour_only": case.whole_tumour_only}
    for label, path in sorted(files.items()):
        if path is not None:
            stat = path.stat()
            identity[label] = [path.name, stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def prepare_cache(
    cases: Sequence[CaseFiles],
    root: str | Path,
    settings: CacheSettings | None = None,
    *,
    workers: int | None = None,
    strict: bool = False,
    progress: bool = True,
) -> CacheSummary:
    """Make sure every case of ``cases`` has a fresh entry under ``root``.

    Args:
        cases: the cases to prepare (from :func:`training.data.brats.find_cases`).
        root: this data folder's cache folder (:func:`cache_root`).
        settings: preparation settings (part of the fingerprint).
        workers: processes decoding in parallel (default: every core).
        strict: raise once preparation is over if any case could not be read, instead of skipping it.
        progress: show a progress bar with an ETA while cases are being written.

    Raises:
        DataError: with ``strict``, naming every case that failed (code ``bad_case``).
    """
    settings = settings or CacheSettings()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    summary = CacheSummary(root=root)
    with _node_lock(root):
        for leftover in [*root.glob(".staging-*"), *root.glob(".retired-*")]:  # from a run that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        todo = []
        for case in cases:
            stamp = fingerprint(case, settings)
            record = read_record(root / case.case_id)
            if record is not None and record.fingerprint == stamp:
                summary.entries[case.case_id] = record
                summary.reused += 1
            elif (reason := _known_failure(root, case.case_id, stamp)) is not None:
                summary.failed[case.case_id] = reason
            else:
                todo.append((case, stamp))
        for case, stamp, outcome in _write_all(todo, root, settings, workers, progress):
            if isinstance(outcome, CaseRecord):
                summary.entries[case.case_id] = outcome
                summary.written += 1
                (root / FAILED / f"{case.case_id}.json").unlink(missing_ok=True)
            else:
                summary.failed[case.case_id] = outcome
                _remember_failure(root, case.case_id, stamp, outcome)
    if summary.failed and strict:
        count = len(summary.failed)
        raise DataError(f"{count} case{'s' * (count > 1)} could not be read: {summary.failures()}", code="bad_case")
    for case_id, why in sorted(summary.failed.items()):
        logger.warning("skipping %s", _named(case_id, why))
    logger.info("%s", summary.describe())
    return summary


def _write_all(
    todo: list[tuple[CaseFiles, str]], root: Path, settings: CacheSettings, workers: int | None, progress: bool
) -> Iterator[tuple[CaseFiles, str, CaseRecord | str]]:
    """Write the entries in worker processes, yielding each case's record or the reason it failed."""
    if not todo:
        return
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    # shown once preparation has taken a few seconds: a case or two prepare without a bar
    bar = tqdm(total=len(todo), desc="preparing cases", unit="case", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0, delay=5.0)  # fmt: skip
    # fork where there is one, as torch's DataLoader does: a spawned child re-imports the caller's main module,
    # which a script without a __main__ guard would run again (and wait on this very lock)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with bar, ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_write_one, case, root, settings, stamp): (case, stamp) for case, stamp in todo}
        for future in as_completed(futures):
            case, stamp = futures[future]
            yield case, stamp, future.result()
            bar.update()


def _write_one(case: CaseFiles, root: Path, settings: CacheSettings, stamp: str) -> CaseRecord | str:
    """One case's entry, or why it could not be made (never an exception: one bad case must not end the run)."""
    try:
        return write_entry(case, root / case.case_id, settings, stamp)
    except SynnetError as exc:
        return exc.detail
    except (OSError, ValueError, EOFError, MemoryError) as exc:  # what nibabel, gzip and numpy raise on bad files
        return f"{type(exc).__name__}: {exc}"


def _known_failure(root: Path, case_id: str, stamp: str) -> str | None:
    try:
        failure = json.loads((root / FAILED / f"{case_id}.json").read_text())
    except (OSError, ValueError):
        return None
    return failure["reason"] if failure.get("fingerprint") == stamp else None


def _remember_failure(root: Path, case_id: str, stamp: str, reason: str) -> None:
    (root / FAILED).mkdir(exist_ok=True)
    (root / FAILED / f"{case_id}.json").write_text(json.dumps({"fingerprint": stamp, "reason": reason}) + "\n")


@contextmanager
def _node_lock(root: Path) -> Iterator[None]:
    """Hold ``root``'s lock file: one preparer per cache at a time; the others wait, then reuse its entries."""
    with open(root / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is preparing %s; waiting for it", root)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
