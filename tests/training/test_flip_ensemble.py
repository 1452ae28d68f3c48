"""The flip ensemble: the average the model file computes, where it applies it, and the re-export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from float_tolerance import assert_close_to_scale
from synnet.evaluation import EVALUATION_FILE
from synnet.inference import synthesize
from synnet.manifest import MANIFEST_FILE, ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.store import load_model
from training.calibrate import main as calibrate_main
from training.data.brats import find_cases, load_case
from training.export import export_torchscript
from training.flip_ensemble import flag_table, main
from training.models import create_model
from training.models.flip_average import FlipAveragedAnyToAny, FlipAveragedDedicated, flip_mean
from unified_model import UNIFIED_NAME, fit_unified

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def flipped_back_mean(network: Callable[..., torch.Tensor], x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
    views = [network(x, *extra)] + [network(x.flip(d), *extra).flip(d) for d in ([3], [2], [2, 3])]
    return torch.stack(views).mean(dim=0)


class CountingNetwork(nn.Module):
    """A network that counts its forwards (to see the average skipped where nothing is adopted)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.calls = 0

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.network(x, present)


@torch.no_grad()
def test_adopted_channels_are_the_mean_of_the_four_flipped_back_views_and_the_others_are_untouched() -> None:
    torch.manual_seed(0)
    network = create_model("synnet", 1, 2, features=4, depth=2).eval()
    averaged = FlipAveragedDedicated(network, torch.tensor([[True, False]]))
    x = torch.rand(3, 1, 16, 24)  # not square: a transpose would not fit
    y = averaged(x)
    torch.testing.assert_close(y[:, 0], flipped_back_mean(network, x)[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(y[:, 1], network(x)[:, 1], rtol=0, atol=0)
    assert not torch.allclose(y[:, 0], network(x)[:, 0], atol=1e-4)  # the views do differ
    checked = flip_mean(network, x, network(x))  # what training.flip_ensemble scores
    torch.testing.assert_close(y[:, 0], checked[:, 0], rtol=0, atol=0)


@torch.no_grad()
def test_an_any_to_any_model_averages_per_source_set_and_skips_batches_without_an_adopted_one() -> None:
    torch.manual_seed(0)
    counting = CountingNetwork(create_model("unified", 4, 4, features=4, depth=2).eval())
    active = torch.zeros(16, 4, dtype=torch.bool)
    active[1, 2] = True  # T1 alone → T2 (availability code 1)
    averaged = FlipAveragedAnyToAny(counting, active)
    present = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0]])
    x = torch.rand(2, 4, 16, 16) * present[:, :, None, None]
    y = averaged(x, present)
    assert counting.calls == 4  # the plain view and the three flipped ones
    mean = flipped_back_mean(counting.network, x, present)
    plain = counting.network(x, present)
    torch.testing.assert_close(y[0, 2], mean[0, 2], rtol=0, atol=1e-6)
    torch.testing.assert_close(y[0, [0, 1, 3]], plain[0, [0, 1, 3]], rtol=0, atol=0)
    torch.testing.assert_close(y[1], plain[1], rtol=0, atol=0)  # T1c,T2 is not adopted
    counting.calls = 0
    averaged(x[1:], present[1:])
    assert counting.calls == 1


