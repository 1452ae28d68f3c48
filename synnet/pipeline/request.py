"""What a caller asks for: the sources, targets, optional truths and brain mask, and the output format."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import nibabel as nib
import numpy as np

from synnet.errors import SynnetError
from synnet.imageio import OutputFormat
from synnet.modalities import Modality, check_disjoint, format_modalities

ImageData: TypeAlias = bytes | str | os.PathLike[str] | nib.Nifti1Image | nib.Nifti2Image | np.ndarray


@dataclass(frozen=True)
class ImageInput:
    """One image as the caller has it, not yet decoded.

    Attributes:
        data: a file's bytes (an upload), a path to a NIfTI or PNG file, a nibabel image, or an
            array (H, W) or (X, Y, Z).
        label: how read errors name bytes, an array or a nibabel image, e.g. ``"T1 part t1.nii.gz"``
            (an upload's label ends with its file name, which tells formats apart when the bytes
            do not); a path is named by its file name.
    """

    data: ImageData
    label: str | None = None


@dataclass(frozen=True)
class SynthesisRequest:
    """One synthesis: ``dst`` from ``sources``, checked where it is made.

    Attributes:
        src: the source modalities, in the order their images come.
        dst: the targets, in the order results are returned.
        sources: an image per source.
        truths: a real image per target to score it against (any subset of ``dst``).
        mask: the brain mask (nonzero = brain); None: the union of the sources' nonzero voxels.
        format: the output file format; None: the input's (NIfTI or PNG).

    Raises:
        SynnetError: ``overlapping_modalities`` when a target is also a source,
            ``unexpected_part`` for a truth of something that is not a target.
    """

    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    sources: Mapping[Modality, ImageInput]
    truths: Mapping[Modality, ImageInput] = field(default_factory=dict)
    mask: ImageInput | None = None
    format: OutputFormat | None = None

    def __post_init__(self) -> None:
        check_disjoint(self.src, self.dst)
        if set(self.sources) != set(self.src):
            given = format_modalities(self.sources)
            raise ValueError(f"images given for {given} but src is {format_modalities(self.src)}")
        stray = [m.value for m in self.truths if m not in self.dst]
        if stray:
            raise SynnetError(
                f"ground truth for {', '.join(stray)} sent, but it is not a target (dst={format_modalities(self.dst)})",
                code="unexpected_part",
            )
