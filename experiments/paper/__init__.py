"""Reproduce the SynNet paper's Tables 3 and 4, and retrain the bundled models from their recipes.

``python -m experiments.paper tables`` is the one command behind the tables: it trains every comparison run
(several at once: on a GPU the small 64-channel networks leave it idle between kernels when trained one at a time),
scores the models on their held-out cases and writes ``experiments/results/paper.md``. The other verbs are its
steps, and more: ``train`` (the comparison runs, the bundled models, or both), ``export`` (checkpoints brought back
from a remote GPU into their stores) and ``report`` (the page from the evaluation summary). All are resumable:
``train`` skips runs whose model is already exported and resumes runs that have a checkpoint; the evaluation keeps
the rows it already wrote.

Modules, each importing only those listed before it:

* :mod:`~experiments.paper.plan`: the planned runs, each a recipe of ``recipes/`` with its overrides.
* :mod:`~experiments.paper.train`: the ``training.fit`` command of a run, several run at once.
* :mod:`~experiments.paper.export`: checkpoints trained elsewhere into the stores of their runs.
* :mod:`~experiments.paper.report`: the page, from the evaluation summary, the compute record and ``published.csv``.
* ``__main__``: the command line.
"""
