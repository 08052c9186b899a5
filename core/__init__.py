"""Mechscope core: a small, Qt-free library to open a model, capture activations,
ablate units and evaluate on a dataset. Usable from a notebook; the GUI is one client.

Nothing here imports Qt or pyqtgraph, and nothing imports torch at module import time:
framework code lives in ``core.adapters`` and is imported on first use, so the window
can paint before torch has loaded (issue #4).
"""
