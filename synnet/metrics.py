"""PSNR and SSIM: one implementation, shared by the training loss and the service's reports.

SSIM follows Wang et al. (2004) with a Gaussian window of 11 taps, sigma 1.5, K1 = 0.01 and
K2 = 0.03, population (not sample) covariances, averaged over the positions where the whole
window fits inside the image. This equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
Volumes use the same window in 3D. Both work on torch tensors, so the loss can differentiate
through :func:`ssim_map`; the numpy entry points compute in float64.

Two ways of scoring are offered:

* whole image: the arrays as given, with ``data_range`` = the truth's max - min;
* inside the brain (BraSyn convention): each image clipped at its own 0.5 / 99.5 percentiles
  inside the mask and scaled to [0, 1] (:func:`synnet.normalization.normalize`), zero outside;
  PSNR from the mean squared error over brain voxels with data range 1, SSIM averaged over the
  brain voxels of the SSIM map.

PSNR of identical images is infinite; :class:`MetricReport` turns that into ``None`` plus an
``identical`` flag for JSON, which has no infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synnet.errors import SynnetError
from synnet.normalization import NormalizationParams, normalize

WINDOW_SIZE = 11
SIGMA = 1.5
K1 = 0.01
K2 = 0.03


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Normalized 1D Gaussian taps, shape (size,)."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _blur_valid(x: torch.Tensor, taps: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Separable Gaussian filter without padding over the last ``spatial_dims`` axes of (N, C, ...).

    Volumes are filtered as weighted sums of shifted views: PyTorch's depthwise conv3d has no fast
    float64 CPU kernel, and the sums are 15× faster on a 240×240×155 volume (0.6 s against 9.6 s).
    """
    if spatial_dims == 3:
        weights = [float(w) for w in taps]
        width = len(weights)
        for axis in range(2, 5):
            length = x.shape[axis] - width + 1
            out = x.narrow(axis, 0, length) * weights[0]
            for k in range(1, width):
                out.add_(x.narrow(axis, k, length), alpha=weights[k])
            x = out
        return x
    channels = x.shape[1]
    conv = F.conv2d if spatial_dims == 2 else F.conv3d
    for axis in range(spatial_dims):
        shape = [1] * spatial_dims
        shape[axis] = taps.numel()
        kernel = taps.reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()
        x = conv(x, kernel, groups=channels)
    return x


def ssim_map(pred: torch.Tensor, truth: torch.Tensor, data_range: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Local SSIM at every position where the window fits.

    Args:
        pred, truth: (N, C, H, W) for slices or (N, C, D, H, W) for volumes.
        data_range: the dynamic range of the images (1 in model space).

    Returns:
        (N, C, H - 10, W - 10) (or the 3D analogue): the map is cropped by the window's radius on
        every side, as scikit-image does before averaging.
    """
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth shapes differ: {tuple(pred.shape)} and {tuple(truth.shape)}")
    spatial_dims = pred.dim() - 2
    if spatial_dims not in (2, 3):
        raise ValueError(f"expected (N, C, H, W) or (N, C, D, H, W), got shape {tuple(pred.shape)}")
    if min(pred.shape[2:]) < WINDOW_SIZE:
        raise ValueError(f"SSIM needs every side >= {WINDOW_SIZE}, got spatial shape {tuple(pred.shape[2:])}")
    taps = gaussian_window(dtype=pred.dtype, device=pred.device)
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    stacked = torch.cat([pred, truth, pred * pred, truth * truth, pred * truth], dim=1)
    blurred = _blur_valid(stacked, taps, spatial_dims)
    mu_p, mu_t, e_pp, e_tt, e_pt = blurred.chunk(5, dim=1)
    var_p = e_pp - mu_p * mu_p
    var_t = e_tt - mu_t * mu_t
    cov = e_pt - mu_p * mu_t
    luminance = (2 * mu_p * mu_t + c1) / (mu_p * mu_p + mu_t * mu_t + c1)
    structure = (2 * cov + c2) / (var_p + var_t + c2)
    return luminance * structure


def crop_to_ssim_map(x: torch.Tensor) -> torch.Tensor:
    """Crop a (N, C, ...) tensor the way :func:`ssim_map` crops, to weight or mask the map."""
    radius = WINDOW_SIZE // 2
    index = (slice(None), slice(None), *tuple(slice(radius, -radius) for _ in x.shape[2:]))
    return x[index]


def _checked_range(truth: np.ndarray, data_range: float | None) -> float:
    """``data_range``, by default the truth's max - min; a flat truth leaves PSNR/SSIM undefined."""
    if data_range is None:
        data_range = float(truth.max() - truth.min()) if truth.size else 0.0
    if not data_range > 0:
        raise SynnetError(
            "the ground truth is constant (no intensity range), so PSNR and SSIM are undefined; "
            "send a truth image with content",
            code="flat_truth",
        )
    return data_range


def _as_batch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))[None, None]


