"""Decide, model by model, whether a retrained dedicated model replaces the bundled one.

    python experiments/scripts/dedicated_adopt.py runs/dedicated_2000steps/store            (print the table)
    python experiments/scripts/dedicated_adopt.py runs/dedicated_2000steps/store --apply    (and copy the winners)

Both sides are read from the ``evaluation.json`` that ``training.evaluate --write-evaluation`` puts
beside each model: means over the same held-out BraTS 2018 cases. The rule: a new model replaces the
bundled one only if its mean in-brain PSNR and its mean in-brain SSIM over its targets are both at
least the bundled model's, so that no configuration a dedicated model serves gets worse. A model
whose name the bundled store lacks is added (names follow src and dst, so that is a new
configuration): routing already compares its in-brain SSIM with the unified model's and serves the
better one (docs/service.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from synnet.evaluation import EvaluationRecord

BUNDLED_STORE = Path("model_store")


def mean_scores(model_dir: Path) -> tuple[float, float] | None:
    """Mean in-brain (PSNR, SSIM) over the model's targets, or None when it has no evaluation."""
    path = model_dir / "evaluation.json"
    if not path.is_file():
        return None
    targets = EvaluationRecord.model_validate_json(path.read_text()).targets.values()
    if not targets:
        return None
    return (
        sum(t.psnr_brain for t in targets) / len(targets),
        sum(t.ssim_brain for t in targets) / len(targets),
    )


def replaces(new: tuple[float, float], old: tuple[float, float]) -> bool:
    return new[0] >= old[0] and new[1] >= old[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="store of the retrained models")
    parser.add_argument("--apply", action="store_true", help="copy each winner over the bundled model")
    args = parser.parse_args(argv)
    print("| model | bundled brain PSNR / SSIM | retrained brain PSNR / SSIM | replaces |")
    print("| --- | --- | --- | --- |")
    for model_dir in sorted(p for p in args.store.iterdir() if (p / "manifest.json").is_file()):
        new, old = mean_scores(model_dir), mean_scores(BUNDLED_STORE / model_dir.name)
        if new is not None and not (BUNDLED_STORE / model_dir.name).exists():
            print(f"| `{model_dir.name}` | – | {new[0]:.2f} / {new[1]:.3f} | added (a new configuration) |")
            if args.apply:
                shutil.copytree(model_dir, BUNDLED_STORE / model_dir.name)
            continue
        if new is None or old is None:
            print(f"| `{model_dir.name}` | {old} | {new} | no (a side has no evaluation.json) |")
            continue
        verdict = replaces(new, old)
        scores = f"{old[0]:.2f} / {old[1]:.3f} | {new[0]:.2f} / {new[1]:.3f}"
        print(f"| `{model_dir.name}` | {scores} | {'yes' if verdict else 'no'} |")
        if verdict and args.apply:
            shutil.rmtree(BUNDLED_STORE / model_dir.name)
            shutil.copytree(model_dir, BUNDLED_STORE / model_dir.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
