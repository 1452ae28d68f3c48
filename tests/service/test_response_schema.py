"""What /synthesize sends is what its OpenAPI schema says: real responses validated against /openapi.json."""

from __future__ import annotations

import jsonschema
import pytest

from synnet.modalities import Modality

pytestmark = pytest.mark.anyio

T1, T2 = Modality.T1, Modality.T2


def _validator(openapi: dict, name: str) -> jsonschema.protocols.Validator:
    """A validator for ``components/schemas/<name>`` whose $refs resolve inside the OpenAPI document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_json_answers_validate_against_the_published_schema(serve, small_case, kit) -> None:
    volume = small_case[T1]
    files_volume = {"T1": ("t1.nii.gz", kit.nifti_bytes(volume.array, volume.affine), "application/gzip")}
    slice_png = kit.png_bytes(volume.array[:, :, 12])
    truth_png = kit.png_bytes(small_case[T2].array[:, :, 12])
    async with serve() as (_, client):
        openapi = (await client.get("/openapi.json")).json()
        answers = [
            await client.post("/synthesize", params={"src": "T1", "dst": "T2"}, files=files_volume),
            await client.post(
                "/synthesize", params={"src": "T1", "dst": "T2"},
                files={"T1": ("t1.png", slice_png), "truth_T2": ("t2.png", truth_png)},
            ),
        ]  # fmt: skip
        error = await client.post("/synthesize", params={"src": "T1", "dst": "T1"}, files=files_volume)
    success = _validator(openapi, "SynthesisResponse")
    for answer in answers:
        assert answer.status_code == 200, answer.text
        success.validate(answer.json())
    assert answers[1].json()["targets"]["T2"]["metrics"]["ssim_brain"] is not None  # metrics are in the schema too
    metrics = openapi["components"]["schemas"]["MetricReport"]  # synnet.scores: the record the API returns
    assert metrics["required"] == ["psnr", "ssim", "psnr_brain", "ssim_brain", "identical"]
    route = openapi["paths"]["/synthesize"]["post"]["responses"]
    assert route["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SynthesisResponse"}
    assert error.status_code == 422
    _validator(openapi, "ErrorBody").validate(error.json())
    with pytest.raises(jsonschema.ValidationError):  # the check bites: a field the schema lacks type for
        success.validate({**answers[0].json(), "seconds": "slow"})
