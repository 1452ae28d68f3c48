"""Print the markdown table of one ablation folder made by experiments/scripts/ablation_cpu.sh (or data_curve_cpu.sh).

    python experiments/scripts/ablation_table.py runs/ablation/t1_to_t2_1500steps

One row per arm: the change it makes, its compute (optimizer steps, training seconds on this
machine), and its scores from ``evaluation/summary.csv``: brain PSNR/SSIM and BraSyn scores on
the held-out BraTS 2018 cases, brain PSNR/SSIM on the BraTS 2023 case.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

CHANGES = {
    "a_joint": "today's recipe (joint loss over the whole window)",
    "b_joint_mask": "+ loss inside the brain only (`--mask-loss`)",
    "c_joint_l1_mask": "+ L1 instead of L2 in the joint loss (`--loss joint_l1`)",
    "d_joint_l1_mask_intensity": "+ intensity augmentation (`--intensity-augment`)",
    "e_joint_mask_intensity": "`b` + intensity augmentation, L2 kept (`d` without L1)",
    "f_wide": "`d` with 32 feature maps instead of 16 (`--features 32`)",
    "g_deep": "`d` with 5 poolings instead of 4 (`--depth 5`)",
    "h_tumour_weight": "`d` with the loss weighed 5× inside the tumour (`--tumour-weight 5`)",
    "i_l2_tumour_weight": "`h` with L2 instead of L1 (`e` + `--tumour-weight 5`)",
    "j_tumour_weight_10": "`d` with the loss weighed 10× inside the tumour (`--tumour-weight 10`)",
    "k_histogram": "`h` + the intensity-distribution term, rank by rank (`--histogram-weight 10`)",
    "l_histogram_bands": "`h` + the intensity-distribution term over 6 equally weighted bands "
    "(`--histogram-weight 10 --histogram-bands 0,1,10,50,90,99,100`)",
    "m_histogram_bands_3": "`l` with the term weighed 3 instead of 10 (`--histogram-weight 3`)",
    "n_context_1": "`h` with 2.5D input: each source slice with its neighbours ±1 (`--context-slices 1`)",
    "o_context_2": "`h` with 2.5D input, neighbours ±2 (`--context-slices 2`)",
    "p_median_anchor": "`h` with targets scaled so the brain median sits at 0.3 (`--target-anchor median`)",
    "q_m_wide": "`m` with 32 feature maps instead of 16 (`--features 32`)",
    "r_m_median_anchor": "`m` with targets scaled so the brain median sits at 0.3 (`--target-anchor median`)",
    # experiments/scripts/data_curve_cpu.sh: the bundled recipe on fewer training subjects
    "t1_to_t2_n03": "3 of the 12 training subjects (every 4th by id)",
    "t1_to_t2_n06a": "6 of the 12 (every 2nd by id, from the 1st)",
    "t1_to_t2_n06b": "the other 6 (every 2nd by id, from the 2nd)",
    "t1_to_t2_n12": "all 12 training subjects (the bundled model's data)",
    "t1_to_t2_n06a_seed1": "`n06a` at seed 1",
    "t1_to_t2_n06b_seed1": "`n06b` at seed 1",
    "t1_to_t2_n12_seed1": "`n12` at seed 1",
    "t1-t1c-t2_to_flair_n06a": "T1,T1c,T2 → FLAIR on `n06a`'s 6 subjects",
    "t1-t1c-t2_to_flair_n06b": "T1,T1c,T2 → FLAIR on `n06b`'s 6 subjects",
    "t1-t1c-t2_to_flair_n12": "T1,T1c,T2 → FLAIR on all 12 (the bundled model's data)",
    "t1-t1c-t2_to_flair_n11": "T1,T1c,T2 → FLAIR on all 12 but Brats18_2013_20_1 (FLAIR 0 on 34 % of its brain)",
}


def cell(row: dict[str, str], metric: str, digits: int) -> str:
    mean, std = row.get(f"{metric}_mean", ""), row.get(f"{metric}_std", "")
    if mean in ("", "nan"):
        return "–"
    value = f"{float(mean):.{digits}f}"
    return value if std in ("", "0.000000") else f"{value} ± {float(std):.{digits}f}"  # one case: no spread


def main(folder: Path) -> None:
    rows = list(csv.DictReader((folder / "evaluation" / "summary.csv").open()))
    print(
        "| arm | change | steps / train s | brain PSNR | brain SSIM | BraSyn PSNR | BraSyn SSIM tumour / rest "
        "| BraTS 2023 brain PSNR / SSIM |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for arm, change in CHANGES.items():
        ours = [r for r in rows if r["model"] == arm]
        if not ours:
            continue
        test = next(r for r in ours if r["dataset"] != "brats23")
        other = next((r for r in ours if r["dataset"] == "brats23"), None)
        training = json.loads((folder / "store" / arm / "manifest.json").read_text())["training"]
        compute = f"{training['steps']} / {training['train_seconds']:.0f}"
        brats23 = f"{cell(other, 'psnr_brain', 2)} / {cell(other, 'ssim_brain', 3)}" if other else "–"
        print(
            f"| `{arm}` | {change} | {compute} | {cell(test, 'psnr_brain', 2)} | {cell(test, 'ssim_brain', 3)} "
            f"| {cell(test, 'psnr_brasyn', 2)} | {cell(test, 'ssim_brasyn_tumour', 3)} / "
            f"{cell(test, 'ssim_brasyn_rest', 3)} | {brats23} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
