"""The documentation and the schema say what the code does: every error code is in the table of
``docs/service.md``, and every route behind the API key documents its 401 in OpenAPI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from error_table import documented_codes
from fastapi.routing import APIRoute

from service.app import create_app
from service.auth import require_api_key
from service.errors import STATUS_BY_CODE
from service.routes import health, metrics, models, page, synthesize
from synnet.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ROUTE_MODULES = (health, metrics, models, page, synthesize)
# `code="x"`, `code = "x"` (a keyword or a class attribute), `error_body("x", ...)`, and the
# HTTP-status mapping `code = {404: "x", ...}.get(status, "y")`.
_RAISED = re.compile(r'\bcode\s*=\s*"([a-z_]+)"|error_body\(\s*"([a-z_]+)"')
_MAPPED = re.compile(r"\bcode\s*=\s*(\{[^}]*\}\.get\([^)]*\))")
_BASE_DEFAULT = re.compile(r'\bcode:\s*str\s*=\s*"([a-z_]+)"')


def raised_codes() -> dict[str, str]:
    """Every error code written in synnet/ and service/, with the first file that names it."""
    codes: dict[str, str] = {}
    for path in sorted([*(REPO / "synnet").rglob("*.py"), *(REPO / "service").rglob("*.py")]):
        text = path.read_text()
        found = [a or b for a, b in _RAISED.findall(text)]
        for mapping in _MAPPED.findall(text):
            found += re.findall(r'"([a-z_]+)"', mapping)
        found += _BASE_DEFAULT.findall(text)  # SynnetError raised without a code sends its default
        for code in found:
            codes.setdefault(code, str(path.relative_to(REPO)))
    for code in STATUS_BY_CODE:
        codes.setdefault(code, "service/errors.py")
    return codes


def test_the_scan_finds_codes_of_every_kind() -> None:
    codes = raised_codes()
    for code in ("duplicate_modality", "corrupt_file", "not_found", "http_error", "internal_error", "invalid_input"):
        assert code in codes


def test_every_error_code_is_in_the_table() -> None:
    documented = documented_codes()
    missing = {code: where for code, where in raised_codes().items() if code not in documented}
    assert not missing, f"error codes raised but missing from the table of docs/service.md: {missing}"


def test_the_table_gives_each_code_its_status() -> None:
    documented = documented_codes()
    for code, status in STATUS_BY_CODE.items():
        assert documented[code] == str(status), code


def _protected(route: APIRoute) -> bool:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is require_api_key:
            return True
        stack.extend(dependant.dependencies)
    return False


_APP = create_app(Settings(model_store=Path("no_store"), device="cpu"))
_ROUTES = [route for module in ROUTE_MODULES for route in module.router.routes if isinstance(route, APIRoute)]
_PROTECTED = sorted(route.path for route in _ROUTES if _protected(route))


def test_the_protected_routes_are_found() -> None:
    assert {"/synthesize", "/models", "/metrics"} <= set(_PROTECTED)



@pytest.mark.parametrize("path", _PROTECTED)
def test_protected_routes_document_their_401(path: str) -> None:
    operations = _APP.openapi()["paths"][path].values()
    for operation in operations:
        assert "401" in operation["responses"], (path, sorted(operation["responses"]))
        schema = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
