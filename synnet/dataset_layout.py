"""How BraTS datasets name their files: one table for training, the CLI's ``fill`` and anyone else.

A dataset root holds one folder per case (subject). Two naming schemes are in use:

* BraTS 2018-2021: ``<case>/<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair``, ``_seg``;
* BraTS 2023:      ``<case>/<case>-t1n.nii.gz``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg``.

Some subsets ship a binary whole-tumour mask (``<case>_wholetumour``) instead of the label map; it is read
as the case's segmentation, flagged so (:attr:`CaseFiles.whole_tumour_only`). Data that is not
skull-stripped to exact zeros (already z-scored, with a constant negative background) ships its brain as a
file, ``<case>_brainmask`` (:attr:`CaseFiles.brain_mask`). ``.nii`` works as well as
``.nii.gz``. A file's modality is the token after the last ``_`` or
``-`` of its name, read with :func:`synnet.modalities.parse_modality`, so every alias the rest of
the project accepts is accepted here too; a file written for a case (:meth:`CaseFiles.file_name`)
follows the case's own scheme, so a filled dataset reads like an original one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from synnet.errors import SynnetError, UnknownModalityError
from synnet.modalities import Modality, parse_modality

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
SEG_TOKEN = "seg"
WHOLE_TUMOUR_TOKEN = "wholetumour"  # a binary mask (1 = tumour), e.g. ../shared/data/brats18_t1_flair
BRAIN_MASK_TOKEN = "brainmask"  # a binary brain mask (1 = brain), e.g. ../shared/data/brats13_flair_t1c


@dataclass(frozen=True)
class Layout:
    """One naming scheme: ``<case><separator><token><extension>``."""

    name: str
    separator: str
    tokens: dict[Modality, str]

    def file_name(self, case_id: str, modality: Modality, extension: str = ".nii.gz") -> str:
        return f"{case_id}{self.separator}{self.tokens[modality]}{extension}"


BRATS_2021 = Layout(
    "BraTS 2018-2021", "_", {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}
)
BRATS_2023 = Layout(
    "BraTS 2023", "-", {Modality.T1: "t1n", Modality.T1c: "t1c", Modality.T2: "t2w", Modality.FLAIR: "t2f"}
)
LAYOUTS = (BRATS_2021, BRATS_2023)


def strip_nifti_suffix(name: str) -> str | None:
    """``case_t1.nii.gz`` -> ``case_t1``; None for a name that is not a NIfTI file's."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def file_token(stem: str) -> str:
    """``Brats18_2013_2_1_t1ce`` -> ``t1ce``; ``BraTS-GLI-00000-000-t2f`` -> ``t2f``."""
    cut = max(stem.rfind("_"), stem.rfind("-"))
    return stem[cut + 1 :].lower()


@dataclass
class CaseFiles:
    """One subject's files on disk: what training, evaluation and ``synnet fill`` know of a case.

    Attributes:
        case_id: the folder name, e.g. ``Brats18_2013_2_1`` or ``BraTS-GLI-00000-000``.
        folder: the case folder.
        files: the image file of each modality found.
        seg: the tumour label map, if present (or the whole-tumour mask: ``whole_tumour_only``).
        whole_tumour_only: ``seg`` is a binary whole-tumour mask, without the tumour's parts.
        brain_mask: a brain-mask file, for data whose background is not exactly 0; None: the brain is
            the nonzero voxels, as in skull-stripped BraTS data.
    """

    case_id: str
    folder: Path
    files: dict[Modality, Path] = field(default_factory=dict)
    seg: Path | None = None
    whole_tumour_only: bool = False
    brain_mask: Path | None = None

    @property
    def missing(self) -> list[Modality]:
        """The modalities without a file, in canonical order."""
        return self.lacks(Modality)

    def lacks(self, required: Iterable[Modality | str]) -> list[Modality]:
        """The modalities of ``required`` (in that order) that this case has no file for."""
        return [m for m in (parse_modality(r) for r in required) if m not in self.files]

    @property
    def layout(self) -> Layout:
        """The naming scheme of the case's files: the separator before their modality token."""
        stem = strip_nifti_suffix(next(iter(self.files.values())).name) or ""
        separator = stem[len(stem) - len(file_token(stem)) - 1]
        return BRATS_2023 if separator == BRATS_2023.separator else BRATS_2021

    @property
    def extension(self) -> str:
        """``.nii.gz`` or ``.nii``, as the case's first file."""
        first = next(iter(self.files.values())).name.lower()
        return next(s for s in NIFTI_SUFFIXES if first.endswith(s))

    def file_name(self, modality: Modality) -> str:
        """The name a file of ``modality`` has in this case's scheme, e.g. ``<case>-t2f.nii.gz``."""
        return self.layout.file_name(self.case_id, modality, self.extension)


def scan_case(folder: str | Path) -> CaseFiles | None:
    """The image files of one case folder; None when it holds none.

    Raises:
        SynnetError: ``duplicate_file`` when two files claim one modality (or two segmentations).
    """
    folder = Path(folder)
    case = CaseFiles(case_id=folder.name, folder=folder)
    for path in sorted(folder.iterdir()):
        stem = strip_nifti_suffix(path.name) if path.is_file() else None
        if stem is None:
            continue
        token = file_token(stem)
        if token == SEG_TOKEN:
            if case.seg is not None and not case.whole_tumour_only:
                raise SynnetError(
                    f"case {case.case_id} has two segmentation files: {case.seg.name} and {path.name}",
                    code="duplicate_file",
                )
            if case.seg is not None:
                logger.warning("case %s: using the label map %s, not %s", case.case_id, path.name, case.seg.name)
            case.seg, case.whole_tumour_only = path, False
            continue
        if token == BRAIN_MASK_TOKEN:
            if case.brain_mask is not None:
                raise SynnetError(
                    f"case {case.case_id} has two brain masks: {case.brain_mask.name} and {path.name}",
                    code="duplicate_file",
                )
            case.brain_mask = path
            continue
        if token == WHOLE_TUMOUR_TOKEN:  # the label map, when there is one too, holds more
            if case.seg is None:
                case.seg, case.whole_tumour_only = path, True
            else:
                logger.warning("case %s: using the label map %s, not %s", case.case_id, case.seg.name, path.name)
            continue
        try:
            modality = parse_modality(token)
        except UnknownModalityError:
            logger.debug("ignoring %s: %r is not a modality suffix", path, token)
            continue
        if modality in case.files:
            raise SynnetError(
                f"case {case.case_id} has two {modality.value} files: {case.files[modality].name} and {path.name}",
                code="duplicate_file",
            )
        case.files[modality] = path
    return case if case.files else None


def scan_dataset(root: str | Path) -> list[CaseFiles]:
    """Every case folder under ``root`` that holds an image file, sorted by case id.

    Raises:
        SynnetError: ``no_cases`` when ``root`` is not a folder or holds no case; ``duplicate_file``.
    """
    root = Path(root)
    if not root.is_dir():
        raise SynnetError(f"dataset root {str(root)!r} is not a folder", code="no_cases")
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        case = scan_case(folder)
        if case is None:
            logger.warning("skipping %s: no <case>_t1/_t1ce/_t2/_flair or -t1n/-t1c/-t2w/-t2f NIfTI files", folder)
            continue
        cases.append(case)
    if not cases:
        raise SynnetError(
            f"no BraTS cases under {str(root)!r}: expected sub-folders like <case>/<case>_t1.nii.gz "
            "(BraTS 2018-2021) or <case>/<case>-t1n.nii.gz (BraTS 2023)",
            code="no_cases",
        )
    return sorted(cases, key=lambda c: c.case_id)
