"""``synnet fill DATASET -o OUT``: the BraSyn task, every case's missing modalities synthesized.

For each case folder in the BraTS 2018-2021 or 2023 layout (:mod:`synnet.dataset_layout`), the
modalities without a file are synthesized from those present, by the model the service would
route that configuration to, and written as ``OUT/<case>/<case>-t2f.nii.gz`` (or
``<case>_flair.nii.gz``: the case's own naming, no suffix), in the sources' space. Complete cases
are skipped; so are files a previous run already wrote (each file appears at once, by a rename),
so a stopped run resumes where it stopped. A case that fails is reported and the others go on.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from synnet.dataset_layout import CaseFiles, scan_dataset
from synnet.errors import SynnetError
from synnet.modalities import Modality, format_modalities
from synnet_cli.common import add_engine_options, engine, table, write_image
from synnet_cli.remote import RemoteError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fill",
        help="synthesize the missing modalities of every case of a BraTS dataset",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("dataset", type=Path, help="folder of case folders (<case>/<case>_t1.nii.gz or -t1n...)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="where <case>/<missing file> are written")
    add_engine_options(parser)
    parser.set_defaults(run=run)


def pending(case: CaseFiles, out: Path) -> list[Modality]:
    """The case's missing modalities, when at least one of their files is not in ``out`` yet; else none."""
    missing = case.missing
    if all((out / case.case_id / case.file_name(m)).exists() for m in missing):
        return []
    return missing


def run(args: argparse.Namespace) -> int:
    cases = scan_dataset(args.dataset)
    synthesizer = engine(args)
    rows: list[tuple[str, str, str, str]] = []
    failed: list[tuple[str, str]] = []
    complete = resumed = 0
    progress = tqdm(cases, desc="fill", unit="case")
    for case in progress:
        progress.set_postfix_str(case.case_id)
        if not case.missing:
            complete += 1
            continue
        targets = pending(case, args.out)
        if not targets:
            resumed += 1
            continue
        # Every missing modality is planned together (as for a fresh case), so a resumed case gets
        # the same model and voxels as an uninterrupted run; only the absent files are written.
        sources = {m: case.files[m] for m in Modality if m in case.files}
        started = time.perf_counter()
        try:
            result = synthesizer.synthesize(sources, targets)
        except (SynnetError, RemoteError) as exc:
            failed.append((case.case_id, f"{getattr(exc, 'code', 'error')}: {exc}"))
            progress.write(f"{case.case_id}: failed: {failed[-1][1]}")
            continue
        written = []
        for target in targets:
            path = args.out / case.case_id / case.file_name(target)
            if not path.exists():
                write_image(result[target], path)
                written.append(target)
        for warning in result.warnings:
            progress.write(f"{case.case_id}: warning ({warning.code}): {warning.message}")
        models = ", ".join(dict.fromkeys(result.models[t] for t in written))
        rows.append((case.case_id, format_modalities(written), models, f"{time.perf_counter() - started:.1f}"))
    progress.close()
    if rows:
        print(table(("case", "filled", "model", "seconds"), rows))
    print(
        f"{len(rows)} case(s) filled, {complete} complete, {resumed} filled before, {len(failed)} failed "
        f"(of {len(cases)} in {args.dataset}); output in {args.out}"
    )
    for case_id, reason in failed:
        print(f"failed: {case_id}: {reason}")
    return 1 if failed else 0
