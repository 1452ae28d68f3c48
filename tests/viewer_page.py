"""Driving the viewer's configuration pickers, shared by tests/browser and tests/browser/screenshot.py."""

from __future__ import annotations

from collections.abc import Sequence

from playwright.sync_api import Page, expect

MODALITIES = ("T1", "T1c", "T2", "FLAIR")


def open_viewer(page: Page, url: str, src: Sequence[str] = ("T1",), dst: Sequence[str] = ("T2",)) -> None:
    """Load the page, wait for GET /models, and choose ``src`` → ``dst``."""
    page.goto(url)
    expect(page.locator("#sources input[value=T1]")).to_be_enabled()
    choose(page, src, dst)


def choose(page: Page, src: Sequence[str], dst: Sequence[str]) -> None:
    """Tick exactly ``src`` as sources and ``dst`` as targets, in the order a user would.

    Sources first (the wanted ones, then untick the rest), so that each target is offered when
    it is ticked; a checkbox the page has disabled fails the call, as it would stop a user.
    """
    for modality in src:
        page.check(f"#sources input[value={modality}]")
    for modality in set(MODALITIES) - set(src):
        page.uncheck(f"#sources input[value={modality}]")
    for modality in MODALITIES:
        page.set_checked(f"#targets input[value={modality}]", modality in dst)
