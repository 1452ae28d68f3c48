"""The pieces of ``python -m training.fit``: settings, data preparation, the loop, multi-process glue.

``training/fit.py`` is the entry point; it only parses the command line and calls
:func:`training.fitting.run.run`.
"""
