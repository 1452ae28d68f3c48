"""Generated BraTS-like cases from real anatomy, for tests, demos and machines without BraTS data.

Anatomy comes from the MNI152 2009a template and its tissue maps shipped inside nilearn; contrasts
from MR signal equations with literature relaxation times; each case adds random lesions, a smooth
deformation, a bias field, Rician noise and a per-modality site scale. Cases are written in the
BraTS 2021 layout at 240 x 240 x 155, so :func:`training.data.brats.find_cases` reads them::

    python -m training.phantom --out data/phantom --cases 8 --seed 0
"""

from __future__ import annotations

from training.phantom.generate import generate_case
from training.phantom.write import case_seed, write_case, write_cases

__all__ = ["case_seed", "generate_case", "write_case", "write_cases"]
