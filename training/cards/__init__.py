"""Model cards and the results page, generated from what the model store records.

``python -m training.cards --store model_store`` writes ``<store>/<name>/README.md`` for every model
(:mod:`~training.cards.card`) and ``docs/results.md`` (:mod:`~training.cards.results_page`) from each
model's ``manifest.json`` and ``evaluation.json`` and the routing rule; with ``--data`` it also draws
each card's figure, ``card.png``, from the BraTS 2023 case (:mod:`~training.cards.figure`) and the
blurred-truth reference the page quotes (:mod:`~training.cards.reference`). The text never needs the
data, so a fresh clone can check that what is committed is what the generator makes.
"""
