"""The import rules of docs/ARCHITECTURE.md, enforced: ``lint-imports`` with pyproject's contracts.

synnet is the core that the service, training, the tools and the CLI stand on; it imports none
of them. The service never imports training (its image carries no training code), and training
never imports the service (evaluation runs where the service is not installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint_imports, "import-linter is not installed (pip install -e '.[dev]')"
    done = subprocess.run([lint_imports, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout
