"""From ``--data`` (or generated phantoms) to training and validation slices, split by subject.

The split is decided on case ids only, before any image is read, and recorded in every checkpoint
and manifest: the test subjects (``--test-cases``) are never loaded by the fit, so numbers later
measured on them by ``training.evaluate`` are honest. ``split_cases`` ranks ids by a seeded hash,
so the same folder and ``--split-seed`` give the same split for every model trained on it.

The training and validation cases then go through the training cache (:mod:`training.data.cache`):
prepared once, reused by every later run, and streamed slice by slice
(:mod:`training.data.streaming`), so what a run holds in memory does not grow with its subjects.
A case that cannot be read is skipped with a warning, and the run's split records it no more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from synnet.dataset_layout import CaseFiles
from synnet.modalities import Modality, format_modalities, parse_modalities
from synnet.normalization import IntensityRange, NormalizationParams
from training.data.brats import find_cases, split_cases
from training.data.cache import CachedCase, cache_root, prepare_cache
from training.data.errors import DataError
from training.data.slices import reference_ranges
from training.data.streaming import SliceView, ViewedCase
from training.fitting.config import DataConfig, FitConfig, training_cache_dir
from training.models import is_any_to_any

logger = logging.getLogger(__name__)

PHANTOM_SOURCE = "generated"
# The phantom dataset is a fixed dataset, not part of a run's randomness: every run (any --seed)
# sees the same cases, and N cases are a prefix of N + 1.
PHANTOM_SEED = 0
_COMPLETE_MARKER = ".complete"


@dataclass
class Split:
    """Subject-level split; ``n_cases`` counts every usable case found (train + val + test)."""

    train: list[str]
    val: list[str]
    test: list[str]
    seed: int

    @property
    def n_cases(self) -> int:
        return len(self.train) + len(self.val) + len(self.test)


@dataclass
class FitData:
    """What the loop trains and validates on, plus what the manifest records about it."""

    source: str
    split: Split
    train: list[ViewedCase]
    val: list[ViewedCase]
    output_reference: dict[Modality, IntensityRange]
    normalization: NormalizationParams
    skipped: dict[str, str] = field(default_factory=dict)  # case id -> why it could not be read


def phantom_root(config: DataConfig) -> Path:
    """The cache folder of the generated cases for this ``--phantom-cases``."""
    return Path(config.phantom_dir) / f"cases{config.phantom_cases}_seed{PHANTOM_SEED}"


def ensure_phantoms(config: DataConfig, is_main: bool, barrier: Callable[[], None]) -> Path:
    """Generate the phantom cases once (rank 0) and reuse them on later runs."""
    root = phantom_root(config)
    if is_main and not (root / _COMPLETE_MARKER).exists():
        from training.phantom import write_cases  # needs nilearn; only imported when generating

        logger.info("generating %d phantom cases in %s (once; cached for later runs)", config.phantom_cases, root)
        root.mkdir(parents=True, exist_ok=True)
        write_cases(root, config.phantom_cases, seed=PHANTOM_SEED)
        (root / _COMPLETE_MARKER).touch()
    barrier()
    return root


def _holdout(
    ids: list[str], spec: str, seed: int, what: str, allow_absent: bool = False
) -> tuple[list[str], list[str]]:
    """(kept, held out) for a ``--val-cases``/``--test-cases`` value: a count or explicit ids.

    Explicit test ids may be absent from ``--data`` (``allow_absent``): a site that keeps its test
    subjects off the training machine still records them as held out. Validation ids must exist.
    """
    spec = spec.strip()
    if spec.isdigit():
        return split_cases(ids, int(spec), seed)
    chosen = sorted(_named_ids(spec))  # a repeated id is held out once
    unknown = [item for item in chosen if item not in ids]
    if unknown and not allow_absent:
        raise DataError(f"{what} {', '.join(unknown)} not among the available cases", code="bad_split")
    if unknown:
        logger.warning("%s %s not in the data folder: recorded as held out", what, ", ".join(unknown))
    return sorted(set(ids) - set(chosen)), chosen


def _named_ids(spec: str) -> set[str]:
    """The case ids a --test-cases/--val-cases value names (none when it is a count)."""
    return set() if spec.strip().isdigit() else {item.strip() for item in spec.split(",") if item.strip()}


def _taken_from(case_ids: list[str], spec: str) -> int:
    """How many of ``case_ids`` a ``--val-cases``/``--test-cases`` value holds out (absent ids take none)."""
    spec = spec.strip()
    if spec.isdigit():
        return int(spec)
    return len(_named_ids(spec) & set(case_ids))


def choose_split(case_ids: list[str], config: DataConfig) -> Split:
    """Test subjects first, then validation subjects from the rest; at least one left to train on."""
    if not config.val_cases.strip().isdigit():
        _holdout(case_ids, config.val_cases, config.split_seed, "--val-cases")  # reports unknown ids first
    counts = [_taken_from(case_ids, spec) for spec in (config.val_cases, config.test_cases)]
    if sum(counts) >= len(case_ids):
        raise DataError(
            f"{len(case_ids)} cases cannot give {counts[0]} validation and {counts[1]} test cases "
            "and leave one to train on; lower --val-cases/--test-cases",
            code="bad_split",
        )
    rest, test = _holdout(case_ids, config.test_cases, config.split_seed, "--test-cases", allow_absent=True)
    train, val = _holdout(rest, config.val_cases, config.split_seed, "--val-cases")
    return Split(train=train, val=val, test=test, seed=config.split_seed)


def _usable_cases(root: Path, needed: tuple[Modality, ...]) -> list[CaseFiles]:
    cases = find_cases(root)
    incomplete = {case.case_id: case.lacks(needed) for case in cases if case.lacks(needed)}
    if len(incomplete) == len(cases):
        found = sorted({m.value for case in cases for m in case.files})
        raise DataError(
            f"no case in {str(root)!r} has all of {format_modalities(needed)} (found: {', '.join(found)})",
            code="missing_modality",
        )
    if incomplete:
        listed = "; ".join(f"{cid} lacks {format_modalities(m)}" for cid, m in sorted(incomplete.items())[:5])
        raise DataError(
            f"{len(incomplete)} of {len(cases)} cases in {str(root)!r} lack needed modalities ({listed}); "
            "remove them or choose other --src/--dst",
            code="missing_modality",
        )
    return cases


def _partial_cases(root: Path) -> list[CaseFiles]:
    """Cases with at least two modalities (one to give, one to learn): the any-to-any model's."""
    cases = find_cases(root)
    kept = [case for case in cases if len(case.files) >= 2]
    for case in cases:
        if len(case.files) < 2:
            logger.warning("skipping case %s: it has only %s", case.case_id, format_modalities(case.files))
    if not kept:
        raise DataError(f"no case in {str(root)!r} has two modalities or more", code="missing_modality")
    return kept


