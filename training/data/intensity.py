"""Intensity augmentation of the sources: what another site or preprocessing pipeline changes.

The geometric augmentation (:mod:`training.data.augment`) moves anatomy; this changes how the
same anatomy is rendered, so that a model trained on 12 BraTS 2018 cases holds up on scans
normalized another way (the BraTS 2023 pipeline, other scanners). Per source and slice (with 2.5D
input a source's neighbour slices share its rendering), inside the brain only (the background
stays 0), in model space [0, 1]:

* percentile jitter: ``x -> (x - a) / (b - a)`` with ``a`` within ±``max_shift`` and ``b`` within
  1 ± ``max_shift``, as if the 0.5/99.5 percentiles had landed on other tissue;
* gamma: ``x ** g`` with ``log g`` uniform in ±``log_gamma`` (contrast between tissues);
* bias field: ``x * exp(f)``, ``f`` a random plane plus a random quadratic over the slice with
  at most ±``bias`` (receive-coil shading that N4 left behind);
* noise: Gaussian with a standard deviation uniform in [0, ``max_noise``];
* blur: a Gaussian of σ uniform in [0, ``max_blur``] pixels, with probability 1/2.

Targets are never changed: the model must learn to produce the reference rendering whatever
rendering of the sources it is shown. Randomness comes only from the batch's generator, as for
the geometric augmentation, so resumed runs draw the same changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class IntensityParams:
    """Ranges of the intensity changes (see the module docstring)."""

    max_shift: float = 0.1
    log_gamma: float = 0.4
    bias: float = 0.2
    max_noise: float = 0.03
    max_blur: float = 1.0


def augment_intensity(
    sources: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    params: IntensityParams | None = None,
    slices_per_source: int = 1,
) -> torch.Tensor:
    """Randomly re-render ``sources`` (B, k, S, S) in [0, 1] inside ``mask`` (B, S, S); a new tensor.

    With 2.5D input (``slices_per_source`` adjacent channels per source) the slices of one source
    share its rendering, as the slices of one scan do; only the noise differs between them.
    """
    params = params or IntensityParams()
    batch, channels, height, width = sources.shape
    if slices_per_source < 1 or channels % slices_per_source:
        raise ValueError(f"{channels} source channels are not whole sources of {slices_per_source} slices each")
    shape = (batch, channels // slices_per_source, 1, 1)  # one draw per source scan

    def uniform(low: float, high: float, size: tuple[int, ...] = shape) -> torch.Tensor:
        draw = low + (high - low) * torch.rand(size, generator=generator)  # on the CPU: the generator's device
        return draw.repeat_interleave(slices_per_source, dim=-3)

    low, high = uniform(-params.max_shift, params.max_shift), uniform(1 - params.max_shift, 1 + params.max_shift)
    gamma = torch.exp(uniform(-params.log_gamma, params.log_gamma))
    log_gain = _bias_field(uniform(-1.0, 1.0, (5, *shape)), height, width) * uniform(0.0, params.bias)
    noise = uniform(0.0, params.max_noise) * torch.randn((batch, channels, height, width), generator=generator)
    sigmas = uniform(0.0, params.max_blur) * (torch.rand(shape, generator=generator) < 0.5).repeat_interleave(
        slices_per_source, dim=1
    )
    low, high, gamma, log_gain, noise, sigmas = (
        t.to(sources.device, sources.dtype) for t in (low, high, gamma, log_gain, noise, sigmas)
    )
    x = ((sources - low) / (high - low)).clamp(0.0, 1.0)
    x = x.clamp_min(1e-6) ** gamma * torch.exp(log_gain) + noise
    return _blur(x, sigmas).clamp(0.0, 1.0) * _channel_brains(sources, mask, slices_per_source).to(sources.dtype)


def _channel_brains(sources: torch.Tensor, mask: torch.Tensor, slices_per_source: int) -> torch.Tensor:
    """Where each channel shows brain, (B, k, S, S) or (B, 1, S, S): what the re-rendering stays inside.

    ``mask`` is the centre slice's brain. A neighbour slice has its own, which inference leaves as it
    is: the voxels where any source's slice at that offset is nonzero (the brain mask's own rule).
    """
    if slices_per_source == 1:
        return mask[:, None]
    batch, channels, height, width = sources.shape
    by_offset = (sources.reshape(batch, -1, slices_per_source, height, width) != 0).any(dim=1)
    by_offset[:, slices_per_source // 2] = mask
    return by_offset.repeat(1, channels // slices_per_source, 1, 1)


def _bias_field(coefficients: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, k, H, W) smooth field of peak magnitude 1; ``coefficients`` (5, B, k, 1, 1) weigh plane and quadratic."""
    rows = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1)
    cols = torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width)
    basis = (rows, cols, rows * cols, rows**2 - 1 / 3, cols**2 - 1 / 3)  # zero-mean terms
    field = sum(weight * term for weight, term in zip(coefficients, basis, strict=True))
    return field / field.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)


def _blur(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one σ per (image, channel); σ = 0 leaves the image as it is."""
    batch, channels, height, width = x.shape
    radius = max(1, math.ceil(3 * float(sigmas.max()))) if float(sigmas.max()) > 0 else 0
    if radius == 0:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    sig = sigmas.reshape(-1, 1).clamp_min(1e-3)
    taps = torch.exp(-0.5 * (offsets / sig) ** 2)
    taps = torch.where(sigmas.reshape(-1, 1) > 0, taps, (offsets == 0).to(x.dtype))
    taps = taps / taps.sum(dim=1, keepdim=True)  # (B·k, 2r+1)
    groups = batch * channels
    flat = x.reshape(1, groups, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), taps[:, None, None, :], groups=groups)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), taps[:, None, :, None], groups=groups)
    return flat.reshape(batch, channels, height, width)
