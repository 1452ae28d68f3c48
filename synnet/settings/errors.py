"""Bad ``SYNNET_*`` values as one line each, naming the variable, for people rather than tracebacks.

pydantic's own message names the field by its place in the model; an operator set an environment
variable, so each line names that (``SYNNET_PORT: ...``) and, unless the setting is a secret, the
value it got. The service prints these lines and exits 2; the Python API and the ``synnet``
command raise them as a :class:`SettingsError`, which their callers already report.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from synnet.errors import SynnetError

PREFIX = "SYNNET_"


class SettingsError(SynnetError):
    """One or more ``SYNNET_*`` environment variables hold values the product cannot use."""

    code = "bad_setting"


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``max_batch_size`` → ``SYNNET_MAX_BATCH_SIZE``."""
    return f"{PREFIX}{field.upper()}"


def describe(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per error of ``exc``, raised while reading ``model``, naming the variable it came from."""
    lines: list[str] = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else None
        if field is None:  # a rule across settings: its message names them
            line = message
        else:
            info = model.model_fields.get(field)
            secret = bool(info and isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret"))
            shown = "" if secret or "input" not in error else f" (got {error['input']!r})"
            line = f"{env_name(field)}: {message}{shown}"
        if line not in lines:  # a union reports each of its branches at the same place
            lines.append(line)
    return lines


def settings_error(exc: ValidationError, model: type[BaseModel]) -> SettingsError:
    """``exc`` as a :class:`SettingsError` whose message is the lines of :func:`describe`."""
    return SettingsError("; ".join(describe(exc, model)))
