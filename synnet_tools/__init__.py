"""Tools around the model store and the data that are neither training nor serving.

* :mod:`synnet_tools.gpu_pack`: 8-bit model-space packing of BraTS cases for a remote GPU machine.
* :mod:`synnet_tools.figures`: scripts that draw the figures committed under ``docs/``.
"""
