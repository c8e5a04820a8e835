"""Widgets shared by several steps: plots, the confusion matrix, thumbnail grids, error dialogs, common helpers."""