def test_averaged_networks_keep_their_average_through_the_export(tmp_path: Path) -> None:
    """The exported file (scripted, frozen, reloaded) averages exactly the rows its flag table adopts,
    on inputs other than the export's own example."""
    torch.manual_seed(0)
    network = create_model("unified", 4, 4, features=4, depth=2).eval()
    active = torch.zeros(16, 4, dtype=torch.bool)
    active[1, 2] = True  # T1 alone → T2
    present = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0]])
    example = (torch.rand(2, 4, 16, 16) * present[:, :, None, None], present)
    unified = export_torchscript(FlipAveragedAnyToAny(network, active), example, tmp_path / "u.pt")
    x = torch.rand(2, 4, 24, 16) * present[:, :, None, None]
    with torch.no_grad():
        y, mean, plain = unified(x, present), flipped_back_mean(network, x, present), network(x, present)
    assert_close_to_scale(y[0, 2], mean[0, 2])
    assert_close_to_scale(y[0, [0, 1, 3]], plain[0, [0, 1, 3]])
    assert_close_to_scale(y[1], plain[1])
    assert not torch.allclose(mean[0, 2], plain[0, 2], atol=1e-4)  # the average is not the plain view

    dedicated_network = create_model("synnet", 2, 2, features=4, depth=2).eval()
    dedicated = export_torchscript(
        FlipAveragedDedicated(dedicated_network, torch.tensor([[False, True]])), torch.rand(2, 2, 16, 16),
        tmp_path / "d.pt",
    )
    x = torch.rand(3, 2, 16, 24)
    with torch.no_grad():
        y, mean, plain = dedicated(x), flipped_back_mean(dedicated_network, x), dedicated_network(x)
    assert_close_to_scale(y[:, 1], mean[:, 1])
    assert_close_to_scale(y[:, 0], plain[:, 0])
    assert not torch.allclose(mean[:, 1], plain[:, 1], atol=1e-4)


def test_the_flags_sit_in_the_row_the_model_file_computes_for_the_sources() -> None:
    manifest = ModelManifest.model_construct(src=list(Modality), dst=list(Modality), any_to_any=True)
    flags = flag_table(manifest, {((Modality.T1, Modality.T2), Modality.FLAIR)})
    assert flags.shape == (16, 4) and flags.sum() == 1 and bool(flags[0b0101, 3])


@pytest.mark.slow
def test_flip_ensemble_rebuilds_the_model_with_what_its_training_cases_support_and_records_every_check(
    tmp_path: Path, write_cases: Callable[..., Path]
) -> None:
    data = write_cases(tmp_path / "data", n_cases=6)
    store = tmp_path / "store"
    folder = fit_unified(data, store, tmp_path / "run")
    plain_copy = tmp_path / "plain"
    shutil.copytree(folder, plain_copy / UNIFIED_NAME)
    (folder / EVALUATION_FILE).write_text("{}")  # stale once the outputs change: must go

    assert main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(store)]) == 0

    manifest = ModelManifest.load(folder)
    record = manifest.flip_ensemble
    assert record is not None and not (folder / EVALUATION_FILE).exists()
    assert set(record.check_cases) == set(manifest.training_data.train_cases)  # never a held-out case
    assert len(record.configurations) == 28 and record.flips == ["none", "left-right", "up-down", "both"]
    averaged, plain = load_model(folder, "cpu"), load_model(plain_copy / UNIFIED_NAME, "cpu")  # digests verified
    case = next(c for c in find_cases(data) if c.case_id in record.check_cases)
    images = load_case(case, list(Modality), load_seg=False).images
    for check in record.configurations:
        given = {m: images[m] for m in check.sources}
        mask = brain_mask(list(given.values()))
        channel = manifest.dst.index(check.target)
        before = synthesize(plain.forward, given, mask, manifest)[0][channel]
        after = synthesize(averaged.forward, given, mask, manifest)[0][channel]
        assert np.array_equal(after, before) != check.adopted, (check.sources, check.target)
    assert main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(store)]) == 2  # never twice
    assert calibrate_main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(store)]) == 2


@pytest.mark.slow
def test_a_model_trained_without_flips_is_refused(tmp_path: Path, write_cases: Callable[..., Path]) -> None:
    data = write_cases(tmp_path / "data", n_cases=3)
    folder = fit_unified(data, tmp_path / "store", tmp_path / "run")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["training"]["augment"] = False  # training is descriptive: the digest still holds
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(tmp_path / "store")]) == 2
    assert ModelManifest.load(folder).flip_ensemble is None
