"""Every bad request gets a clear 4xx ``{"error": code, "detail": message}``; nothing hangs or leaks a traceback."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging

import httpx
import nibabel as nib
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.anyio

AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])


def brain(shape: tuple[int, ...] = (32, 32, 6), seed: int = 0) -> np.ndarray:
    """A block of 'brain' with noise, zero background (skull-stripped, like BraTS)."""
    image = np.zeros(shape, np.float32)
    inner = tuple(slice(side // 4, side - side // 4) for side in shape[:2]) + (slice(None),) * (len(shape) - 2)
    image[inner] = 100 + 50 * np.random.default_rng(seed).random(image[inner].shape)
    return image


def nii(array: np.ndarray, affine: np.ndarray = AFFINE, dtype: type = np.int16) -> bytes:
    return gzip.compress(nib.Nifti1Image(array.astype(dtype), affine).to_bytes(), mtime=0)


def png(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD = nii(brain())
NAN_VOLUME = brain()
NAN_VOLUME[10, 10, 2] = np.nan
COLOUR = np.stack([brain((32, 32)), brain((32, 32), 1), brain((32, 32), 2)], axis=-1)

# id, query, form parts {name: (filename, bytes)}, status, error code, words the detail must contain
CASES = [
    ("unknown src", {"src": "PD", "dst": "T2"}, {"T1": ("t1.nii.gz", GOOD)}, 422, "unknown_modality", "'PD'"),
    ("unknown dst", {"src": "T1", "dst": "T3"}, {"T1": ("t1.nii.gz", GOOD)}, 422, "unknown_modality", "'T3'"),
    ("unknown part", {"dst": "T2"}, {"PD": ("pd.nii.gz", GOOD)}, 422, "unknown_modality", "form part 'PD'"),
    ("missing part", {"src": "T1,T1c", "dst": "FLAIR"}, {"T1": ("t1.nii.gz", GOOD)}, 422, "missing_part", "T1c"),
    ("no part", {"dst": "T2"}, {"mask": ("m.nii.gz", GOOD)}, 422, "missing_part", "no source image"),
    ("overlap", {"src": "T1,T2", "dst": "T2"}, {"T1": ("t1.nii.gz", GOOD)}, 422, "overlapping_modalities", "T2"),
    ("unsupported format", {"src": "T1", "dst": "T2"}, {"T1": ("t1.txt", b"hello")}, 415, "unsupported_format",
     "NIfTI"),
    ("corrupt gzip", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii.gz", b"\x1f\x8b" + b"\x00" * 64)}, 422,
     "corrupt_file", "T1 part"),
    ("truncated", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii", gzip.decompress(GOOD)[:2000])}, 422,
     "truncated_file", "truncated"),
    ("empty file", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii.gz", b"")}, 422, "empty_file", "empty"),
    ("shapes differ", {"src": "T1,T1c", "dst": "FLAIR"},
     {"T1": ("a.nii.gz", GOOD), "T1c": ("b.nii.gz", nii(brain((32, 32, 5))))}, 422, "shape_mismatch",
     "(32, 32, 5)"),
    ("affines differ", {"src": "T1,T1c", "dst": "FLAIR"},
     {"T1": ("a.nii.gz", GOOD), "T1c": ("b.nii.gz", nii(brain(), np.eye(4)))}, 422, "affine_mismatch", "affine"),
    ("truth shape", {"src": "T1", "dst": "T2"},
     {"T1": ("a.nii.gz", GOOD), "truth_T2": ("t.nii.gz", nii(brain((32, 30, 6))))}, 422, "shape_mismatch",
     "truth_T2"),
    ("4D", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii.gz", nii(np.stack([brain()] * 2, axis=-1)))}, 422,
     "bad_dimensions", "4 dimensions"),
    ("NaN", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii.gz", nii(NAN_VOLUME, dtype=np.float32))}, 422,
     "non_finite", "NaN"),
    ("colour PNG", {"src": "T1", "dst": "T2"}, {"T1": ("t1.png", png(COLOUR, "RGB"))}, 422, "colour_image",
     "grayscale"),
    ("too small", {"src": "T1", "dst": "T2"}, {"T1": ("t1.png", png(brain((12, 12))))}, 422, "bad_dimensions",
     "(12, 12)"),
    ("all zero", {"src": "T1", "dst": "T2"}, {"T1": ("t1.nii.gz", nii(np.zeros((32, 32, 6))))}, 422,
     "empty_image", "zero"),
    ("duplicate part", {"dst": "T2"}, {"T1": ("a.nii.gz", GOOD), "t1n": ("b.nii.gz", GOOD)}, 422,
     "duplicate_part", "'T1' and 't1n'"),
    ("flat truth", {"src": "T1", "dst": "T2"},
     {"T1": ("a.nii.gz", GOOD), "truth_T2": ("t.nii.gz", nii(np.zeros((32, 32, 6))))}, 422, "flat_truth",
     "constant"),
    ("stray truth", {"src": "T1", "dst": "T2"}, {"T1": ("a.nii.gz", GOOD), "truth_FLAIR": ("t.nii.gz", GOOD)}, 422,
     "unexpected_part", "FLAIR"),
    ("source not in src", {"src": "T1", "dst": "T2"}, {"T1": ("a.nii.gz", GOOD), "T1c": ("b.nii.gz", GOOD)}, 422,
     "unexpected_part", "T1c"),
    ("PNG of a volume", {"src": "T1", "dst": "T2", "format": "png"}, {"T1": ("a.nii.gz", GOOD)}, 422,
     "unsupported_output_format", "2D"),
    ("bad format", {"src": "T1", "dst": "T2", "format": "bmp"}, {"T1": ("a.nii.gz", GOOD)}, 422,
     "invalid_request", "format"),
    ("no dst", {"src": "T1"}, {"T1": ("a.nii.gz", GOOD)}, 422, "invalid_request", "dst"),
    ("download of two", {"src": "T1,T1c", "dst": "T2,FLAIR", "download": "1"},
     {"T1": ("a.nii.gz", GOOD), "T1c": ("b.nii.gz", GOOD)}, 422, "download_needs_one_target", "one target"),
]


def assert_error(response: httpx.Response, status: int, code: str, words: str = "") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert words in body["detail"], body
    assert set(body) <= {"error", "detail", "available", "request_id"}
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert response.headers["x-request-id"]
    return body


@pytest.mark.parametrize(
    ("query", "files", "status", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_gets_a_clear_4xx(serve, query, files, status, code, words) -> None:
    async with serve() as (_, client):
        response = await client.post("/synthesize", params=query, files=files)
    assert_error(response, status, code, words)


async def test_non_multipart_and_malformed_bodies(serve) -> None:
    async with serve() as (_, client):
        as_json = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, json={"T1": "abc"})
        as_text = await client.post(
            "/synthesize", params={"dst": "FLAIR"}, data={"T1": "not a file"}, files={"T1c": ("b.nii.gz", GOOD)}
        )
        malformed = await client.post(
            "/synthesize",
            params={"src": "T1", "dst": "T2"},
            content=b"--xyz\r\nContent-Disposition: form-data; name=\"T1\"; filename=\"a\"\r\n\r\nabc",
            headers={"content-type": "multipart/form-data"},  # no boundary
        )
        unknown_route = await client.get("/nope")
        wrong_method = await client.get("/synthesize")
    assert_error(as_json, 415, "unsupported_media_type", "multipart/form-data")
    assert_error(as_text, 422, "not_a_file", "'T1'")
    assert_error(malformed, 400, "bad_request", "multipart")
    assert_error(unknown_route, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")


class BodyMeter:
    """ASGI wrapper that counts the request-body bytes the app actually pulled."""

    def __init__(self, app) -> None:
        self.app = app
        self.bytes = 0

    async def __call__(self, scope, receive, send) -> None:
        async def metered():
            message = await receive()
            self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, metered, send)


async def test_oversize_upload_is_413_before_the_body_is_read(serve) -> None:
    async with serve(max_upload_bytes=64 * 1024) as (app, _):
        meter = BodyMeter(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=meter), base_url="http://t") as client:
            declared = await client.post(
                "/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": ("t1.nii", b"\0" * 200_000)}
            )
            assert_error(declared, 413, "payload_too_large", "Content-Length")
            assert meter.bytes == 0  # refused from the header alone

            sent = 0

            async def stream():  # chunked: no Content-Length, the limit is found while streaming
                nonlocal sent
                yield b'--xyz\r\nContent-Disposition: form-data; name="T1"; filename="t1.nii"\r\n\r\n'
                for _ in range(100):
                    sent += 1
                    yield b"\0" * 16 * 1024

            meter.bytes = 0
            streamed = await client.post(
                "/synthesize", params={"src": "T1", "dst": "T2"}, content=stream(),
                headers={"content-type": "multipart/form-data; boundary=xyz"},
            )
            assert_error(streamed, 413, "payload_too_large", str(64 * 1024))
            assert meter.bytes <= 64 * 1024 + 16 * 1024 and sent < 100


async def test_full_queue_is_503_with_retry_after(serve, kit, case) -> None:
    files = {"T1": ("t1.png", kit.png_bytes(case["T1"].array[:, :, 77]))}
    params = {"src": "T1", "dst": "T2"}
    async with serve(max_queued_requests=1, max_batch_delay_s=1.0, retry_after_s=3) as (app, client):
        first = asyncio.ensure_future(client.post("/synthesize", params=params, files=files))
        for _ in range(200):
            if app.state.runtime.admission.in_flight:
                break
            await asyncio.sleep(0.01)
        refused = await client.post("/synthesize", params=params, files=files)
        assert (await first).status_code == 200
    assert_error(refused, 503, "queue_full", "busy")
    assert refused.headers["retry-after"] == "3"


async def test_trickling_upload_is_408_and_frees_its_slot(serve) -> None:
    async def stream():  # the form starts, then the client stalls
        yield b'--xyz\r\nContent-Disposition: form-data; name="T1"; filename="t1.nii"\r\n\r\n'
        await asyncio.sleep(3.0)
        yield b"\0" * 1024

    async with serve(upload_timeout_s=0.3) as (app, client):
        response = await asyncio.wait_for(
            client.post(
                "/synthesize", params={"src": "T1", "dst": "T2"}, content=stream(),
                headers={"content-type": "multipart/form-data; boundary=xyz"},
            ),
            timeout=10,
        )  # fmt: skip
        assert app.state.runtime.admission.in_flight == 0
    assert_error(response, 408, "upload_timeout", "0.3 s")


async def test_slow_synthesis_is_504(serve, kit, case) -> None:
    files = {"T1": ("t1.png", kit.png_bytes(case["T1"].array[:, :, 77]))}
    async with serve(request_timeout_s=0.2, max_batch_delay_s=5.0) as (app, client):
        response = await asyncio.wait_for(
            client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files), timeout=4
        )
        assert app.state.runtime.admission.in_flight == 0
    assert_error(response, 504, "timeout", "0.2 s")


async def test_unexpected_error_is_500_with_a_request_id_and_no_traceback(serve, monkeypatch, caplog) -> None:
    import synnet.pipeline.outputs

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal state")

    monkeypatch.setattr(synnet.pipeline.outputs, "finish_target", broken)
    caplog.set_level(logging.ERROR, logger="service.middleware")
    async with serve() as (_, client):
        response = await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": ("a.nii.gz", GOOD)})
        given = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2"}, files={"T1": ("a.nii.gz", GOOD)},
            headers={"X-Request-ID": "client-chosen-42"},
        )
    body = assert_error(response, 500, "internal_error")
    request_id = response.headers["x-request-id"]
    assert body["request_id"] == request_id and request_id in body["detail"]
    assert "secret" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log, under the same id
    assert given.json()["request_id"] == "client-chosen-42" == given.headers["x-request-id"]
