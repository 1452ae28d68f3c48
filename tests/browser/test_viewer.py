"""The web viewer in a real browser against the real service: choose a configuration the store
serves (any of the 50 with a unified model), upload, synthesize, look, download, and read the
API's errors on the page."""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from viewer_page import MODALITIES, open_viewer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RESULT_TIMEOUT_MS = 90_000


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
    assert offered(page, "sources") == offered(page, "targets") == []

    page.fill("#api-key", "wrong-key")
    page.press("#api-key", "Enter")
    expect(page.locator("#error")).to_contain_text("does not hold a valid API key [401 unauthorized]")

    page.fill("#api-key", api_key)
    page.click("#key-apply")
    expect(page.locator("#targets input[value=T2]")).to_be_checked()
    assert offered(page, "sources") == ["T1", "T1c", "FLAIR"]
    expect(page.locator("#error")).to_be_hidden()


def test_the_card_of_the_model_that_served_opens_with_its_figure(
    page: Page, keyed_server: str, api_key: str, case_files
) -> None:
    """Behind a key too: the figure is fetched with it (a plain <img src> would get a 401 and stay empty)."""
    page.goto(keyed_server)
    page.fill("#api-key", api_key)
    page.click("#key-apply")
    expect(page.locator("#targets input[value=T2]")).to_be_checked()
    page.set_input_files("#files", [str(case_files.t1)])
    page.click("#run")
    expect(page.locator("#result")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    page.click("#model-cards button[data-model=t1_to_t2]")
    expect(page.locator("#card-dialog")).to_be_visible()
    expect(page.locator("#card-title")).to_have_text("t1_to_t2")
    text = page.locator("#card-text")
    expect(text).to_contain_text("## Which subjects did what")
    expect(text).to_contain_text("Not for diagnosis or treatment decisions")
    expect(text).not_to_contain_text("pipeline_tag")  # the front matter is for model hubs, not shown
    expect(page.locator("#card-figure")).to_be_visible()
    assert page.evaluate("document.getElementById('card-figure').naturalWidth") > 100
    page.click("#card-close")
    expect(page.locator("#card-dialog")).to_be_hidden()


def offered(page: Page, picker: str) -> list[str]:
    """The modalities a picker (``sources`` or ``targets``) lets the user tick or untick now."""
    return [m for m in MODALITIES if page.locator(f"#{picker} input[value={m}]").is_enabled()]


def route_caption(page: Page, target: str) -> str:
    return page.inner_text(f"#targets label[data-modality={target}] .route")


def test_pickers_offer_only_what_the_store_serves(page: Page, server: str) -> None:
    """A store with only t1_to_t2: T1 → T2, and T1 plus other sources → T2 (a subset serves them)."""
    page.goto(server)
    expect(page.locator("#targets input[value=T2]")).to_be_checked()  # the first served configuration
    expect(page.locator("#sources input[value=T1]")).to_be_checked()
    assert offered(page, "sources") == ["T1", "T1c", "FLAIR"]  # no route has T2 as a source
    assert offered(page, "targets") == ["T2"]
    assert route_caption(page, "T2") == "t1_to_t2 · no recorded score"
    expect(page.locator("#slots li")).to_have_count(2)
    expect(page.locator("#run")).to_be_enabled()

    page.check("#sources input[value=FLAIR]")  # T1 + FLAIR -> T2 is still served, by the same model
    expect(page.locator("#targets input[value=T2]")).to_be_checked()
    expect(page.locator("#slots li")).to_have_count(3)

    page.uncheck("#sources input[value=T1]")  # FLAIR alone: nothing is served, so no target is kept
    expect(page.locator("#targets input[value=T2]")).not_to_be_checked()
    assert offered(page, "targets") == []
    expect(page.locator("#choice")).to_have_text("No model synthesizes anything from FLAIR.")
    expect(page.locator("#slots li")).to_have_count(0)
    expect(page.locator("#run")).to_be_disabled()


def test_a_configuration_only_the_unified_model_serves_is_synthesized(
    page: Page, unified_server: str, case_files
) -> None:
    """FLAIR → T1 + T2, which no dedicated model serves: chosen in the pickers, routed, synthesized, shown."""
    routes = {r["configuration"]: r for r in httpx.get(f"{unified_server}/models", timeout=10).json()["routes"]}
    assert len(routes) == 50
    served = routes["FLAIR->T1,T2"]["targets"]
    assert {t: r["model"] for t, r in served.items()} == {"T1": "synnet_unified", "T2": "synnet_unified"}
    recorded = served["T1"]["score"]
    assert recorded is not None and served["T2"]["score"] is None

    open_viewer(page, unified_server, ["FLAIR"], ["T1", "T2"])
    assert offered(page, "sources") == list(MODALITIES)
    assert offered(page, "targets") == ["T1", "T1c", "T2"]  # every modality but the source
    assert route_caption(page, "T1") == f"synnet_unified · brain SSIM {recorded:.3f}"
    assert route_caption(page, "T2") == "synnet_unified · no recorded score"
    assert route_caption(page, "T1c") == "synnet_unified · no recorded score"  # offered, not ticked

    page.set_input_files("#files", [str(case_files.flair), str(case_files.t1)])
    expect(page.locator("#slots li")).to_have_count(3)  # FLAIR source, T1 and T2 ground truth slots
    expect(page.locator("#slots li[data-modality=FLAIR] .slot-file")).to_have_text(case_files.flair.name)
    with page.expect_request(lambda request: "/synthesize" in request.url) as sent:
        page.click("#run")
    query = parse_qs(urlparse(sent.value.url).query)
    assert (query["src"], query["dst"]) == (["FLAIR"], ["T1,T2"])
    expect(page.locator("#result")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#error")).to_be_hidden()

    titles = page.locator("#panels figcaption strong").all_inner_texts()
    assert titles == ["FLAIR", "synthetic T1", "T1 ground truth", "|error| T1", "synthetic T2"]
    captions = page.locator("#panels figcaption span").all_inner_texts()
    assert captions[1] == captions[4] == "model synnet_unified"
    for index in range(len(titles)):
        assert lit_fraction(page, index) > 0.05, f"panel {titles[index]} is blank"
    assert math.isfinite(metric(page, "T1", "ssim_brain"))
    expect(page.locator("#summary")).to_contain_text("FLAIR → T1 + T2 by synnet_unified")

    name, payload = download(page, "T2")
    assert name == "synthetic_T2.nii.gz"
    assert nib.Nifti1Image.from_bytes(gzip.decompress(payload)).shape == case_files.shape
