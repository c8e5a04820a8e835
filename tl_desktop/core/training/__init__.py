"""Fine-tuning: starting, resuming and continuing a run (``run``), the strategies and their parameters
(``strategies``), the compute device (``devices``), one fit of a run config (``fit``), the epoch loop with AMP,
out-of-memory retry and checkpoints (``loop``) and torchrun/DDP helpers (``distributed``).
"""
