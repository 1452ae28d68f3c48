"""Typed errors for bad input. Each carries a short machine code and a human message."""

from __future__ import annotations


class SynnetError(ValueError):
    """Base class for every input problem the project reports to a user.

    Attributes:
        code: short snake_case identifier, stable across releases (used in API error bodies).
    """

    code: str = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def detail(self) -> str:
        return str(self)


class UnknownModalityError(SynnetError):
    code = "unknown_modality"


class InvalidImageError(SynnetError):
    """An image file that cannot be used: corrupt, truncated, empty, wrong shape, NaN/Inf, too big.

    The `code` attribute says which: ``empty_file``, ``corrupt_file``, ``truncated_file``,
    ``unsupported_format``, ``bad_dimensions``, ``non_finite``, ``too_large``, ``colour_image``.
    """

    code = "invalid_image"
