"""torch.distributed for runs launched by ``torchrun``: NCCL on GPUs, gloo on CPUs.

A single process (no ``WORLD_SIZE`` in the environment) gets a ``Dist`` with ``world == 1`` and every
helper here becomes a no-op, so the engine behaves exactly as without this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_type: str = "cpu") -> Dist:
    """Join the process group that torchrun described in the environment (once per process)."""
    if not launched():
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" and dist.is_nccl_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def current() -> Dist:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Dist()


def barrier() -> None:
    if current().enabled:
        torch.distributed.barrier()


def sum_all(*values: float) -> list[float]:
    """Element-wise sum of scalars over all ranks."""
    if not current().enabled:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not current().enabled:
        return [obj]
    out: list[Any] = [None] * current().world
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not current().enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def shard(order: torch.Tensor, global_batch: int, drop_last: bool) -> list[torch.Tensor]:
    """This rank's part of each global batch of ``order``, so N processes see what one process would.

    Global batch ``i`` is ``order[i*B:(i+1)*B]``; rank ``r`` of ``W`` takes its ``r``-th contiguous slice. A
    last batch with fewer items than ranks is dropped (on every rank alike). DDP averages the ranks' gradients
    with equal weight, so a last batch that does not divide evenly is weighted slightly differently than in
    one process.
    """
    d = current()
    n = len(order)
    steps = n // global_batch if drop_last and n > global_batch else -(-n // global_batch)
    parts = []
    for step in range(steps):
        batch = order[step * global_batch:(step + 1) * global_batch]
        if len(batch) < d.world:  # a rank would get nothing: its NaN loss would stall the others in all-reduce
            continue
        parts.append(torch.tensor_split(batch, d.world)[d.rank])
    return parts


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
