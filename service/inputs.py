"""From the uploaded form to a :class:`synnet.pipeline.SynthesisRequest`: each part in its role.

Every source in ``src`` needs its part and no part may be for something not asked for; the
request itself refuses a truth of a non-target. Decoding and the grid check are the pipeline's.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.errors import MissingPartError
from service.uploads import FormParts, Part
from synnet.errors import SynnetError
from synnet.imageio import OutputFormat
from synnet.modalities import Modality, format_modalities
from synnet.pipeline import ImageInput, SynthesisRequest


def check_parts(parts: FormParts, src: Sequence[Modality]) -> None:
    """Every source in ``src`` has a part; no source part is for a modality not in ``src``."""
    for modality in src:
        if modality not in parts.sources:
            raise MissingPartError(
                f"missing file part for {modality.value} (src={format_modalities(src)}); "
                f"send the image as a form part named {modality.value!r}"
            )
    extra = [m.value for m in parts.sources if m not in src]
    if extra:
        raise SynnetError(
            f"file part(s) {', '.join(extra)} sent but not listed in src={format_modalities(src)}",
            code="unexpected_part",
        )


def synthesis_request(
    parts: FormParts, src: Sequence[Modality], dst: Sequence[Modality], fmt: OutputFormat | None
) -> SynthesisRequest:
    """The pipeline's request for the uploaded parts (checked by :func:`check_parts` first)."""
    return SynthesisRequest(
        src=tuple(src),
        dst=tuple(dst),
        sources={m: _image(parts.sources[m]) for m in src},
        truths={m: _image(part) for m, part in parts.truths.items()},
        mask=_image(parts.mask) if parts.mask is not None else None,
        format=fmt,
    )


def _image(part: Part) -> ImageInput:
    # The label names the form part in every error; it keeps the file's extension at its end,
    # which read_image uses to tell formats apart when the magic bytes do not.
    return ImageInput(part.data, f"{part.field} part {part.filename}" if part.filename else f"{part.field} part")