def _extra_cases(folders: str | None, taken: set[str], needed: tuple[Modality, ...] = ()) -> list[CaseFiles]:
    """The ``--extra-data`` cases, from each of its comma-separated folders: training only. The any-to-any
    model takes whatever modalities they have (two at least); a dedicated model (``needed`` = its sources and
    targets) only those that hold all of them.
    """
    extra: list[CaseFiles] = []
    for folder in [] if folders is None else [f.strip() for f in folders.split(",") if f.strip()]:
        found = _partial_cases(Path(folder))
        if needed:
            lacking = [case.case_id for case in found if case.lacks(needed)]
            found = [case for case in found if not case.lacks(needed)]
            if not found:
                raise DataError(
                    f"no case in --extra-data {folder!r} has all of {format_modalities(needed)}",
                    code="missing_modality",
                )
            if lacking:
                logger.info(
                    "--extra-data %s: %d cases lack %s, not used", folder, len(lacking), format_modalities(needed)
                )
        clashing = sorted(case.case_id for case in found if case.case_id in taken)
        if clashing:
            raise DataError(
                f"--extra-data {folder!r} repeats case ids of --data, --test-cases, --val-cases or another "
                f"--extra-data folder: {', '.join(clashing[:5])}",
                code="bad_split",
            )
        taken = taken | {case.case_id for case in found}
        extra += found
    if extra:
        have = {m.value: sum(m in case.files for case in extra) for m in Modality}
        logger.info("--extra-data: %d training cases (%s)", len(extra), ", ".join(f"{k} {v}" for k, v in have.items()))
    return extra


