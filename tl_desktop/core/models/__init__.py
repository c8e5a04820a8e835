"""Pretrained backbones and everything derived from the model alone: the catalog and offline ImageNet weights
(``catalog``), the model's own preprocessing as torch-free numpy (``preprocessing``), ONNX helpers for sessions
(``onnx_tools``), frozen-backbone embeddings with a disk cache (``embeddings``) and a run folder turned back into
its model (``run_model``).
"""
