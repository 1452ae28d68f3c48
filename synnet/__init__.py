"""synnet: the contract shared by training and serving.

Modality names, image I/O, intensity normalization, metrics and the model manifest live here,
in one place, so that what training writes is exactly what the service reads.
"""

from __future__ import annotations

__version__ = "0.1.0"