def psnr(pred: np.ndarray, truth: np.ndarray, data_range: float | None = None, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images.

    ``data_range`` defaults to ``truth.max() - truth.min()``; ``mask`` restricts the mean squared
    error to its True voxels.
    """
    pred64 = np.asarray(pred, dtype=np.float64)
    truth64 = np.asarray(truth, dtype=np.float64)
    if pred64.shape != truth64.shape:
        raise ValueError(f"pred and truth shapes differ: {pred64.shape} and {truth64.shape}")
    data_range = _checked_range(truth64, data_range)
    squared = (pred64 - truth64) ** 2
    mse = float(squared[mask].mean() if mask is not None else squared.mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(pred: np.ndarray, truth: np.ndarray, data_range: float | None = None, mask: np.ndarray | None = None) -> float:
    """Mean SSIM of a 2D slice or a 3D volume, optionally over the voxels of ``mask`` only.

    A volume thinner than the window (fewer than 11 slices) is scored as the mean of its
    axial slices (last axis), each with the 2D window.
    """
    pred64 = np.asarray(pred, dtype=np.float64)
    truth64 = np.asarray(truth, dtype=np.float64)
    if pred64.shape != truth64.shape:
        raise ValueError(f"pred and truth shapes differ: {pred64.shape} and {truth64.shape}")
    data_range = _checked_range(truth64, data_range)
    if pred64.ndim == 3 and pred64.shape[-1] < WINDOW_SIZE:
        slices = [np.moveaxis(a, -1, 0) for a in (pred64, truth64)]
        masks = np.moveaxis(mask, -1, 0) if mask is not None else [None] * len(slices[0])
        scores = [ssim(p, t, data_range, m) for p, t, m in zip(*slices, masks, strict=True)]
        return float(np.mean(scores))
    with torch.no_grad():
        local = ssim_map(_as_batch(pred64), _as_batch(truth64), data_range)
        if mask is None:
            return float(local.mean())
        inside = crop_to_ssim_map(_as_batch(np.asarray(mask, dtype=np.float64))) > 0
        if not bool(inside.any()):
            return math.nan
        return float(local[inside].mean())


@dataclass(frozen=True)
class MetricReport:
    """PSNR and SSIM of one synthesized image against its truth, whole and inside the brain."""

    psnr: float
    ssim: float
    psnr_brain: float
    ssim_brain: float

    def to_json(self) -> dict[str, float | bool | None]:
        """A JSON-safe dict: infinite PSNR (identical images) becomes None with identical=True."""

        def finite(value: float) -> float | None:
            return round(value, 6) if math.isfinite(value) else None

        return {
            "psnr": finite(self.psnr),
            "ssim": finite(self.ssim),
            "psnr_brain": finite(self.psnr_brain),
            "ssim_brain": finite(self.ssim_brain),
            "identical": math.isinf(self.psnr) or math.isinf(self.psnr_brain),
        }


def brain_scaled(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """BraSyn scaling: clip at the 0.5/99.5 percentiles inside the mask, scale to [0, 1], zero outside."""
    scaled, _ = normalize(image, mask, NormalizationParams(lower_percentile=0.5, upper_percentile=99.5))
    return scaled.astype(np.float64)


def evaluate(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> MetricReport:
    """Score ``pred`` against ``truth``: whole-image PSNR/SSIM and the BraSyn in-brain ones.

    Args:
        pred, truth: same-shape 2D slices or 3D volumes in the same intensity units.
        mask: bool brain mask of the same shape.
    """
    mask = np.asarray(mask, dtype=bool)
    pred_b, truth_b = brain_scaled(pred, mask), brain_scaled(truth, mask)
    return MetricReport(
        psnr=psnr(pred, truth),
        ssim=ssim(pred, truth),
        psnr_brain=psnr(pred_b, truth_b, data_range=1.0, mask=mask),
        ssim_brain=ssim(pred_b, truth_b, data_range=1.0, mask=mask),
    )


def ssim_in_regions(
    pred: np.ndarray, truth: np.ndarray, regions: dict[str, np.ndarray], data_range: float = 1.0
) -> dict[str, float]:
    """Mean SSIM inside each of several masks, from one SSIM map (NaN for a region with no voxel).

    Scoring tumour sub-regions one :func:`ssim` call each would recompute the same map per region.
    """
    with torch.no_grad():
        local = ssim_map(_as_batch(pred), _as_batch(truth), data_range)
        scores = {}
        for name, region in regions.items():
            inside = crop_to_ssim_map(torch.from_numpy(np.asarray(region, dtype=bool))[None, None])
            scores[name] = float(local[inside].mean()) if bool(inside.any()) else math.nan
    return scores
