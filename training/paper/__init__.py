"""Reproduce the SynNet paper's two experiment sets and train the bundled models.

``python -m training.paper train`` runs every planned ``training.fit`` (several at once: on a GPU
the small 64-channel networks leave it idle between kernels when trained one at a time), and
``python -m training.paper report`` evaluates the exported models on the held-out cases and writes
``docs/results/paper.md``. Both are resumable: ``train`` skips runs whose model is already exported and
resumes runs that have a checkpoint; ``report`` reuses evaluation CSVs already written.

Modules, each importing only those listed before it:

* :mod:`~training.paper.plan`: the planned runs, the paper's published numbers, the stores.
* :mod:`~training.paper.train`: the ``training.fit`` command of a run, several run at once.
* :mod:`~training.paper.export`: checkpoints brought back from a remote GPU into their stores.
* :mod:`~training.paper.report`: ``docs/results/paper.md`` (lab notes) from the evaluation summaries.
* ``__main__``: the command line, verbs ``train``, ``export`` and ``report``.
"""
