"""What a trained model is worth: classification metrics (``metrics``), the statistics with grouped bootstrap,
Wilson intervals, thresholds, calibration and abstain (``statistics``), the model's forward pass over a dataset
(``predict``), the clinical evaluation of a run stored as ``clinical.json`` (``run_evaluation``) and read back for
live operating points (``stored_result``), and Grad-CAM explanations (``explain``).
"""
