"""Images in, labelled samples out: decoding every format to 8-bit RGB (``decode``: DICOM, 16-bit, CMYK, EXIF),
the folder/CSV scan with its report and per-file cache (``scan``, ``scancache``), leakage-free grouped splits
(``split``), which files are the same image by bytes or decoded pixels (``identity``, ``pixelhash``) and the
PyTorch datasets over scanned files (``datasets``). Knows nothing of models or training.
"""