def cached_cases(
    cases: list[CaseFiles], config: DataConfig, progress: bool = True
) -> tuple[dict[str, CachedCase], dict[str, str]]:
    """The cache entries of ``cases``, prepared where missing or stale, and the cases that could not be read.

    Each data folder has its own folder (:func:`training.data.cache.cache_root`) in the run's cache
    (:func:`training.fitting.config.training_cache_dir`).
    """
    by_folder: dict[Path, list[CaseFiles]] = {}
    for case in cases:
        by_folder.setdefault(case.folder.parent, []).append(case)
    entries: dict[str, CachedCase] = {}
    failed: dict[str, str] = {}
    for folder, found in by_folder.items():
        root = cache_root(training_cache_dir(config), folder)
        summary = prepare_cache(
            found, root, workers=config.prepare_workers, strict=config.strict_data, progress=progress
        )
        entries.update({case_id: CachedCase(root / case_id, record) for case_id, record in summary.entries.items()})
        failed.update(summary.failed)
    return entries, failed


def prepare_data(config: FitConfig, is_main: bool = True, barrier: Callable[[], None] = lambda: None) -> FitData:
    """Find and split the cases of a run, prepare their cache entries, and index their slices.

    Raises:
        DataError: no cases, missing modalities, an impossible split, no usable slices, or (with
            ``--strict-data``) a case that cannot be read.
    """
    src, dst = parse_modalities(config.src), parse_modalities(config.dst)
    root = Path(config.data.folder) if config.data.folder else ensure_phantoms(config.data, is_main, barrier)
    any_to_any = is_any_to_any(config.model.arch)
    usable = _partial_cases(root) if any_to_any else _usable_cases(root, (*src, *dst))
    cases = {case.case_id: case for case in usable}
    split = choose_split(sorted(cases), config.data)
    # held-out ids absent from --data count too: an extra case with one of them would train on a "test" case
    taken = set(cases) | _named_ids(config.data.test_cases) | _named_ids(config.data.val_cases)
    extra = _extra_cases(config.data.extra_data, taken, () if any_to_any else (*src, *dst))
    cases.update((case.case_id, case) for case in extra)
    split.train = sorted(split.train + [case.case_id for case in extra])
    entries, skipped = cached_cases([cases[i] for i in (*split.train, *split.val)], config.data, progress=is_main)
    split.train = [i for i in split.train if i in entries]
    split.val = [i for i in split.val if i in entries]
    params = NormalizationParams(target_anchor=config.data.target_anchor)
    data = config.data
    # the segmentation is read only to weight the loss inside the tumour (--tumour-weight)
    view = SliceView(
        src, dst, any_to_any, params, data.min_brain_fraction, data.context_slices, config.model.weighs_tumour
    )
    train = [ViewedCase(entries[i], view) for i in split.train]
    val = [ViewedCase(entries[i], replace(view, tumour=False)) for i in split.val]
    unlabelled = [case.case_id for case in train if not case.labels]
    if config.model.weighs_tumour and unlabelled:
        logger.warning(
            "--tumour-weight does not apply to %d of %d training cases, which have no _seg or _wholetumour file: %s",
            len(unlabelled),
            len(train),
            ", ".join(unlabelled),
        )
    logger.info(
        "%d cases: %d train (%d slices), %d validation (%d slices), %d test (held out, not loaded)%s",
        split.n_cases,
        len(split.train),
        sum(map(len, train)),
        len(split.val),
        sum(map(len, val)),
        len(split.test),
        f", {len(skipped)} skipped (unreadable)" if skipped else "",
    )
    return FitData(
        source=config.data.folder or PHANTOM_SOURCE,
        split=split,
        train=train,
        val=val,
        output_reference=reference_ranges(train),
        normalization=params,
        skipped=skipped,
    )
