"""Single-process and ``torchrun`` runs behind one small context object.

``torchrun --nproc_per_node=N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; when they are
present the process group is started (NCCL on CUDA, gloo on CPU) and the loop wraps the model in
DistributedDataParallel. Without them every collective here is a no-op, so the training code reads
the same in both cases. Only rank 0 (``is_main``) logs, writes checkpoints and exports.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from synnet.errors import SynnetError

logger = logging.getLogger(__name__)


class DistributedError(SynnetError):
    code = "distributed_error"


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the run: rank, number of processes, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Average a tensor over the processes (identity in a single process)."""
        if not self.distributed:
            return value
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value / self.world_size


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistributedError("--device cuda was requested but no CUDA device is available", code="no_cuda")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(requested_device: str) -> DistContext:
    """Start the process group when launched by torchrun; otherwise a one-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        logger.info("process group: %s, rank %d of %d on %s", backend, rank, world_size, device)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_buffers(context: DistContext, module: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them at the start of each forward, so after the last forward of an epoch each
    replica holds statistics updated from its own batch only; syncing at the epoch end makes the
    checkpoints, validation and final weights of all ranks identical.
    """
    if context.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def state_digest(module: nn.Module) -> str:
    """sha256 over the names and bytes of every parameter and buffer, to compare replicas."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_digests(context: DistContext, module: nn.Module) -> list[str]:
    """Every rank's :func:`state_digest`, in rank order; raises when the replicas differ.

    DistributedDataParallel keeps replicas identical by construction (same initial broadcast,
    averaged gradients, buffers broadcast from rank 0); checking it at the end costs one small
    collective and turns a silent divergence into an error.
    """
    mine = state_digest(module)
    if not context.distributed:
        return [mine]
    digests: list[str] = [""] * context.world_size
    dist.all_gather_object(digests, mine)
    if len(set(digests)) != 1:
        raise DistributedError(f"model replicas differ between ranks: {[d[:12] for d in digests]}")
    return digests
