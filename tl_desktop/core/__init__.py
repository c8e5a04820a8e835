"""Headless engine of tl-desktop: data, models, training, evaluation, export and inference.

Nothing in this package imports Qt or pyqtgraph (a test enforces it), so the same code runs in the GUI,
the command line, a server and the tests.
"""
