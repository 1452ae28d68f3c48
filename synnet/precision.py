"""Which precision a model serves in: fp32, or bf16 where the hardware has it and the model's measured cost allows.

bf16 (autocast: convolutions in bf16, accumulation in fp32) only pays on hardware that computes it
natively: a GPU, or a CPU with AVX512-BF16 or AMX. Elsewhere oneDNN emulates it and it is slower
than fp32 (measured ~70× on an AVX2 EPYC), so asking for it there is refused at start-up rather
than served slowly.

bf16 also changes outputs. Each model's cost is measured on held-out cases
(``python -m training.precision_cost``) and recorded in its ``evaluation.json``
(:class:`synnet.evaluation.PrecisionCost`); a model serves bf16 only where that record exists and
its largest loss is within :data:`BF16_MAX_PSNR_LOSS_DB` and :data:`BF16_MAX_SSIM_LOSS`. Any other
model serves fp32 beside the bf16 ones, and says why (``/readyz``, ``/models``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord

PRECISIONS = ("fp32", "bf16")
# The most bf16 may cost a model, mean over its held-out cases, in its worst configuration.
BF16_MAX_PSNR_LOSS_DB = 0.05
BF16_MAX_SSIM_LOSS = 0.002
# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that leave it no native bf16 instruction.
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")


class PrecisionError(SynnetError):
    """A precision this machine cannot serve natively (raised at start-up)."""

    code = "bad_precision"


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_bf16_units() -> list[str]:
    """The native bf16 units of this CPU that oneDNN may use: ``AMX``, ``AVX512-BF16``, or none."""
    units = []
    if torch.cpu._is_amx_tile_supported():
        units.append("AMX")
    if torch.cpu._is_avx512_bf16_supported():
        units.append("AVX512-BF16")
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return [] if limit in ONEDNN_ISAS_WITHOUT_BF16 else units


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision ``device`` does not compute natively.

    Raises:
        PrecisionError: an unknown precision, bf16 on a CPU without AVX512-BF16 or AMX (or with oneDNN
            held below them by ``ONEDNN_MAX_CPU_ISA``), or on a GPU without bf16.
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise PrecisionError(f"bf16 was asked for but {torch.cuda.get_device_name(device)} has no bf16")
        return
    if not cpu_bf16_units():
        limit = os.environ.get("ONEDNN_MAX_CPU_ISA")
        why = (
            f"ONEDNN_MAX_CPU_ISA={limit} keeps oneDNN from its AVX512-BF16 and AMX units"
            if limit and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
            else "it has neither AVX512-BF16 nor AMX"
        )
        raise PrecisionError(
            f"bf16 was asked for but this CPU ({cpu_name()}) cannot compute it natively: {why}; "
            "emulated bf16 is slower than fp32, so serve fp32 (SYNNET_PRECISION=fp32)"
        )


def bf16_refusal(evaluation: EvaluationRecord | None, sha256: str) -> str | None:
    """Why the model of digest ``sha256`` must not serve bf16 (its recorded cost is missing, stale or too high),
    or None when it may."""
    cost = evaluation.bf16 if evaluation is not None else None
    if cost is None or not cost.configurations:
        return "no bf16 quality cost recorded in evaluation.json (python -m training.precision_cost)"
    if cost.sha256 != sha256:
        return "its bf16 quality cost was measured on another export of it (sha256 differs); measure it again"
    if cost.psnr_brain_loss > BF16_MAX_PSNR_LOSS_DB or cost.ssim_brain_loss > BF16_MAX_SSIM_LOSS:
        return (
            f"bf16 costs it {cost.psnr_brain_loss:.3f} dB in-brain PSNR and {cost.ssim_brain_loss:.4f} in-brain SSIM "
            f"(worst configuration, mean of {len(cost.cases)} held-out cases); allowed {BF16_MAX_PSNR_LOSS_DB} dB "
            f"and {BF16_MAX_SSIM_LOSS}"
        )
    return None
