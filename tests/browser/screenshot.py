"""Take the viewer's screenshot for the docs (docs/viewer.png): a real case through a running service.

    python -m service &                                  # the bundled model store
    python tests/browser/screenshot.py --case /work/shared/data/brats18/Brats18_CBICA_ABM_1 \\
        --src T1 --dst T2 --slice 61 --out docs/viewer.png

Every file of the case whose name says a modality of the configuration is picked (the targets'
as ground truth, so the metrics show); ``--slice`` is the axial voxel index to show.
Not a test: pytest collects only ``test_*.py``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, where the page helpers are
from viewer_page import open_viewer

BRATS_SUFFIXES = {"T1": ("t1", "t1n"), "T1c": ("t1ce", "t1c"), "T2": ("t2", "t2w"), "FLAIR": ("flair", "t2f")}


def case_files(case: Path, modalities: list[str]) -> list[Path]:
    files = []
    for modality in modalities:
        names = [p for s in BRATS_SUFFIXES[modality] for p in case.glob(f"*_{s}.nii*")]
        if not names:
            raise SystemExit(f"no {modality} file in {case}")
        files.append(names[0])
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--case", type=Path, required=True, help="a folder of BraTS-named NIfTI files")
    parser.add_argument("--src", default="T1", help="comma-separated, as in GET /models")
    parser.add_argument("--dst", default="T2", help="comma-separated, as in GET /models")
    parser.add_argument("--slice", type=int, help="axial slice to show (default: the page's choice)")
    parser.add_argument("--out", type=Path, default=Path("docs/viewer.png"))
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    src, dst = args.src.split(","), args.dst.split(",")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        open_viewer(page, args.url, src, dst)
        page.set_input_files("#files", [str(p) for p in case_files(args.case, src + dst)])
        page.click("#run")
        expect(page.locator("#result")).to_be_visible(timeout=600_000)
        if args.slice is not None:
            page.locator("#slice").fill(str(args.slice))
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
