"""The per-intensity lookup-table baseline and its comparison with an any-to-any model on every configuration.

* :mod:`~experiments.lookup_table.table`: the table (the mean target per joint source intensity) and its fit.
* :mod:`~experiments.lookup_table.compare`: ``python -m experiments.lookup_table``: the model's configuration rows
  (training.evaluate --all-configurations) beside the table's, learnt on the model's own training cases.
"""
