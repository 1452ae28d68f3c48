"""Training losses of the paper (Sec. 3), built on :func:`synnet.metrics.ssim_map`.

All losses take ``pred`` and ``target`` of shape (B, C, H, W) in model space (data range 1) and
an optional brain ``mask`` (B, 1, H, W) or (B, C, H, W), bool or float, and return a scalar.

* ``l2``                 mean of (pred − target)²
* ``weighted_l2``        mean of ω · (pred − target)²                         (paper eq. 4)
* ``ssim_loss``          mean of 1 − SSIM_map(pred, target)                    (paper eq. 2)
* ``weighted_ssim_loss`` mean of ω' · (1 − SSIM_map), ω' = ω cropped like the map (eq. 5)
* ``total_variation``    mean of sqrt(p² + q² + ε) − sqrt(ε), p, q forward differences (eq. 7-8)
* ``JointLoss``          λ1·wL2 + λ2·wSSIM + λ3·TV with λ = (10, 5, 0.5)          (eq. 6)
* ``JointL1Loss``        the same with an edge-weighted L1 term, mean of ω·|pred − target|: an
                         ablation (experiments/results/ablation.md), since an L2 term barely pushes on the small
                         intensity-level errors that dominate in-brain PSNR (experiments/results/diagnosis.md)
* ``distribution_distance`` how far the prediction's sorted intensities inside the brain are from
                         the target's, per image, rank by rank (Wasserstein-1) or band by band: an
                         optional fourth joint term (``lambda_hist``, ``--histogram-weight``)

The paper writes its terms as sums over pixels and images; here they are means, i.e. the sums
divided by a constant pixel count, which keeps gradients independent of the slice size and the
batch. Weighted means divide by the number of (masked) pixels, not by Σω, so ω ≡ 1 gives the
unweighted loss and edges gain absolute weight rather than taking it from flat regions.
With a mask, means run over the masked pixels only (for SSIM: map positions whose window centre
is inside the mask, as :func:`synnet.metrics.ssim` does).

The paper's fourth term, λ4·R_W with λ4 = 1e-4, is an L2 penalty on the weights: it belongs to
the optimizer as weight decay (``python -m training.fit --weight-decay``, 1e-4 by default), not here.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synnet.metrics import crop_to_ssim_map, ssim_map

PAPER_LAMBDAS = {"wl2": 10.0, "wssim": 5.0, "tv": 0.5}
EDGE_WEIGHT = 2.0  # w in ω = 1 + w·edge: edges weigh up to 3× a flat pixel
TV_EPS = 1e-8


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must both be (B, C, H, W), received pred: {list(pred.shape)} "
            f"and target: {list(target.shape)}"
        )


def _check_mask(mask: torch.Tensor, like: torch.Tensor) -> None:
    b, c, h, w = like.shape
    if mask.dim() != 4 or mask.shape[0] != b or mask.shape[1] not in (1, c) or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(
            f"mask must be (B, 1, H, W) or (B, C, H, W) for pred {list(like.shape)}, got {list(mask.shape)}"
        )


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` (B, C, h, w) over the positions where ``mask`` (B, 1|C, h, w) is set."""
    if mask is None:
        return values.mean()
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny)


@torch.no_grad()
def edge_weights(target: torch.Tensor, w: float = EDGE_WEIGHT) -> torch.Tensor:
    """Pixel weights ω(x) = 1 + w · edge(x) from the target's gradient magnitude (paper Fig. 3).

    With the Sobel derivatives of each image and channel, Gx = [1 2 1]ᵀ ⊗ [−1 0 1] along W and
    Gy = its transpose along H (replicate padding, so the image border is no edge)::

        g(x)    = sqrt(Gx(x)² + Gy(x)²)
        edge(x) = g(x) / max_y g(y)        (per image and channel; 0 for a flat image)
        ω(x)    = 1 + w · edge(x)          ∈ [1, 1 + w]

    The weights are a function of the target only and are not differentiated through.

    Args:
        target: (B, C, H, W) ground truth.
        w: extra weight of the strongest edge.

    Returns:
        (B, C, H, W) weights, same dtype and device as ``target``.
    """
    if target.dim() != 4:
        raise ValueError(f"target must be (B, C, H, W), got {list(target.shape)}")
    padded = F.pad(target.detach(), [1, 1, 1, 1], mode="replicate")
    # Separable Sobel by slicing: both sides of each difference are computed by the same
    # operations, so a flat region gives exactly 0 (a conv's summation order can leave round-off,
    # which the normalization by the peak would blow up to full weight).
    smooth_rows = padded[:, :, :-2, :] + 2 * padded[:, :, 1:-1, :] + padded[:, :, 2:, :]  # (B, C, H, W+2)
    smooth_cols = padded[:, :, :, :-2] + 2 * padded[:, :, :, 1:-1] + padded[:, :, :, 2:]  # (B, C, H+2, W)
    grad_x = smooth_rows[:, :, :, 2:] - smooth_rows[:, :, :, :-2]
    grad_y = smooth_cols[:, :, 2:, :] - smooth_cols[:, :, :-2, :]
    magnitude = (grad_x.pow(2) + grad_y.pow(2)).sqrt()
    peak = magnitude.amax(dim=(2, 3), keepdim=True)
    edge = magnitude / peak.clamp_min(torch.finfo(target.dtype).tiny)
    return 1.0 + w * edge


