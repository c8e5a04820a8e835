"""Leaving the app: the verified ONNX export of a run with fp16/int8 variants (``onnx_export``, with ``verify``
and ``variants``), the one export front ends call, after the clinical evaluation (``policy.export_run``), and the
torch-free predictor that runs an exported file with nothing else (``predictor``).
"""
