"""The headless engine: no Qt, no pyqtgraph; the window, the CLI and server jobs all drive it.

Subpackages, from the bottom layer up (import-linter enforces the order, see pyproject.toml):
``data`` (decode, scan, split, datasets) < ``models`` (catalog, weights, preprocessing, embeddings) <
``evaluation`` (metrics, statistics, the clinical evaluation of a run, explanations) < ``training`` and
``export`` < ``insight`` and ``project``. Flat base modules below them all: ``events`` (typed events,
CancelToken), ``errors`` (typed errors), ``runs`` (the run-folder schema), ``fsutil`` (atomic writes).
"""
