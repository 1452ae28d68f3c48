"""The one request pipeline behind ``POST /synthesize``, the ``synnet`` command and :class:`synnet.Synthesizer`.

    SynthesisRequest ─ decode ─► Inputs ─ plan ─► models ─ prepare ─► chunks (B, C, h, w)
        ─ forward (the caller's) ─► outputs (B, D, h, w) ─ finish ─► SynthesizedTarget per target

1. **decode** (:mod:`~synnet.pipeline.inputs`): every source, truth and the optional brain mask
   read from bytes, a path, a nibabel image or an array; one voxel grid checked
   (:func:`synnet.grid.check_same_grid`); the mask made from the sources when none is given;
   input warnings (:mod:`synnet.input_checks`); the output format settled.
2. **plan**: the models for ``src → dst`` (:func:`synnet.routing.plan`, through the caller's
   ``route``), each checked to accept the input's size.
3. **prepare**: per model, the normalized slices that hold brain, cropped to the brain's box
   (:func:`synnet.inference.prepare`), cut into chunks of the batch size.
4. **forward**: supplied by the caller, a plain ``(B, C, H, W) -> (B, D, H, W)`` callable: the
   store's :meth:`synnet.store.LoadedModel.forward` for the API and the CLI, the service's
   batcher (awaited) for the service.
5. **finish** (:mod:`~synnet.pipeline.outputs`): outputs put back in place, clipped and zeroed
   outside the brain, mapped to raw units, scored against the truth, encoded as NIfTI (the
   input's header and affine), PNG or npy.

The stages are plain synchronous methods of :class:`Pipeline`; :func:`run` (synchronous) and
:func:`run_async` (the models concurrently, CPU-heavy stages offloaded to a worker thread) call
them in the same order and differ only in the awaiting. Two ten-line loops are simpler than either
alternative: one async loop would need an event loop where a notebook may already run one, and
a generator of work items would hide the order of the stages. The same inputs give the same voxels,
metrics, warnings and errors on every way in, and an adapter only translates its own inputs (a
form, paths, flags) into a :class:`SynthesisRequest` and the :class:`Synthesis` back.
"""

from __future__ import annotations

from synnet.pipeline.inputs import Inputs, decode_inputs, read_input
from synnet.pipeline.outputs import Encoding, SynthesizedTarget, output_format
from synnet.pipeline.request import ImageData, ImageInput, SynthesisRequest
from synnet.pipeline.run import Pipeline, Synthesis, run, run_async

__all__ = [
    "Encoding",
    "ImageData",
    "ImageInput",
    "Inputs",
    "Pipeline",
    "Synthesis",
    "SynthesisRequest",
    "SynthesizedTarget",
    "decode_inputs",
    "output_format",
    "read_input",
    "run",
    "run_async",
]
