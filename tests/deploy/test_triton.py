"""training.triton: a Triton repository that Triton's own config schema accepts, for a model we export."""

from __future__ import annotations

import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.store import load_model
from training.export import any_to_any_example, example_input, write_model
from training.models import create_model, model_config
from training.triton import TritonExportError, main, write_triton_repository

SRC, DST = ["T1", "T1c"], ["T2"]
ALL = [m.value for m in Modality]
TORCH_DTYPES = {model_config_pb2.TYPE_FP32: torch.float32}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one tiny SynNet (2 sources -> 1 target) exported by training.export."""
    store = tmp_path_factory.mktemp("store")
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 1}
    model = create_model("synnet", len(SRC), len(DST), **hyper)
    write_model(
        store,
        "tiny_t1-t1c_to_t2",
        model,
        example_input(len(SRC), 32),
        src=SRC,
        dst=DST,
        version="3",
        architecture={"name": "synnet", "params": model_config("synnet", len(SRC), len(DST), **hyper)},
        loss={"name": "l2"},
        training_data={"source": "generated", "n_cases": 0},
    )
    return store


def parse_config(path) -> model_config_pb2.ModelConfig:
    # Parse raises on any field or enum that Triton's ModelConfig does not define.
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def test_config_pbtxt_parses_as_triton_model_config(store, tmp_path):
    (model_dir,) = write_triton_repository(store, tmp_path, max_batch_size=16, preferred_batch_sizes=[4, 16, 64])
    config = parse_config(model_dir / "config.pbtxt")

    assert config.name == model_dir.name == "tiny_t1-t1c_to_t2"
    assert config.platform == "pytorch_libtorch"
    assert config.max_batch_size == 16
    (tensor_in,) = config.input
    (tensor_out,) = config.output
    assert (tensor_in.name, list(tensor_in.dims)) == ("INPUT__0", [len(SRC), -1, -1])
    assert (tensor_out.name, list(tensor_out.dims)) == ("OUTPUT__0", [len(DST), -1, -1])
    assert tensor_in.data_type == tensor_out.data_type == model_config_pb2.TYPE_FP32
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]  # 64 > max_batch_size is dropped
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    manifest = ModelManifest.load(store / model_dir.name)
    assert config.parameters["synnet_src"].string_value == "T1,T1c"
    assert config.parameters["synnet_sha256"].string_value == manifest.sha256


def test_version_folder_holds_the_served_torchscript(store, tmp_path):
    (model_dir,) = write_triton_repository(store, tmp_path)
    served = torch.jit.load(str(store / model_dir.name / "model.pt"))
    exported = torch.jit.load(str(model_dir / "3" / "model.pt"))  # manifest version "3"
    x = example_input(len(SRC), 24, batch=3)
    with torch.inference_mode():
        assert torch.equal(exported(x), served(x))
    assert ModelManifest.load(model_dir) == ModelManifest.load(store / model_dir.name)


def test_the_repository_holds_torchscript_only_though_the_store_has_a_program(store, tmp_path):
    """No released Triton loads a torch.export archive: the store's model.pt2 stays out of the repository."""
    (model_dir,) = write_triton_repository(store, tmp_path)
    assert (store / model_dir.name / "model.pt2").is_file()
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*")) == [
        "3", "3/model.pt", "config.pbtxt", "manifest.json",
    ]  # fmt: skip


def test_symlink_and_rerun_replace_the_model(store, tmp_path):
    write_triton_repository(store, tmp_path)
    (model_dir,) = write_triton_repository(store, tmp_path, symlink=True)
    assert (model_dir / "3" / "model.pt").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == [model_dir.name]  # no staging folder left


def test_model_file_not_matching_its_manifest_is_refused(store, tmp_path):
    broken = tmp_path / "store" / "broken"
    broken.mkdir(parents=True)
    manifest = ModelManifest.load(store / "tiny_t1-t1c_to_t2").model_copy(update={"name": "broken"})
    manifest.save(broken)
    (broken / "model.pt2").write_bytes((store / "tiny_t1-t1c_to_t2" / "model.pt2").read_bytes())
    (broken / "model.pt").write_bytes(b"not the exported model")
    with pytest.raises(TritonExportError, match="sha256"):
        write_triton_repository(broken.parent, tmp_path / "triton")


