"""Helpers for spawning small gloo process groups in tests (module-level so spawn can pickle them)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist


def init_gloo(rank: int, world: int, rendezvous: Path) -> None:
    os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"] = str(rank), str(world), str(rank)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)


def spawn(fn, world: int, *args) -> None:
    torch.multiprocessing.spawn(fn, args=(world, *args), nprocs=world, join=True)
