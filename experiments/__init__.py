"""The lab: the research that made the bundled models, beside the product and not inside it.

It may import the product (synnet, training); nothing in the product imports it, and it is not installed by
``pip install -e .``: run it from the repository root (``python -m experiments.paper ...``). experiments/README.md
indexes its commands and notes.
"""
