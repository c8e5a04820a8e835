"""What a trained model is worth: classification metrics (``metrics``), the statistics with grouped bootstrap,
Wilson intervals, thresholds, calibration and abstain (``statistics``), the model's forward pass over a dataset
(``predict``), the run's one evaluation artefact per checkpoint, ``clinical.json`` (``run_evaluation``; current while the
checkpoint's SHA-256 is the evaluated one: ``current``), from whose stored predictions every figure is computed
(``stored_result``), and Grad-CAM explanations (``explain``).
"""
