"""Distributed-training helpers shared by the trainers: torchrun init, all-gather with gradient, gradient
averaging and rank-aware logging.

Run a trainer on N processes with ``torchrun --nproc_per_node N -m spart train ...``; a plain ``python``
start is a world of one and every helper here degrades to a no-op.

Gradient bookkeeping (why the pieces fit together)
--------------------------------------------------
Each rank holds ``b = B / W`` queries and gathers the passage (and query) embeddings of all ranks with
:func:`all_gather_with_grad`, so every query is contrasted with the global batch of candidates. Rank ``r``
computes ``loss_r`` = mean over its ``b`` queries. The loss we want to minimise is the single-process one,
``L = mean over all B queries = (1/W) * sum_r loss_r``.

Embeddings ``e_s`` computed on rank ``s`` influence *every* rank's loss. Backward through the gather
therefore all-reduces (sums) the incoming gradient and hands rank ``s`` its slice, giving
``sum_r d loss_r / d e_s``; back-propagating that into the encoder gives rank ``s`` the gradient
``sum_r d loss_r / d theta`` restricted to its own encoder calls. Averaging those over ranks (what DDP does, and
what :func:`average_gradients` does) yields ``(1/W) sum_s sum_r d loss_r/d theta|_s = dL/d theta`` -- exactly
the single-process gradient. The two classic mistakes are (a) a gather whose backward returns only the local
slice *without* the all-reduce (gradients from other ranks' losses are lost; DPR's original gathers without
gradient for this reason only trains through local queries), and (b) summing instead of averaging after the
all-reduce, which scales the gradient by ``W`` (some SimCLR ports then divide the loss by ``W`` to compensate).

We average gradients explicitly instead of wrapping the model in ``DistributedDataParallel``: GradCache runs
several forward/backward passes per step over different towers, which fights DDP's reducer hooks
(``no_sync`` juggling, unused-parameter detection for separate towers). One bucketed all-reduce per step after
backward is the same arithmetic as DDP's averaging, minus its compute/communication overlap.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    :param rank: global rank (0 .. world_size-1).
    :param world_size: number of processes.
    :param local_rank: rank on this machine (selects the GPU).
    :param device: the device this rank trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def init_distributed(device: str = "auto", backend: str | None = None, timeout_s: float = 1800.0) -> DistributedContext:
    """Initialise the process group from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).

    A process group is initialised when ``WORLD_SIZE`` > 1, and also for a single process launched by torchrun
    (``TORCHELASTIC_RUN_ID`` set), so that ``torchrun --nproc_per_node 1`` exercises the same backend set-up as a
    multi-GPU job; a plain ``python`` run with ``WORLD_SIZE`` unset or 1 initialises nothing. Backend: NCCL on
    CUDA, gloo on CPU.
    ``timeout_s`` bounds every collective, so a dead rank ends the job instead of hanging it.

    :param device: ``auto``, ``cpu`` or ``cuda``; on CUDA each rank takes ``cuda:<local_rank>``.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        dev = torch.device("cuda", local_rank) if device == "cuda" else torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    launched_by_torchrun = bool(os.environ.get("TORCHELASTIC_RUN_ID"))
    if (world > 1 or launched_by_torchrun) and not dist.is_initialized():
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=_dt.timedelta(seconds=timeout_s))
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistributedContext(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _world() -> int:
    return rank_and_world()[1]


class CollectiveError(RuntimeError):
    """A collective operation failed or timed out: another rank most likely died or hangs."""


def guarded(operation: str, fn, *args, **kwargs):
    """Run a collective; turn a backend error (peer gone, timeout) into a :class:`CollectiveError`.

    Every collective is bounded by the process group's timeout (``init_distributed(timeout_s=...)``); this
    names the operation, so a dead rank ends the job with a clear error instead of a hang (ART's NCCL job
    waits 30 minutes there, DevSinghSachan/art issue #10).
    """
    try:
        return fn(*args, **kwargs)
    except RuntimeError as error:  # gloo/NCCL raise RuntimeError subclasses (DistBackendError...)
        rank, world = rank_and_world()
        raise CollectiveError(
            f"rank {rank}/{world}: collective '{operation}' failed ({error}); another rank has probably exited "
            "or stopped responding (the job is stopped instead of waiting forever)"
        ) from error


def gather_objects(operation: str, obj: Any) -> list:
    """Every rank's picklable ``obj`` in rank order (``[obj]`` in a world of one); a guarded collective."""
    if _world() == 1:
        return [obj]
    every: list = [None] * dist.get_world_size()
    guarded(operation, dist.all_gather_object, every, obj)
    return every


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0; gradients flow back to the rank that produced each row.

    Ranks may hold different numbers of rows (e.g. some examples lack a hard negative): sizes are exchanged
    first, tensors are padded to the largest, gathered, then unpadded.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
        sizes = [torch.zeros_like(size) for _ in range(world)]
        dist.all_gather(sizes, size)
        sizes_list = [int(s.item()) for s in sizes]
        longest = max(sizes_list)
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        gathered = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(gathered, padded.contiguous())
        ctx.sizes = sizes_list
        ctx.rank = rank
        return torch.cat([g[:n] for g, n in zip(gathered, sizes_list)], dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        # Every rank's loss depends on this rank's rows: sum the gradients from all ranks (see module doc).
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' ``tensor`` concatenated along dim 0 in rank order, differentiable (identity at world 1)."""
    if _world() == 1:
        return tensor
    return _AllGatherWithGrad.apply(tensor)


def gathered_offset(local_count: int) -> int:
    """Row offset of this rank's rows in :func:`all_gather_with_grad`'s output (0 at world 1)."""
    if _world() == 1:
        return 0
    counts: list = [None] * dist.get_world_size()
    dist.all_gather_object(counts, int(local_count))
    return int(sum(counts[: dist.get_rank()]))


def average_gradients(parameters, world_size: int | None = None) -> None:
    """Average ``.grad`` over ranks in place (DDP's arithmetic), flattening into one buffer per dtype/device.

    Parameters without a gradient on this rank contribute zeros, so every rank issues the same collectives.
    """
    world = world_size or _world()
    if world == 1:
        return
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    groups: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n


def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank start from rank ``src``'s weights (as DDP does at construction)."""
    if _world() == 1:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=src)


def all_reduce_mean(value: float, device: torch.device | None = None) -> float:
    """Mean of a Python number over ranks (for logging a global loss)."""
    if _world() == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device or torch.device("cpu"))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / dist.get_world_size()


def barrier() -> None:
    if _world() > 1:
        dist.barrier()


class _RankFilter(logging.Filter):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = self.rank
        # Non-main ranks only report warnings and errors, so logs are not duplicated W times.
        return self.rank == 0 or record.levelno >= logging.WARNING


def setup_logging(ctx: DistributedContext, level: int = logging.INFO) -> None:
    """Configure the root ``spart`` logger with the rank in every line and quiet non-main ranks."""
    root = logging.getLogger("spart")
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_spart_rank_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._spart_rank_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s [rank %(rank)s] %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_RankFilter(ctx.rank))
    root.addHandler(handler)
    root.propagate = False
