"""How close two float computations of the same function must be, in this suite: one place for the policy.

The machines that run this suite differ (an AVX2 Zen 2, an AVX-512 Zen 5 and a Xeon with AMX have been seen),
and oneDNN and ATen pick different kernels on each, for each memory layout and for each batch
size. Float32 results then differ in their last bits: a convolution sums hundreds of products,
each rounded at 2**-24 relative, in an order that depends on the kernel. Three kinds of check
follow from that:

* **Same path, same process** (resume vs uninterrupted training, the same module called twice,
  the same TorchScript op graph as eager): compare exactly, or with :func:`assert_close_to_scale`
  where the paths are the same ops but not provably the same kernel.
* **Same function, different kernels, float32, no max-pool indices** (interpolation, normalization):
  :func:`assert_close_to_scale` with :data:`FLOAT32_RTOL`, a tolerance relative to the output's
  magnitude, never an absolute bit pin.
* **Same function, different kernels, through SynNet's or Deconv-net's max-pool indices.** A 2×2
  cell whose two largest values differ by less than the rounding difference can pick the other
  index on another kernel (measured on an AVX2 Zen 2: NCHW vs channels_last flipped one index in
  SynNet's decoder, moving one activation by a pixel; 29 of 7,844 outputs moved by up to 4.6e-5,
  and in Deconv-net one input in 20 moved outputs by 2.6e-3). Such a flip is legitimate and
  local: it changes only the outputs in that cell's receptive field. Either compute in float64,
  where kernels differ by ~1e-15 relative and a near-tie that close is practically impossible
  (:func:`assert_close_to_scale` with :data:`FLOAT64_RTOL`), or allow a small fraction of outputs
  to move (:func:`assert_close_but_for_pool_flips`). A real defect (a wrong layout, crop,
  normalization or channel order) moves far more than that fraction.
"""

from __future__ import annotations

import numpy as np
import torch

# Float32 results of different kernels, relative to the output's largest magnitude. Measured
# differences without index flips are <= 3e-7 of the scale (NCHW vs channels_last, frozen vs
# eager, batch 1 vs 4, AVX2 vs SSE4.1 code paths); 1e-5 leaves a 30x margin for deeper or wider
# networks and other CPUs, and is still 100x below what a real defect moves.
FLOAT32_RTOL = 1e-5
# Float64 results of different kernels: measured <= 2e-15 of the scale; 1e-10 is far above that
# and far below any real change.
FLOAT64_RTOL = 1e-10
# Outputs a max-pool index flip may move, as a fraction of all outputs. One flip moves at most the
# receptive field of one pooled cell; measured 0.37 % of a 2x2x37x53 output for one flip. A flip in a deep
# cell moves more: 69 outputs, 5.4 % of a single 32x40 slice, batch 4 against batch 1 on the AMX Xeon; so a
# test that batches one small slice differently compares it with the same batch instead (test_batcher.py).
POOL_FLIP_FRACTION = 0.02


def _as_float64(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)).astype(np.float64)


def _tolerance(expected: np.ndarray, rtol: float) -> float:
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return rtol * max(scale, np.finfo(np.float32).tiny)


def assert_close_to_scale(
    actual: torch.Tensor | np.ndarray, expected: torch.Tensor | np.ndarray, rtol: float = FLOAT32_RTOL
) -> None:
    """Every element within ``rtol`` times the largest magnitude of ``expected``; shapes equal."""
    actual, expected = _as_float64(actual), _as_float64(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    difference = np.abs(actual - expected)
    tolerance = _tolerance(expected, rtol)
    worst = float(difference.max()) if difference.size else 0.0
    assert np.isfinite(actual).all() == np.isfinite(expected).all(), "non-finite values differ"
    assert worst <= tolerance, f"largest difference {worst:.3g} > {tolerance:.3g} ({rtol:g} of the scale)"


def assert_close_but_for_pool_flips(
    actual: torch.Tensor | np.ndarray,
    expected: torch.Tensor | np.ndarray,
    rtol: float = FLOAT32_RTOL,
    flip_fraction: float = POOL_FLIP_FRACTION,
) -> None:
    """All but ``flip_fraction`` of the elements within ``rtol`` of the scale (see the module docstring).

    The moved elements must still be finite and within the output's own range: a flip moves an
    activation by a pixel, it does not invent values.
    """
    actual, expected = _as_float64(actual), _as_float64(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.isfinite(actual).all(), "non-finite output"
    tolerance = _tolerance(expected, rtol)
    moved = np.abs(actual - expected) > tolerance
    fraction = float(moved.mean()) if moved.size else 0.0
    assert fraction <= flip_fraction, (
        f"{int(moved.sum())} of {moved.size} elements ({fraction:.2%}) differ by more than {tolerance:.3g}; "
        f"max-pool index flips explain at most {flip_fraction:.0%}"
    )
    spread = float(expected.max() - expected.min()) if expected.size else 0.0
    assert float(np.abs(actual - expected).max()) <= spread + tolerance, "a moved element left the output's range"


def assert_slices_close(actual: np.ndarray, expected: np.ndarray, mask: np.ndarray, rtol: float = FLOAT32_RTOL) -> None:
    """Two volumes (X, Y, Z), or 2D images, equal slice by slice: within ``rtol`` of ``expected``'s scale
    inside ``mask``, and equal outside it.

    For a synthesized volume against a reference run of the *same batches* (so the same kernels and
    the same max-pool choices): every axial slice is checked on its own, so one lost, shifted or
    swapped slice fails, however small a part of the volume it is.
    """
    actual, expected = _as_float64(actual), _as_float64(expected)
    assert actual.shape == expected.shape == np.shape(mask), (actual.shape, expected.shape, np.shape(mask))
    assert np.isfinite(actual).all(), "non-finite output"
    inside = np.asarray(mask, bool)
    if actual.ndim == 2:
        actual, expected, inside = actual[..., None], expected[..., None], inside[..., None]
    outside = ~inside
    assert np.array_equal(actual[outside], expected[outside]), "values outside the brain differ"
    tolerance = _tolerance(expected, rtol)
    wrong = []
    for z in np.flatnonzero(inside.any(axis=(0, 1))):
        worst = float(np.abs(actual[..., z] - expected[..., z])[inside[..., z]].max())
        if worst > tolerance:
            wrong.append(f"z={z}: {worst:.3g}")
    assert not wrong, f"{len(wrong)} brain slice(s) differ by more than {tolerance:.3g}: {', '.join(wrong[:10])}"
