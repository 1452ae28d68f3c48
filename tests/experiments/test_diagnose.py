"""Tissue classes of the diagnosis: label maps, whole-tumour masks and cases without a T2."""

import numpy as np

from experiments.diagnose import CSF_FRACTION, tissue_classes


def _volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[1:7, 1:7, 1:7] = True
    seg = np.zeros(mask.shape, dtype=np.uint8)
    seg[2:4, 2:4, 2:4] = 2
    seg[4:5, 4:6, 4:6] = 4
    return mask, seg, rng.random(mask.shape)


def test_label_map_gives_each_tumour_label_its_class():
    mask, seg, t2 = _volume()
    classes = tissue_classes(mask, seg, t2)
    assert set(classes) == {"brain", "CSF", "oedema", "enhancing"}
    assert classes["oedema"].sum() == 8 and classes["enhancing"].sum() == 4
    non_tumour = mask & (seg == 0)
    assert abs(classes["CSF"].sum() - CSF_FRACTION * non_tumour.sum()) <= 1


def test_whole_tumour_mask_is_one_tumour_class_not_oedema():
    mask, seg, t2 = _volume()
    classes = tissue_classes(mask, seg, t2, whole_tumour_only=True)
    assert "oedema" not in classes and "enhancing" not in classes
    assert classes["tumour"].sum() == 12


def test_case_without_t2_has_no_csf_class():
    mask, seg, _ = _volume()
    classes = tissue_classes(mask, seg, None, whole_tumour_only=True)
    assert set(classes) == {"brain", "tumour"}
    assert (classes["brain"] == (mask & (seg == 0))).all()
