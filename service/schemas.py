"""Response bodies, as pydantic models so that OpenAPI (``/docs``) documents them exactly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from synnet.imageio import OutputFormat
from synnet.scores import MetricReport


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer has this form; branch on ``error``, show ``detail``."""

    error: str = Field(examples=["shape_mismatch"])
    detail: str = Field(examples=["source T2 has shape (240, 240, 150) but source T1 has shape (240, 240, 155)"])
    request_id: str | None = Field(default=None, description="set on 500s: quote it when reporting the bug")
    available: list[str] | None = Field(default=None, description="on 404 no_model: the served configurations")


class ModelUse(BaseModel):
    """A model used for this request and the requested targets it produced."""

    name: str
    src: list[str]
    dst: list[str]
    targets: list[str]
    exact: bool = Field(description="true when the model was made for exactly the requested src and dst")


class TargetResult(BaseModel):
    """One synthesized modality."""

    model: str
    shape: list[int]
    format: OutputFormat
    media_type: str
    filename: str
    data: str = Field(description="the file, base64-encoded")
    metrics: MetricReport | None = Field(description="present when truth_<target> was uploaded")
    slices_run: int = Field(description="slices that went through the network (the others hold no brain)")
    slices_skipped: int


class InputInfo(BaseModel):
    format: Literal["nifti", "png"]
    shape: list[int]


class InputWarning(BaseModel):
    """Inputs unlike the training data (synnet.input_checks): served anyway, but check them."""

    code: Literal["not_skull_stripped", "voxel_size", "orientation", "not_coregistered"] = Field(
        examples=["voxel_size"]
    )
    message: str = Field(examples=["voxel size 3 × 3 × 1 mm is far from the 1 mm isotropic voxels ..."])


class SynthesisResponse(BaseModel):
    """The default (JSON) answer of ``POST /synthesize``."""

    src: list[str]
    dst: list[str]
    models: list[ModelUse]
    input: InputInfo
    targets: dict[str, TargetResult]
    seconds: float = Field(description="server time from upload received to answer ready")
    warnings: list[InputWarning] = Field(
        default_factory=list,
        description="what makes the inputs unlike the training data (not skull-stripped, voxel size, "
        "orientation, sources not co-registered) and what to do; empty when nothing was seen",
    )


class Health(BaseModel):
    status: Literal["ok"]
    auth_required: bool = Field(description="whether /synthesize, /models and /metrics need X-API-Key")


class FailedModel(BaseModel):
    name: str
    reason: str


class ModelServing(BaseModel):
    """How one model serves (SYNNET_MODEL_FORMAT, SYNNET_PRECISION, SYNNET_COMPILE) and what loading it took."""

    name: str
    format: Literal["torchscript", "export"]
    precision: Literal["fp32", "bf16", "fp16"] = Field(description="fp16 only by SYNNET_AUTOCAST_DTYPE on CUDA")
    compiled: bool
    load_seconds: float = Field(description="loading, verifying and warming up (compiling included)")
    compile_seconds: float | None = Field(default=None, description="torch.compile's warm-up")
    compiled_graphs: int | None = Field(default=None, description="graphs torch.compile made at the warm-up")
    recompilations: int | None = Field(default=None, description="graphs it made since, serving (0 is the aim)")
    notes: list[str] = Field(default_factory=list, description="where it serves otherwise than asked, and why")


class Readiness(BaseModel):
    status: Literal["ready", "loading", "unavailable"]
    models: list[str] = Field(description="models loaded and serving")
    failed: list[FailedModel] = Field(description="models that could not be loaded, and why")
    load_seconds: float | None = Field(default=None, description="loading and warming up every model, at start-up")
    serving: list[ModelServing] = Field(default_factory=list, description="how each model serves")


class TargetRoute(BaseModel):
    """Which model makes one target of a configuration, and the validation score routing compared."""

    model: str
    score: float | None = Field(description="the model's recorded validation brain SSIM for it (closest evaluated)")


class ConfigurationRoute(BaseModel):
    """One servable configuration and, per target, the model that serves it (synnet.routing.plan)."""

    configuration: str = Field(description="e.g. 'T1,FLAIR->T2'")
    src: list[str]
    dst: list[str]
    targets: dict[str, TargetRoute]


class ModelsResponse(BaseModel):
    models: list[dict[str, object]] = Field(
        description="manifests of the served models without internals, with their validation scores "
        "(`evaluation`, `evaluation_data`) from evaluation.json"
    )
    configurations: list[str] = Field(description="served src->dst configurations, e.g. 'T1->T2'")
    routes: list[ConfigurationRoute] = Field(
        default_factory=list,
        description="every servable configuration (all 50 with an any-to-any model) and the model serving each target",
    )
    unavailable: list[FailedModel]


class ModelCardBody(BaseModel):
    """A model's card, written beside it by ``python -m training.cards``."""

    markdown: str = Field(
        description="README.md: what it makes from what, its training, which subjects did what, its validation "
        "and test scores in both conventions, its intended use and limits"
    )
    figure_url: str | None = Field(description="where to GET the card's figure (PNG); null when it has none")


class ModelDetail(BaseModel):
    """One served model: its manifest, its scores, what routing serves with it, and its card."""

    name: str
    manifest: dict[str, object] = Field(description="the manifest without internals, as in GET /models")
    evaluation: dict[str, object] | None = Field(
        description="evaluation.json: validation scores (targets, configurations, data), which routing compares, "
        "and test scores by dataset (test), only reported; null when the model was not evaluated"
    )
    serves: list[ConfigurationRoute] = Field(
        description="the configurations in which routing gives this model at least one target"
    )
    card: ModelCardBody | None = Field(description="null when the model has no card (README.md beside it)")


SYNTHESIS_EXAMPLE = {
    "src": ["T1"],
    "dst": ["T2"],
    "models": [{"name": "t1_to_t2", "src": ["T1"], "dst": ["T2"], "targets": ["T2"], "exact": True}],
    "input": {"format": "nifti", "shape": [240, 240, 155]},
    "targets": {
        "T2": {
            "model": "t1_to_t2",
            "shape": [240, 240, 155],
            "format": "nifti",
            "media_type": "application/gzip",
            "filename": "synthetic_T2.nii.gz",
            "data": "H4sIAAAAAAAC/+3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA",
            "metrics": {"psnr": 27.41, "ssim": 0.912, "psnr_brain": 24.87, "ssim_brain": 0.874, "identical": False},
            "slices_run": 139,
            "slices_skipped": 16,
        }
    },
    "seconds": 4.2,
    "warnings": [],
}
