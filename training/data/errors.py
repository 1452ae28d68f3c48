"""Errors raised while finding, loading or slicing training data."""

from __future__ import annotations

from synnet.errors import SynnetError


class DataError(SynnetError):
    """A dataset folder or case that cannot be used for training or evaluation.

    The ``code`` says why: ``no_cases``, ``missing_modality``, ``duplicate_file``,
    ``mismatched_case``, ``bad_split`` or ``bad_slices``.
    """

    code = "invalid_data"