def weighted_l2(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ω·(pred − target)² over the (masked) pixels; ω ≡ 1 when ``weights`` is None.

    Args:
        pred, target: (B, C, H, W).
        weights: (B, C, H, W) pixel weights, e.g. :func:`edge_weights` of ``target``.
        mask: optional (B, 1|C, H, W) brain mask.
    """
    return _weighted_distance(pred, target, weights, mask, power=2)


def weighted_l1(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ω·|pred − target| over the (masked) pixels; arguments as :func:`weighted_l2`."""
    return _weighted_distance(pred, target, weights, mask, power=1)


def _weighted_distance(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None, mask: torch.Tensor | None, power: int
) -> torch.Tensor:
    _check_pair(pred, target)
    if mask is not None:
        _check_mask(mask, pred)
    difference = (pred - target).abs() if power == 1 else (pred - target).pow(2)
    if weights is not None:
        difference = difference * weights
    return _masked_mean(difference, mask)


def l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the (masked) pixels (paper eq. 1). pred, target: (B, C, H, W)."""
    return weighted_l2(pred, target, None, mask)


def weighted_ssim_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Mean of ω·(1 − SSIM) over the SSIM map (the metric's own map, cropped by the window radius).

    Args:
        pred, target: (B, C, H, W), H and W ≥ 11.
        weights: (B, C, H, W) pixel weights; cropped with :func:`crop_to_ssim_map` to the map.
        mask: optional (B, 1|C, H, W) brain mask, cropped the same way.
        data_range: dynamic range of the images (1 in model space).
    """
    _check_pair(pred, target)
    if mask is not None:
        _check_mask(mask, pred)
    dissimilarity = 1.0 - ssim_map(pred, target, data_range)
    if weights is not None:
        dissimilarity = dissimilarity * crop_to_ssim_map(weights)
    return _masked_mean(dissimilarity, crop_to_ssim_map(mask) if mask is not None else None)


def ssim_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, data_range: float = 1.0
) -> torch.Tensor:
    """1 − mean SSIM (paper eq. 2); ``1 - ssim_loss`` is :func:`synnet.metrics.ssim`."""
    return weighted_ssim_loss(pred, target, None, mask, data_range)


def total_variation(pred: torch.Tensor, mask: torch.Tensor | None = None, eps: float = TV_EPS) -> torch.Tensor:
    """Isotropic total variation, mean over pixels of sqrt(p² + q² + ε) − sqrt(ε) (paper eq. 7-8).

    p = x(i+1, j) − x(i, j) and q = x(i, j+1) − x(i, j) over the (H−1)×(W−1) pixels that have
    both neighbours. ε keeps the gradient finite (zero) on flat regions, where the plain
    sqrt(p² + q²) has none; subtracting sqrt(ε) makes a constant image score exactly 0.

    Args:
        pred: (B, C, H, W).
        mask: optional (B, 1|C, H, W) brain mask (evaluated at (i, j)).
        eps: ε.
    """
    if pred.dim() != 4:
        raise ValueError(f"pred must be (B, C, H, W), got {list(pred.shape)}")
    if mask is not None:
        _check_mask(mask, pred)
    corner = pred[:, :, :-1, :-1]
    p = pred[:, :, 1:, :-1] - corner
    q = pred[:, :, :-1, 1:] - corner
    eps_t = pred.new_tensor(eps)  # the same rounding on both sides: a flat image gives exactly 0
    tv = (p.pow(2) + q.pow(2) + eps_t).sqrt() - eps_t.sqrt()
    return _masked_mean(tv, mask[:, :, :-1, :-1] if mask is not None else None)


