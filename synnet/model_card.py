"""A model's card beside its weights: ``<store>/<name>/README.md`` and its figure ``card.png``.

Written by ``python -m training.cards`` from the manifest and ``evaluation.json``; read here for
``GET /models/{name}``. Like ``evaluation.json`` it is not sealed by the model's digest: a card is
regenerated when the scores or the routing change, the weights never.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CARD_FILE = "README.md"
FIGURE_FILE = "card.png"


@dataclass(frozen=True)
class ModelCard:
    """The card's markdown and the path of its figure (None: the folder has none)."""

    markdown: str
    figure: Path | None

    @classmethod
    def read(cls, folder: str | Path) -> ModelCard | None:
        """The card in ``folder``, or None when it has none."""
        folder = Path(folder)
        card = folder / CARD_FILE
        if not card.is_file():
            return None
        figure = folder / FIGURE_FILE
        return cls(card.read_text(encoding="utf-8"), figure if figure.is_file() else None)
