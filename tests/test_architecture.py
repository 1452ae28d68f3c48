"""The import rules of docs/ARCHITECTURE.md, enforced: ``lint-imports`` with pyproject's contracts.

synnet is the core that the service, training and the CLI stand on; it imports none of them. The service and
training never import each other (the service's image carries no training code; evaluation runs where the service
is not installed), nor the CLI, which may start the service but never imports training. The lab (experiments/)
may import the product; the product, its benchmarks and its tests never import the lab.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# product files outside the packages lint-imports checks: scripts and tests that must run without the lab
PRODUCT_SCRIPTS = ("bench", "docker", "tests")


def test_import_contracts_are_kept() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint_imports, "import-linter is not installed (pip install -e '.[dev]')"
    done = subprocess.run([lint_imports, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 kept, 0 broken" in done.stdout


def top_level_imports(path: Path) -> set[str]:
    """The first name of every absolute import in ``path`` (function-level ones included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_no_benchmark_or_product_test_imports_the_lab() -> None:
    lab_tests = REPO / "tests" / "experiments"
    files = [p for folder in PRODUCT_SCRIPTS for p in (REPO / folder).rglob("*.py") if lab_tests not in p.parents]
    assert len(files) > 50
    offenders = [str(p.relative_to(REPO)) for p in files if "experiments" in top_level_imports(p)]
    assert offenders == []


def test_an_import_of_the_lab_is_seen(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    from experiments.paper.plan import plan\n")
    (tmp_path / "b.py").write_text("import experiments.gpu_pack as pack\nimport experimental\n")
    assert "experiments" in top_level_imports(tmp_path / "a.py")
    assert top_level_imports(tmp_path / "b.py") == {"experiments", "experimental"}
