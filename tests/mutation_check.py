"""Plant small bugs in a copy of the repository, one at a time, and report which the test suite misses.

    python tests/mutation_check.py              # every mutant (about 20 minutes on 2 cores)
    python tests/mutation_check.py --list       # what would be planted, and where
    python tests/mutation_check.py --only lost_slice windows_at_corner

A test that cannot fail is a defect: each mutant below is a real, small bug in the core (the volume
pipeline, routing, normalization, metrics, the store's forward) or in what trains and checks the models,
and the tests named for that behaviour must fail on it. Run on demand, not in CI.

How: the files git knows (tracked, and untracked ones it does not ignore) are copied into a fresh temporary
folder with nothing beside it, so there is no ``../shared`` and the real-data tests skip, as on a
contributor's fresh clone. The unplanted copy runs every chosen test once first (they must pass); then each
mutant is planted, its tests run under this Python with the copy first on ``PYTHONPATH`` (and no bytecode
cache, so no stale ``.pyc`` hides a plant), and the file is restored. Only each mutant's own subset runs,
the tests that exercise the changed code, so that the whole check fits a 2-core machine: the full suite per
mutant would take hours. The table printed at the end (Markdown) is what docs/testing.md records.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def replace(old: str, new: str) -> Callable[[str], str]:
    """An edit that replaces the one occurrence of ``old``; a plant that no longer applies is an error, not a pass."""

    def edit(text: str) -> str:
        count = text.count(old)
        if count != 1:
            raise PlantError(f"expected the text once, found it {count} times: {old!r}")
        return text.replace(old, new)

    return edit


class PlantError(RuntimeError):
    """The code changed so that a mutant's text is gone: update the mutant."""


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    path: str
    edit: Callable[[str], str]
    tests: tuple[str, ...]  # node ids or files, relative to the repository


# The tests that compare served volumes with the network run directly, and those of the unified model.
SERVED_VOLUMES = ("tests/service/test_synthesize.py", "tests/service/test_more_shapes.py")
UNIFIED_MODEL = (
    "tests/core/test_unified_store.py", "tests/service/test_any_to_any.py",
    "tests/bundled/test_bundled_models.py::test_the_unified_model_fills_every_missing_modality_from_any_sources",
)  # fmt: skip

MUTANTS = [
    Mutant(
        "lost_slice", "the volume pipeline zeroes the last brain slice of a multi-slice volume",
        "synnet/inference.py",
        replace("    y *= stack.mask[None]\n    return y\n",
                "    y *= stack.mask[None]\n    if y.shape[-1] > 1:\n"
                "        y[..., stack.slices[-1]] = 0\n    return y\n"),
        SERVED_VOLUMES,
    ),
    Mutant(
        "swapped_channels", "a dedicated model's sources stacked in reverse manifest order",
        "synnet/inference.py",
        replace("normalization)[0]) for m in manifest.src])",
                "normalization)[0]) for m in reversed(manifest.src)])"),
        SERVED_VOLUMES,
    ),
    Mutant(
        "unified_channels_reversed", "the unified model's channels in reverse order",
        "synnet/inference.py",
        replace("                for m in manifest.src\n            ]",
                "                for m in reversed(manifest.src)\n            ]"),
        UNIFIED_MODEL,
    ),
    Mutant(
        "unified_t1c_t2_swapped", "the store's forward hands the unified network T1c and T2 swapped",
        "synnet/store.py",
        replace("self.module(x, present)", "self.module(x[:, [0, 2, 1, 3]], present[:, [0, 2, 1, 3]])"),
        UNIFIED_MODEL,
    ),
    Mutant(
        "unified_missing_as_zeros", "a source not given sent as zeros instead of NaN (so marked present)",
        "synnet/inference.py",
        replace("missing = np.full(shape, np.nan, dtype=np.float32)", "missing = np.zeros(shape, dtype=np.float32)"),
        UNIFIED_MODEL,
    ),
    Mutant(
        "off_by_one_crop", "the brain box starts one pixel after the model's grid",
        "synnet/inference.py",
        replace("start = int(hits[0]) // multiple * multiple\n", "start = int(hits[0]) // multiple * multiple + 1\n"),
        (*SERVED_VOLUMES, "tests/service/test_speed_levers.py", "tests/service/test_units.py"),
    ),
    Mutant(
        "normalization_ignores_the_given_mask", "sources normalized inside their own outline, not the mask given",
        "synnet/inference.py",
        replace("return slice_stack(model_input(sources, mask, manifest), mask,",
                "return slice_stack(model_input(sources, np.any([s != 0 for s in sources.values()], axis=0), "
                "manifest), mask,"),
        ("tests/service/test_synthesize.py::test_uploaded_mask_limits_the_output",),
    ),
    Mutant(
        "inverted_output_mask", "the output kept outside the brain and zeroed inside",
        "synnet/inference.py",
        replace("    y *= stack.mask[None]\n", "    y *= ~stack.mask[None]\n"),
        ("tests/service/test_synthesize.py",),
    ),
    Mutant(
        "inverted_brain_mask", "the brain mask is the zero voxels of the sources",
        "synnet/normalization.py",
        replace("mask |= np.asarray(image) != 0", "mask |= np.asarray(image) == 0"),
        ("tests/core/test_normalization.py", "tests/core/test_metrics.py"),
    ),
    Mutant(
        "wrong_percentile", "normalization's upper bound at the 99th percentile instead of the manifest's 99.5th",
        "synnet/normalization.py",
        replace("[params.lower_percentile, params.upper_percentile]",
                "[params.lower_percentile, params.upper_percentile - 0.5]"),
        ("tests/core/test_normalization.py", "tests/core/test_metrics.py", "tests/service/test_synthesize.py"),
    ),
    Mutant(
        "raw_units_from_the_top", "a target mapped back to raw units from the top of its range",
        "synnet/normalization.py",
        replace("(value_range.hi - value_range.lo) + value_range.lo",
                "(value_range.hi - value_range.lo) + value_range.hi"),
        ("tests/core/test_normalization.py", "tests/service/test_synthesize.py"),
    ),
    Mutant(
        "brain_scores_scaled_with_background",
        "in-brain scores scale the prediction over the whole box, background too",
        "synnet/metrics.py",
        replace("brain_scaled(pred[box], inside)", "brain_scaled(pred[box], np.ones_like(inside))"),
        ("tests/core/test_metrics.py::test_masked_metrics_use_only_brain_voxels",),
    ),
    Mutant(
        "routing_prefers_the_lower_score", "routing hands a target to a model that scores lower, not higher",
        "synnet/routing.py",
        replace("getattr(theirs, k) > getattr(ours, k) + m", "getattr(theirs, k) < getattr(ours, k) - m"),
        ("tests/core/test_routing_by_quality.py", "tests/service/test_routing.py"),
    ),
    Mutant(
        "routing_ignores_the_rerun_noise", "routing hands a target over on a gain within a rerun's noise",
        "synnet/routing.py",
        replace("getattr(theirs, k) > getattr(ours, k) + m", "getattr(theirs, k) > getattr(ours, k)"),
        ("tests/core/test_routing_by_quality.py", "tests/service/test_routing.py"),
    ),
    Mutant(
        "one_channel_input_left_nchw", "the store hands a one-source network NCHW input that only counts as NHWC",
        "synnet/store.py",
        replace("if x.is_contiguous(memory_format=torch.channels_last) and x.stride(1) == 1:",
                "if x.is_contiguous(memory_format=torch.channels_last):"),
        ("tests/service/test_speed_levers.py",),
    ),
    Mutant(
        "windows_at_corner", "every training window at the top-left corner",
        "training/data/dataset.py",
        replace("    return centre_row - window // 2, centre_col - window // 2\n", "    return 0, 0\n"),
        ("tests/training/test_dataset.py::test_windows_are_centred_inside_the_brain_box",),
    ),
    Mutant(
        "windows_anywhere", "window centres drawn a window's width beyond the brain's box",
        "training/data/dataset.py",
        replace("centre_row = int(rng.integers(box[0], box[1] + 1))",
                "centre_row = int(rng.integers(box[0] - window, box[1] + window + 1))"),
        ("tests/training/test_dataset.py::test_windows_are_centred_inside_the_brain_box",),
    ),
    Mutant(
        "flip_view_not_flipped_back",
        "the unified model's flip average adds a flipped view without flipping it back",
        "training/models/flip_average.py",
        replace("total += self.network(x.flip(dims), present).flip(dims)",
                "total += self.network(x.flip(dims), present)"),
        ("tests/training/test_flip_ensemble.py::test_averaged_networks_keep_their_average_through_the_export",),
    ),
    Mutant(
        "flip_record_lost", "a bundled model that averages over flips loses its manifest record",
        "model_store/synnet_t1_to_t2/manifest.json",
        lambda text: drop_json_field(text, "flip_ensemble"),
        ("tests/bundled/test_bundled_models.py::test_the_models_without_a_flip_ensemble_are_the_t1c_models_it_did_not_help",
         "tests/bundled/test_bundled_models.py::test_a_flip_ensemble_was_checked_on_training_cases_only_and_by_the_rule"),
    ),
    Mutant(
        "settings_read_at_import", "the settings built once at import, so clearing the cache reads nothing anew",
        "synnet/settings/__init__.py",
        lambda text: replace("    return read(Settings)\n", "    return _AT_IMPORT\n")(text)
        + "\n\n_AT_IMPORT = Settings()\n",
        ("tests/service/test_auth_settings.py::test_get_settings_reads_the_environment_once",),
    ),
]  # fmt: skip