def test_cli_writes_the_repository_and_reports_errors(store, tmp_path, capsys):
    assert main(["--store", str(store), "--out", str(tmp_path / "repo"), "--max-batch-size", "8"]) == 0
    assert parse_config(tmp_path / "repo" / "tiny_t1-t1c_to_t2" / "config.pbtxt").max_batch_size == 8
    assert main(["--store", str(store), "--out", str(tmp_path / "repo"), "--model", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_export_cli_writes_a_triton_repository_for_the_store(store, tmp_path):
    from training.export import main as export_main

    assert export_main(["--out", str(store), "--triton", str(tmp_path / "repo")]) == 0
    configs = sorted((tmp_path / "repo").glob("*/config.pbtxt"))
    assert configs, "no config.pbtxt written"
    for path in configs:
        assert parse_config(path).platform == "pytorch_libtorch"
        assert list(path.parent.glob("*/model.pt")), f"no <version>/model.pt beside {path}"


def test_export_cli_needs_a_checkpoint_or_triton(capsys):
    from training.export import main as export_main

    with pytest.raises(SystemExit) as exit_info:
        export_main([])
    assert exit_info.value.code == 2
    assert "CHECKPOINT" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The unified (any-to-any) model: a second input, present, that Triton's PyTorch backend can bind.


@pytest.fixture(scope="module")
def unified_store(tmp_path_factory):
    """A store with one tiny unified SynNet (any_to_any) exported by training.export."""
    store = tmp_path_factory.mktemp("unified_store")
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 1}
    write_model(
        store,
        "tiny_unified",
        create_model("unified", 4, 4, **hyper),
        any_to_any_example(32),
        src=ALL,
        dst=ALL,
        any_to_any=True,
        architecture={"name": "unified", "params": model_config("unified", 4, 4, **hyper)},
        loss={"name": "l2"},
        output_reference={m: {"lo": 0.0, "hi": 1000.0} for m in ALL},
        training_data={"source": "generated", "n_cases": 0},
    )
    return store


def test_unified_config_declares_present(unified_store, tmp_path):
    (model_dir,) = write_triton_repository(unified_store, tmp_path)
    config = parse_config(model_dir / "config.pbtxt")
    declared = [(t.name, list(t.dims), t.data_type) for t in config.input]
    fp32 = model_config_pb2.TYPE_FP32
    assert declared == [("INPUT__0", [4, -1, -1], fp32), ("INPUT__1", [4], fp32)]
    (tensor_out,) = config.output
    assert (tensor_out.name, list(tensor_out.dims), tensor_out.data_type) == ("OUTPUT__0", [4, -1, -1], fp32)
    channel_order = {config.parameters[k].string_value for k in ("synnet_src", "synnet_dst")}
    assert channel_order == {"T1,T1c,T2,FLAIR"}


def test_unified_model_called_as_declared_equals_the_served_model(unified_store, tmp_path):
    """Feed model.pt what config.pbtxt declares, bound the way Triton binds it, and compare with the service's path."""
    (model_dir,) = write_triton_repository(unified_store, tmp_path, symlink=True)
    config = parse_config(model_dir / "config.pbtxt")
    exported = torch.jit.load(str(model_dir / "1" / "model.pt"))
    # Triton's PyTorch backend loads only models whose forward takes plain Tensors, one per declared input.
    arguments = exported.forward.schema.arguments[1:]
    assert [str(a.type) for a in arguments] == ["Tensor"] * len(config.input)
    assert not (model_dir / "1" / "model.pt").is_symlink()  # the store's file has present optional

    # Every source subset once, from one source to three; absent channels are zero, present says which.
    present = torch.tensor(
        [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1], [1, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.float32
    )
    batch, height, width = len(present), 40, 24
    values = {
        "INPUT__0": torch.rand(batch, 4, height, width, generator=torch.Generator().manual_seed(1)),
        "INPUT__1": present,
    }
    values["INPUT__0"] *= present[:, :, None, None]
    inputs = []
    for tensor in sorted(config.input, key=lambda t: int(t.name.rsplit("__", 1)[1])):  # <name>__<index>
        free = iter([height, width])  # the -1 dims, in order
        shape = [batch, *(next(free) if d == -1 else d for d in tensor.dims)]
        value = values[tensor.name]
        assert list(value.shape) == shape and value.dtype == TORCH_DTYPES[tensor.data_type]
        inputs.append(value)
    with torch.inference_mode():
        triton_out = exported(*inputs)

    served = load_model(unified_store / "tiny_unified", device="cpu", channels_last=False)
    absent_as_nan = values["INPUT__0"].masked_fill(present[:, :, None, None] == 0, float("nan"))
    assert torch.equal(triton_out, served.forward(absent_as_nan))
    assert triton_out.shape == (batch, 4, height, width)
