"""``synnet synthesize --t1 a.nii.gz --t1c b.nii.gz --dst T2 -o out/``: one case, from files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from synnet.errors import SynnetError
from synnet.imageio import OutputFormat
from synnet.modalities import ALIAS_NAMES, Modality, parse_modality
from synnet_cli.common import (
    add_engine_options,
    engine,
    metric_rows,
    print_warnings,
    table,
    write_file,
    write_image,
)

# One option per modality name and alias: --t1/--t1n/--t1w, --t1c/--t1ce/--t1gd, --t2/--t2w, --flair/--t2f.
OPTIONS = {m: [a for a in ALIAS_NAMES.split(", ") if parse_modality(a) == m] for m in Modality}


class _Once(argparse.Action):
    """A modality's file, refused when another alias of the same modality already gave one."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        if getattr(namespace, self.dest) is not None:
            parser.error(f"{self.dest} given twice (the last time as {option_string}); give each modality once")
        setattr(namespace, self.dest, values)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synthesize",
        help="synthesize missing contrasts of one case",
        description="Synthesize the --dst contrasts from the given sources; writes OUT/synthetic_<T>.nii.gz "
        "(or .png, .npy with --format) in the first source's space.",
    )
    sources = parser.add_argument_group("sources (NIfTI or PNG, one per modality, under any of its names)")
    for modality, aliases in OPTIONS.items():
        flags = [f"--{a}" for a in sorted(aliases, key=lambda a: (a != modality.value.lower(), a))]
        sources.add_argument(*flags, dest=modality.value, metavar="FILE", type=Path, action=_Once)
    parser.add_argument("--dst", required=True, help="target(s), comma-separated, e.g. T2 or T2,FLAIR")
    parser.add_argument(
        "--truth", action="append", default=[], metavar="T=FILE", help="a target's real image, to score it"
    )
    parser.add_argument(
        "--mask", type=Path, metavar="FILE", help="brain mask (nonzero = brain); default: where any source is nonzero"
    )
    parser.add_argument("-o", "--out", type=Path, default=Path("."), help="output folder (default: .)")
    parser.add_argument(
        "--format",
        choices=get_args(OutputFormat),
        default="nifti",
        help="output files: nifti (default), png (2D inputs: model space on the PNG's grey range) or npy",
    )
    add_engine_options(parser)
    parser.set_defaults(run=run)


def sources_from(args: argparse.Namespace) -> dict[Modality, Path]:
    """The source files given, by modality in canonical order."""
    given = {m: getattr(args, m.value) for m in Modality if getattr(args, m.value) is not None}
    if not given:
        raise SynnetError("no source given; pass e.g. --t1 a_t1.nii.gz (one option per modality)", code="missing_part")
    return given


def truths_from(args: argparse.Namespace) -> dict[Modality, Path]:
    truths = {}
    for item in args.truth:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise SynnetError(f"--truth {item!r}: expected TARGET=FILE, e.g. T2=case_t2.nii.gz", code="bad_request")
        truths[parse_modality(name)] = Path(path)
    return truths


def run(args: argparse.Namespace) -> int:
    result = engine(args).synthesize(
        sources_from(args), args.dst, truths_from(args) or None, mask=args.mask, format=args.format
    )
    rows = []
    for target, model in result.models.items():
        if args.format == "nifti":
            path = write_image(result[target], args.out / f"synthetic_{target.value}.nii.gz")
        else:
            file = result.files[target]
            path = write_file(file.payload, args.out / f"synthetic_{target.value}{file.extension}")
        rows.append((target.value, model, path))
    print(table(("target", "model", "file"), rows))
    for target, metrics in result.metrics.items():
        print(f"\n{target.value} against its truth:")
        print(table(("", "PSNR (dB)", "SSIM"), metric_rows(metrics)))
    print_warnings(result)
    return 0
