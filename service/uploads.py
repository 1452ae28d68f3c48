"""Reading the multipart form of ``POST /synthesize`` into named parts.

Part names say what a file is: a modality name or alias (``T1``, ``t1ce``, ``flair``...) for a
source, ``truth_<modality>`` for a ground truth, ``mask`` for a brain mask. Anything else is
refused by name rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from synnet.errors import SynnetError, UnknownModalityError
from synnet.imageio.read import declared_bytes
from synnet.modalities import VALID_NAMES, Modality, parse_modality

TRUTH_PREFIX = "truth_"
MASK_PART = "mask"


@dataclass(frozen=True)
class Part:
    """One uploaded file: the form field it came in, its file name and its bytes."""

    field: str
    filename: str | None
    data: bytes


@dataclass
class FormParts:
    """The uploaded files by role, sources in the order they were sent."""

    sources: dict[Modality, Part] = field(default_factory=dict)
    truths: dict[Modality, Part] = field(default_factory=dict)
    mask: Part | None = None

    def files(self) -> list[Part]:
        return [*self.sources.values(), *self.truths.values(), *([self.mask] if self.mask else [])]

    def declared_bytes(self) -> int:
        """What decoding every part costs by its header (0 for a part the reader refuses from its header)."""
        return sum(declared_bytes(part.data) or 0 for part in self.files())


def classify(name: str) -> tuple[str, Modality | None]:
    """``"t1ce"`` → ("source", T1c); ``"truth_T2"`` → ("truth", T2); ``"mask"`` → ("mask", None)."""
    key = name.strip()
    if key.lower() == MASK_PART:
        return "mask", None
    if key.lower().startswith(TRUTH_PREFIX):
        return "truth", parse_modality(key[len(TRUTH_PREFIX) :])
    try:
        return "source", parse_modality(key)
    except UnknownModalityError:
        raise UnknownModalityError(
            f"form part {name!r} is not a modality; name each file part after its modality "
            f"({VALID_NAMES}, aliases accepted), truth_<modality> for a ground truth, or mask"
        ) from None


async def read_form(request: Request, max_parts: int) -> FormParts:
    """Parse the multipart body into :class:`FormParts`.

    Raises:
        SynnetError: not multipart (415), a malformed body (400), a non-file part, a duplicate
            or unknown part name (422).
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise SynnetError(
            f"expected a multipart/form-data body with one file part per image, got {content_type or 'no body'!r}",
            code="unsupported_media_type",
        )
    parts = FormParts()
    try:
        async with request.form(max_files=max_parts, max_fields=max_parts) as form:
            for name, value in form.multi_items():
                role, modality = classify(name)
                if not isinstance(value, UploadFile):
                    raise SynnetError(f"form part {name!r} must be a file upload, not a text field", code="not_a_file")
                part = Part(name, value.filename, await value.read())
                _place(parts, role, modality, part)
    except StarletteHTTPException as exc:  # raised by Starlette for a malformed multipart body
        raise SynnetError(f"malformed multipart body: {exc.detail}", code="bad_request") from None
    return parts


def _place(parts: FormParts, role: str, modality: Modality | None, part: Part) -> None:
    if role == "mask":
        if parts.mask is not None:
            raise SynnetError("the mask part was sent twice", code="duplicate_part")
        parts.mask = part
        return
    assert modality is not None
    bucket = parts.truths if role == "truth" else parts.sources
    if modality in bucket:
        raise SynnetError(
            f"two parts name {role} {modality.value}: {bucket[modality].field!r} and {part.field!r}",
            code="duplicate_part",
        )
    bucket[modality] = part
