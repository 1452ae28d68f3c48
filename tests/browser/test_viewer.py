"""The web viewer in a real browser against the real service: upload, synthesize, look, download,
and read the API's errors on the page."""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RESULT_TIMEOUT_MS = 90_000


def open_viewer(page: Page, url: str, configuration: str = "T1->T2") -> None:
    page.goto(url)
    expect(page.locator("#configuration")).to_be_enabled()
    page.select_option("#configuration", configuration)


def drop_file(page: Page, selector: str, path: Path) -> None:
    """Drop ``path`` on an element as a user dragging it from their file manager would."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name));
            return transfer;
        }""",
        [path.name, list(path.read_bytes())],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def lit_fraction(page: Page, canvas_index: int) -> float:
    """The fraction of a result canvas's pixels that are not black."""
    return page.evaluate(
        """(index) => {
            const canvas = document.querySelectorAll("#panels canvas")[index];
            const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let lit = 0;
            for (let i = 0; i < pixels.length; i += 4) if (pixels[i] + pixels[i + 1] + pixels[i + 2] > 0) lit++;
            return lit / (pixels.length / 4);
        }""",
        canvas_index,
    )


def canvas_pixels(page: Page, canvas_index: int) -> list[int]:
    return page.evaluate(
        """(index) => {
            const canvas = document.querySelectorAll("#panels canvas")[index];
            return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
        }""",
        canvas_index,
    )


def metric(page: Page, target: str, name: str) -> float:
    return float(page.inner_text(f"#metrics tr[data-target={target}] td[data-metric={name}]"))


def download(page: Page, target: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.click(f"#downloads a[data-target={target}]")
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_volume_is_synthesized_compared_and_downloaded(page: Page, server: str, case_files) -> None:
    open_viewer(page, server)
    page.set_input_files("#files", [str(case_files.t1), str(case_files.t2)])
    expect(page.locator("#slots li[data-modality=T1] .slot-file")).to_have_text(case_files.t1.name)
    expect(page.locator("#slots li[data-modality=T2] .slot-file")).to_have_text(case_files.t2.name)
    page.click("#run")
    expect(page.locator("#result")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#error")).to_be_hidden()

    titles = page.locator("#panels figcaption strong").all_inner_texts()
    assert titles == ["T1", "synthetic T2", "T2 ground truth", "|error| T2"]
    for index in range(len(titles)):
        assert lit_fraction(page, index) > 0.05, f"panel {titles[index]} is blank"

    # The metrics the API sent; the |error| map is the error behind psnr_brain, so its RMS agrees.
    psnr_brain = metric(page, "T2", "psnr_brain")
    for name in ("psnr", "ssim", "ssim_brain"):
        assert math.isfinite(metric(page, "T2", name))
    rms = float(page.inner_text("#panels figure.error-panel figcaption span").split()[-1])
    assert -20 * math.log10(rms) == pytest.approx(psnr_brain, abs=0.05)

    # The slider moves through the volume; other views slice it the other ways.
    before = canvas_pixels(page, 1)
    page.locator("#slice").fill("5")
    assert canvas_pixels(page, 1) != before
    page.check("input[name=view][value=sagittal]")
    size = page.locator("#panels canvas").nth(1).evaluate("(canvas) => [canvas.width, canvas.height]")
    assert size == [case_files.shape[1], case_files.shape[2]]  # anterior-posterior across, slices up
    assert lit_fraction(page, 1) > 0.05

    name, payload = download(page, "T2")
    assert name == "synthetic_T2.nii.gz"
    image = nib.Nifti1Image.from_bytes(gzip.decompress(payload))
    assert image.shape == case_files.shape
    np.testing.assert_allclose(image.affine, case_files.affine, atol=1e-4)
    assert "synthetic T2" in image.header["descrip"].tobytes().decode()


def test_png_slice_is_synthesized_and_downloaded_as_png(page: Page, server: str, case_files) -> None:
    open_viewer(page, server)
    page.set_input_files("#files", [str(case_files.t1_png), str(case_files.t2_png)])
    expect(page.locator("#notice")).to_contain_text(f"Not placed (no modality in the name): {case_files.t1_png.name}")
    page.set_input_files("#slots li[data-modality=T1] input[type=file]", str(case_files.t1_png))
    page.set_input_files("#slots li[data-modality=T2] input[type=file]", str(case_files.t2_png))
    page.click("#run")
    expect(page.locator("#result")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    assert lit_fraction(page, 1) > 0.05
    expect(page.locator("input[name=view][value=sagittal]")).to_be_disabled()
    expect(page.locator("#slice")).to_be_hidden()
    assert math.isfinite(metric(page, "T2", "ssim_brain"))

    name, payload = download(page, "T2")
    assert name == "synthetic_T2.png"
    with Image.open(io.BytesIO(payload)) as image:
        assert image.size == Image.open(case_files.t1_png).size and image.mode == "L"


def test_corrupt_file_shows_the_api_message(page: Page, server: str, tmp_path: Path) -> None:
    corrupt = tmp_path / "BraTS2021_broken_t1.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + b"not really a gzip stream" * 8)
    answer = httpx.post(
        f"{server}/synthesize", params={"src": "T1", "dst": "T2"},
        files={"T1": (corrupt.name, corrupt.read_bytes())}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 422

    open_viewer(page, server)
    page.click("#run")  # nothing chosen yet: the page says what is missing without asking the API
    expect(page.locator("#error")).to_have_text("Choose a file for T1.")
    drop_file(page, "#drop", corrupt)
    expect(page.locator("#slots li[data-modality=T1] .slot-file")).to_have_text(corrupt.name)
    page.click("#run")
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(error).to_contain_text(answer.json()["detail"])
    expect(error).to_contain_text(f"422 {answer.json()['error']}")
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#run")).to_be_enabled()


def test_api_key_field_appears_when_the_server_needs_one(page: Page, keyed_server: str, api_key: str) -> None:
    page.goto(keyed_server)
    expect(page.locator("#api-key")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("needs an API key")
    expect(page.locator("#configuration")).to_be_disabled()

    page.fill("#api-key", "wrong-key")
    page.press("#api-key", "Enter")
    expect(page.locator("#error")).to_contain_text("does not hold a valid API key [401 unauthorized]")

    page.fill("#api-key", api_key)
    page.click("#key-apply")
    expect(page.locator("#configuration")).to_be_enabled()
    expect(page.locator("#configuration option")).to_have_text(["T1 → T2"])
    expect(page.locator("#error")).to_be_hidden()
