"""synnet: the synthesis core that the service, training, the ``synnet`` command and the Python API share.

Modality names, image I/O, intensity normalization, metrics, the model manifest and store, routing
and the volume pipeline live here, in one place, so that what training writes is exactly what the
service reads, and every way in gives the same voxels. The Python API::

    from synnet import Synthesizer
    out = Synthesizer().synthesize({"T1": "a_t1.nii.gz", "T1c": "a_t1ce.nii.gz"}, dst="T2")
    out["T2"].to_filename("synthetic_t2.nii.gz")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["SynthesisResult", "Synthesizer", "__version__"]

if TYPE_CHECKING:
    from synnet.api import SynthesisResult, Synthesizer


def __getattr__(name: str) -> object:
    # Lazy: `import synnet.modalities` (the service, training) must not pay for torch via the API.
    if name in ("Synthesizer", "SynthesisResult"):
        from synnet import api

        return getattr(api, name)
    raise AttributeError(f"module 'synnet' has no attribute {name!r}")
