"""Tissue relaxation parameters and the MR signal equations that turn them into contrasts.

Normal tissue at 3 T (times in ms; proton density relative to pure water):

==========  ======  ======  ====  ==========================================================
tissue        T1      T2     PD   source
==========  ======  ======  ====  ==========================================================
WM          1084      69    0.70  T1, T2: Stanisz et al., MRM 54:507 (2005), 3 T
GM          1820      99    0.80  T1, T2: Stanisz et al., MRM 54:507 (2005), 3 T
CSF         4163    2000    1.00  T1: Lu et al., JMRI 22:13 (2005), 3 T; T2 of free water is
                                  of the order of 2 s (rounded)
==========  ======  ======  ====  ==========================================================

Proton densities are the usual water contents (WM ~ 0.70, GM ~ 0.80; e.g. Tofts (ed.),
*Quantitative MRI of the Brain*, Wiley 2003, ch. 4).

Tumour compartments are illustrative values, not measurements, ordered as the literature on
gliomas describes them: vasogenic oedema adds free water (longer T1 and T2 than white matter,
no enhancement: dark on T1, bright on T2 and FLAIR); necrosis is proteinaceous fluid (long T1 and
T2, yet T1 shorter than CSF's, so FLAIR does not null it; no enhancement); viable tumour on the
enhancing rim is cellular (T1 and T2 a little longer than grey matter) and, behind a broken
blood-brain barrier, takes up gadolinium (bright on T1c).

Signal equations (magnitude, relative units):

* spin echo (T1-weighted: short TR and TE; T2-weighted: long TR and TE)
  ``S = PD (1 - exp(-TR/T1)) exp(-TE/T2)``
* inversion recovery (FLAIR; TI chosen to null CSF)
  ``S = PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``
* gadolinium shortens T1 (T1c): ``1/T1' = 1/T1 + r1 C`` with r1 = 3.7 L/(mmol s), gadopentetate
  in plasma at 3 T (Rohrer et al., Invest. Radiol. 40:715 (2005)), and C in mmol/L.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from synnet.modalities import Modality

R1_GD_PER_MM_PER_MS = 3.7e-3  # 3.7 L/(mmol s) in 1/(mM ms)


@dataclass(frozen=True)
class Tissue:
    """Relaxation parameters of one tissue; ``gd_mm`` is its gadolinium concentration after injection."""

    t1_ms: float
    t2_ms: float
    pd: float
    gd_mm: float = 0.0


WM = Tissue(t1_ms=1084.0, t2_ms=69.0, pd=0.70)
GM = Tissue(t1_ms=1820.0, t2_ms=99.0, pd=0.80)
CSF = Tissue(t1_ms=4163.0, t2_ms=2000.0, pd=1.00)
OEDEMA = Tissue(t1_ms=2100.0, t2_ms=220.0, pd=0.88)
NECROSIS = Tissue(t1_ms=2800.0, t2_ms=500.0, pd=0.95)
ENHANCING = Tissue(t1_ms=1800.0, t2_ms=110.0, pd=0.85, gd_mm=0.35)


@dataclass(frozen=True)
class SpinEcho:
    tr_ms: float
    te_ms: float


@dataclass(frozen=True)
class InversionRecovery:
    tr_ms: float
    ti_ms: float
    te_ms: float


@dataclass(frozen=True)
class Protocol:
    """The sequence behind one modality, and whether gadolinium has been given."""

    sequence: SpinEcho | InversionRecovery
    contrast_agent: bool = False


def csf_null_ti(tr_ms: float, csf_t1_ms: float = CSF.t1_ms) -> float:
    """Inversion time at which CSF's longitudinal magnetization crosses zero (for FLAIR)."""
    return float(csf_t1_ms * np.log(2.0 / (1.0 + np.exp(-tr_ms / csf_t1_ms))))


PROTOCOLS: dict[Modality, Protocol] = {
    Modality.T1: Protocol(SpinEcho(tr_ms=450.0, te_ms=10.0)),
    Modality.T1c: Protocol(SpinEcho(tr_ms=450.0, te_ms=10.0), contrast_agent=True),
    Modality.T2: Protocol(SpinEcho(tr_ms=5000.0, te_ms=90.0)),
    Modality.FLAIR: Protocol(InversionRecovery(tr_ms=9000.0, ti_ms=csf_null_ti(9000.0), te_ms=120.0)),
}


def signal(
    protocol: Protocol,
    t1_ms: np.ndarray | float,
    t2_ms: np.ndarray | float,
    pd: np.ndarray | float,
    gd_mm: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Magnitude signal of tissue(s) under one protocol; arguments broadcast against each other."""
    t1 = np.asarray(t1_ms, dtype=np.float64)
    if protocol.contrast_agent:
        t1 = 1.0 / (1.0 / t1 + R1_GD_PER_MM_PER_MS * np.asarray(gd_mm, dtype=np.float64))
    seq = protocol.sequence
    t2_decay = np.exp(-seq.te_ms / np.asarray(t2_ms, dtype=np.float64))
    if isinstance(seq, SpinEcho):
        longitudinal = 1.0 - np.exp(-seq.tr_ms / t1)
    else:
        longitudinal = np.abs(1.0 - 2.0 * np.exp(-seq.ti_ms / t1) + np.exp(-seq.tr_ms / t1))
    return np.asarray(pd, dtype=np.float64) * longitudinal * t2_decay


def tissue_signal(protocol: Protocol, tissue: Tissue) -> float:
    return float(signal(protocol, tissue.t1_ms, tissue.t2_ms, tissue.pd, tissue.gd_mm))


def jitter_tissue(rng: np.random.Generator, tissue: Tissue, spread: float = 0.05) -> Tissue:
    """The tissue with T1, T2 and PD each scaled by up to ``spread`` (subjects differ)."""
    t1, t2, pd = tissue.t1_ms, tissue.t2_ms, tissue.pd
    scale = rng.uniform(1.0 - spread, 1.0 + spread, size=3)
    return replace(tissue, t1_ms=t1 * scale[0], t2_ms=t2 * scale[1], pd=min(1.0, pd * scale[2]))


def jitter_protocol(rng: np.random.Generator, protocol: Protocol, spread: float = 0.1) -> Protocol:
    """The protocol with TR, TE (and TI) varied by up to ``spread``, as between sites.

    FLAIR's TI is varied by only a quarter of that: sites tune it to null CSF.
    """
    seq = protocol.sequence
    tr, te = np.array([seq.tr_ms, seq.te_ms]) * rng.uniform(1.0 - spread, 1.0 + spread, size=2)
    if isinstance(seq, SpinEcho):
        return replace(protocol, sequence=SpinEcho(tr_ms=float(tr), te_ms=float(te)))
    ti = csf_null_ti(float(tr)) * rng.uniform(1.0 - spread / 4, 1.0 + spread / 4)
    return replace(protocol, sequence=InversionRecovery(tr_ms=float(tr), ti_ms=float(ti), te_ms=float(te)))
