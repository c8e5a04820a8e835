"""The Evaluate step: overview, threshold and calibration panels, the image gallery and heatmaps."""