def drop_json_field(text: str, key: str) -> str:
    import json

    data = json.loads(text)
    if data.get(key) is None:
        raise PlantError(f"no {key!r} to drop")
    data[key] = None
    return json.dumps(data, indent=2) + "\n"


def copy_repository(destination: Path) -> None:
    """The files git knows, as they are in the working tree (a fresh clone plus uncommitted work)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)


@dataclass
class Outcome:
    failed: list[str]
    passed: int
    skipped: int
    seconds: float


def run_tests(copy: Path, tests: Sequence[str], log: Path) -> Outcome:
    """pytest on ``tests`` in ``copy``; which tests failed, read from its JUnit XML."""
    report = log.with_suffix(".xml")
    environ = os.environ | {"PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *tests]
    began = time.monotonic()
    with log.open("w") as out:
        subprocess.run(command, cwd=copy, env=environ, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - began
    if not report.exists():
        return Outcome([f"pytest did not run (see {log})"], 0, 0, seconds)
    failed, passed, skipped = [], 0, 0
    for case in ElementTree.parse(report).iter("testcase"):
        node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(node)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return Outcome(failed, passed, skipped, seconds)


def short(node: str) -> str:
    """``tests/a/test_b.py::test_c[x]`` → ``test_b::test_c[x]``."""
    path, _, name = node.partition("::")
    return f"{Path(path).stem}::{name}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="plant only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and the logs")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.only and len(mutants) != len(args.only):
        parser.error(f"unknown mutant(s); known: {', '.join(m.name for m in MUTANTS)}")
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name:36} {mutant.path:44} {mutant.bug}")
        return 0

    workspace = Path(tempfile.mkdtemp(prefix="synnet-mutation-"))
    copy = workspace / "repo"  # nothing beside it: no ../shared
    copy_repository(copy)
    print(f"copy in {copy}", flush=True)
    every_test = sorted({t for m in mutants for t in m.tests})
    clean = run_tests(copy, every_test, workspace / "unplanted.log")
    print(f"unplanted: {clean.passed} passed, {clean.skipped} skipped, {len(clean.failed)} failed "
          f"in {clean.seconds:.0f} s", flush=True)  # fmt: skip
    if clean.failed:
        print("the unplanted copy fails these tests, so the check means nothing:", *clean.failed, sep="\n  ")
        return 2

    rows, missed = [], []
    for mutant in mutants:
        path = copy / mutant.path
        original = path.read_text()
        try:
            path.write_text(mutant.edit(original))
        except PlantError as error:
            print(f"{mutant.name}: could not plant: {error}", flush=True)
            rows.append((mutant, None))
            continue
        try:
            outcome = run_tests(copy, mutant.tests, workspace / f"{mutant.name}.log")
        finally:
            path.write_text(original)
        print(f"{mutant.name}: {len(outcome.failed)} failed, {outcome.passed} passed in {outcome.seconds:.0f} s",
              flush=True)  # fmt: skip
        rows.append((mutant, outcome))
        if not outcome.failed:
            missed.append(mutant.name)

    print("\n| bug planted | file | tests run | caught by |\n| --- | --- | --- | --- |")
    for mutant, outcome in rows:
        run = ", ".join(short(t) if "::" in t else Path(t).stem for t in mutant.tests)
        if outcome is None:
            verdict = "**not planted** (the code changed: update the mutant)"
        elif outcome.failed:
            verdict = "<br>".join(short(t) for t in outcome.failed)
        else:
            verdict = "**missed**"
        print(f"| {mutant.bug} (`{mutant.name}`) | {mutant.path} | {run} | {verdict} |")
    if args.keep:
        print(f"\nkept: {workspace}")
    else:
        shutil.rmtree(workspace, ignore_errors=True)
    unplanted = [m.name for m, o in rows if o is None]
    return 1 if missed or unplanted else 0


if __name__ == "__main__":
    sys.exit(main())
