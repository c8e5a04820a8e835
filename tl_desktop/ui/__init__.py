"""The Qt window: one module or small package per step (``data``, ``train``, ``evaluate``, ``transfer``, views for
model, export and predict), shared widgets in ``widgets``. Widgets only: long work runs in ``tl_desktop.workers``.
"""
