"""The error table of ``docs/service.md``, read as data: what the tests hold the service's answers to."""

from __future__ import annotations

import re
from pathlib import Path

SERVICE_DOC = Path(__file__).resolve().parents[1] / "docs" / "service.md"


def documented_codes() -> dict[str, str]:
    """The codes of the error table in docs/service.md, with the status column of their row (e.g. "422", "—")."""
    text = SERVICE_DOC.read_text()
    section = text.split("### Errors", 1)[1].split("\n### ", 1)[0]
    codes = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            for code in re.findall(r"`([a-z_]+)`", cells[1]):
                codes[code] = cells[0]
    return codes