MIN_DISTRIBUTION_PIXELS = 64  # fewer brain pixels in a window than this: no distribution to compare


def distribution_distance(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    bands: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Mean over images and channels of the distance between their intensity distributions.

    Both images' masked pixels are sorted, so the distance ignores where an intensity is and asks only
    that the prediction has the target's histogram. Why: scores clip and scale each image by its own
    0.5/99.5 percentiles, so an output without the target's bright tail (T1c vessels and enhancement,
    FLAIR oedema) has its bulk scaled too bright (T1 -> T1c: median 0.68 against the truth's 0.34,
    experiments/results/ablation.md); a pixel loss predicts the conditional middle and never makes that tail.

    Without ``bands`` it is the Wasserstein-1 distance, mean |sort(pred) − sort(target)| over all
    ranks; there the top 1 % of voxels weigh 1 %, too little to move the tail (measured: T1 -> T1c
    unchanged). With band edges in percent, e.g. (0, 1, 10, 50, 90, 99, 100), it is the mean over
    the bands of |mean of pred's sorted values in the band − the same of target's|: every band
    weighs alike, so the tail counts as much as the bulk, and the spread inside a band is left to
    the pixel loss.

    Args:
        pred, target: (B, C, H, W).
        mask: optional (B, 1|C, H, W) brain mask or loss weights; pixels where it is > 0 count, unweighted.
            Images with fewer than ``MIN_DISTRIBUTION_PIXELS`` of them are skipped.
        bands: increasing band edges in percent (0–100), or None for every rank.
    """
    _check_pair(pred, target)
    if mask is not None:
        _check_mask(mask, pred)
    distances = []
    for b in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            if mask is None:
                p, t = pred[b, c].flatten(), target[b, c].flatten()
            else:
                inside = mask[b, c if mask.shape[1] > 1 else 0] > 0
                if int(inside.sum()) < MIN_DISTRIBUTION_PIXELS:
                    continue
                p, t = pred[b, c][inside], target[b, c][inside]
            gap = p.sort().values - t.sort().values
            if bands is None:
                distances.append(gap.abs().mean())
                continue
            edges = [round(q / 100 * gap.numel()) for q in bands]
            band_gaps = [gap[lo:hi].mean().abs() for lo, hi in itertools.pairwise(edges) if hi > lo]
            if band_gaps:  # bands narrower than a pixel each: nothing to compare
                distances.append(torch.stack(band_gaps).mean())
    if not distances:
        return pred.sum() * 0.0
    return torch.stack(distances).mean()


class SynthesisLoss(nn.Module):
    """Base of the loss modules: ``forward(pred, target, mask=None) -> scalar``.

    ``forward`` computes in at least float32 with autocast switched off, so a mixed-precision
    training loop can call it inside its autocast region: SSIM's variances E[x²] − μ² cancel
    catastrophically in half precision. Subclasses implement :meth:`compute`.

    Attributes:
        name: the ``build_loss`` name.
        lambdas: weight of each term, for the manifest.
        config: everything needed to rebuild the loss, for the manifest.
    """

    name: str = ""

    def __init__(self, lambdas: dict[str, float], **hyper: Any) -> None:
        super().__init__()
        self.lambdas = dict(lambdas)
        self.config: dict[str, Any] = {"name": self.name, "lambdas": dict(lambdas), **hyper}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """pred, target: (B, C, H, W); mask: optional (B, 1|C, H, W) → scalar loss."""
        with torch.autocast(device_type=pred.device.type, enabled=False):
            if pred.dtype in (torch.float16, torch.bfloat16):
                pred = pred.float()
            if target.dtype in (torch.float16, torch.bfloat16):
                target = target.float()
            return self.compute(pred, target, mask)

    def compute(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


class L2Loss(SynthesisLoss):
    """Plain mean squared error, the comparative methods' loss."""

    name = "l2"

    def __init__(self) -> None:
        super().__init__({"l2": 1.0})

    def compute(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return l2(pred, target, mask)


class WeightedL2Loss(SynthesisLoss):
    """Edge-weighted mean squared error, ω from :func:`edge_weights` of the target."""

    name = "wl2"

    def __init__(self, edge_weight: float = EDGE_WEIGHT) -> None:
        super().__init__({"wl2": 1.0}, edge_weight=edge_weight)
        self.edge_weight = edge_weight

    def compute(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return weighted_l2(pred, target, edge_weights(target, self.edge_weight), mask)


class SSIMLoss(SynthesisLoss):
    """1 − SSIM with the metric's window and constants."""

    name = "ssim"

    def __init__(self, data_range: float = 1.0) -> None:
        super().__init__({"ssim": 1.0}, data_range=data_range)
        self.data_range = data_range

    def compute(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return ssim_loss(pred, target, mask, self.data_range)


class JointLoss(SynthesisLoss):
    """The paper's joint loss λ1·wL2 + λ2·wSSIM + λ3·TV (eq. 6), without λ4 (weight decay).

    Args:
        lambda_l2, lambda_ssim, lambda_tv: λ1, λ2, λ3; the paper's defaults (10, 5, 0.5).
        lambda_hist: weight of :func:`distribution_distance`, not the paper's; 0 (the default)
            leaves the term out entirely, lambdas and manifest included.
        hist_bands: that term's ``bands`` (None: every rank).
        edge_weight: w of :func:`edge_weights`, shared by both weighted terms.
        data_range: SSIM data range (1 in model space).
        tv_eps: ε of :func:`total_variation`.
    """

    name = "joint"
    intensity_term = "wl2"

    def __init__(
        self,
        lambda_l2: float = PAPER_LAMBDAS["wl2"],
        lambda_ssim: float = PAPER_LAMBDAS["wssim"],
        lambda_tv: float = PAPER_LAMBDAS["tv"],
        lambda_hist: float = 0.0,
        hist_bands: tuple[float, ...] | None = None,
        edge_weight: float = EDGE_WEIGHT,
        data_range: float = 1.0,
        tv_eps: float = TV_EPS,
    ) -> None:
        lambdas = {self.intensity_term: lambda_l2, "wssim": lambda_ssim, "tv": lambda_tv}
        hyper: dict[str, Any] = {"edge_weight": edge_weight, "data_range": data_range, "tv_eps": tv_eps}
        if lambda_hist:
            lambdas["hist"] = lambda_hist
            if hist_bands is not None:
                hyper["hist_bands"] = list(hist_bands)
        super().__init__(lambdas, **hyper)
        self.hist_bands = hist_bands
        self.edge_weight = edge_weight
        self.data_range = data_range
        self.tv_eps = tv_eps

    def terms(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The unweighted terms {"wl2" or "wl1", "wssim", "tv"[, "hist"]}, e.g. to log them separately."""
        weights = edge_weights(target, self.edge_weight)
        distance = weighted_l1 if self.intensity_term == "wl1" else weighted_l2
        terms = {
            self.intensity_term: distance(pred, target, weights, mask),
            "wssim": weighted_ssim_loss(pred, target, weights, mask, self.data_range),
            "tv": total_variation(pred, mask, self.tv_eps),
        }
        if "hist" in self.lambdas:
            terms["hist"] = distribution_distance(pred, target, mask, self.hist_bands)
        return terms

    def compute(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        terms = self.terms(pred, target, mask)
        return sum((self.lambdas[key] * value for key, value in terms.items()), pred.new_zeros(()))


class JointL1Loss(JointLoss):
    """λ1·wL1 + λ2·wSSIM + λ3·TV: the joint loss with an edge-weighted L1 intensity term (same λ defaults)."""

    name = "joint_l1"
    intensity_term = "wl1"


_LOSSES: dict[str, type[SynthesisLoss]] = {
    cls.name: cls for cls in (L2Loss, WeightedL2Loss, SSIMLoss, JointLoss, JointL1Loss)
}


def list_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return list(_LOSSES)


def build_loss(name: str, **kwargs: Any) -> SynthesisLoss:
    """Build a loss by name: ``"l2"``, ``"wl2"``, ``"ssim"``, ``"joint"`` or ``"joint_l1"``.

    Keyword arguments go to the class (e.g. ``build_loss("joint", lambda_tv=0.0)``). The module's
    ``forward(pred, target, mask=None)`` returns a scalar; ``.lambdas`` and ``.config`` describe it.
    """
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(_LOSSES)}")
    return _LOSSES[name](**kwargs)
