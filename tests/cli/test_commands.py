"""The ``synnet`` command itself: the console script, its subcommands, and bad input as one line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synnet_cli.__main__ import main

REPO = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("synnet", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(SCRIPT is None, reason="the console script is installed by pip install -e .")
def test_the_console_script_leads_everywhere() -> None:
    done = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("synthesize", "fill", "evaluate", "serve", "models"):
        assert command in done.stdout
    served = subprocess.run([SCRIPT, "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert served.returncode == 0 and "python -m service" in served.stdout and "--model-store" in served.stdout


def test_models_lists_the_bundled_store(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    bundled = sorted((REPO / "recipes" / "bundled").glob("*.toml"))  # one recipe per bundled model
    assert f"{len(bundled)} model(s)" in out and "synnet_t1-t1c-t2_to_flair  T1,T1c,T2->FLAIR" in out
    assert "synnet_unified" in out


def test_bad_input_is_one_line_and_status_2(tmp_path: Path, capsys) -> None:
    assert main(["synthesize", "--dst", "T2", "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "synnet synthesize: missing_part: no source given; pass e.g. --t1 a_t1.nii.gz (one option per modality)"
    )
    assert main(["fill", str(tmp_path / "absent"), "-o", str(tmp_path)]) == 2
    assert "no_cases: dataset root" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synthesize", "--t1", "a.nii.gz", "--t1n", "b.nii.gz", "--dst", "T2"])
    assert "T1 given twice (the last time as --t1n)" in capsys.readouterr().err
