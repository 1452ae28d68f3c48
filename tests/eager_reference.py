"""The reference a synthesis is compared with: the exported network run directly, without the service or
the volume pipeline (only the brain box is reused from it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from synnet.inference import brain_box
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask, denormalize, normalize
from synnet.store import default_batch_size

# Slices per forward in the service, the API and the CLI on CPU (synnet.store.DEFAULT_BATCH_SIZE): the
# reference runs the same batches.
SERVICE_BATCH_SIZE = default_batch_size(torch.device("cpu"))


def eager_synthesis(
    module: torch.jit.ScriptModule,
    manifest: ModelManifest,
    sources: dict[Modality, np.ndarray],
    *,
    crop: bool,
    model_space: bool = False,
    mask: np.ndarray | None = None,
    batch_size: int = SERVICE_BATCH_SIZE,
) -> np.ndarray:
    """Run the exported model on the brain slices, without the service: (len(dst), *shape) raw units.

    The slices go through the network in the service's batches (``batch_size`` consecutive brain
    slices) and memory layout (NHWC on CPU), so both run the same kernels and a max-pool near-tie
    breaks the same way: the result must then match the service's to float rounding, slice by slice.
    ``crop=True`` crops every slice to the service's brain box, the only piece of the service reused
    here. ``mask`` defaults to the union of the sources given (the service uses all sources sent).
    An any-to-any model gets a zero channel and ``present = 0`` for each modality not in ``sources``.
    """
    given = [m for m in manifest.src if m in sources]
    mask = brain_mask([sources[m] for m in given]) if mask is None else mask
    zeros = np.zeros(mask.shape, np.float32)
    x = np.stack([normalize(sources[m], mask, manifest.normalization)[0] if m in sources else zeros
                  for m in manifest.src])  # fmt: skip
    present = torch.tensor([[float(m in sources) for m in manifest.src]])
    volume = x if x.ndim == 4 else x[..., None]
    vmask = mask if mask.ndim == 3 else mask[..., None]
    rows, cols = (slice(None), slice(None))
    if crop:
        rows, cols = brain_box(vmask.any(axis=2), manifest.input.multiple_of, manifest.input.min_size)
    out = np.zeros((len(manifest.dst), *vmask.shape), np.float32)
    brain_slices = np.flatnonzero(vmask.any(axis=(0, 1)))
    with torch.inference_mode():
        for start in range(0, brain_slices.size, batch_size):
            batch = brain_slices[start : start + batch_size]
            chunk = torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume[:, rows, cols][..., batch], -1, 0)))
            nhwc = torch.empty_like(chunk, memory_format=torch.channels_last).copy_(chunk)
            # present contiguous, as the store makes it: TorchScript optimizes its graph anew for other strides
            y = module(nhwc) if not manifest.any_to_any else module(nhwc, present.repeat(len(batch), 1))
            out[:, rows, cols, batch] = np.moveaxis(y.numpy(), 0, -1)
    out = np.clip(out, 0, 1) * vmask[None]
    out = out.reshape(len(manifest.dst), *mask.shape)
    if model_space:
        return out
    return np.stack([denormalize(out[i], mask, manifest.output_reference[t]) for i, t in enumerate(manifest.dst)])


@contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one thread meanwhile, as a service started with ``SYNNET_TORCH_THREADS=1`` runs: the same kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
