"""Atomic, resumable training checkpoints (any trainer).

A checkpoint is a directory ``<output_dir>/checkpoints/step-00000100/`` holding one ``state.pt`` with
everything an exact resume needs: model and optimiser state, scheduler, gradient scaler, the RNG states of
Python/NumPy/torch (CPU and CUDA), the data position and whatever else the trainer adds. It is written into a
temporary directory and moved into place with ``os.replace``; only then is the ``latest`` pointer (a small
text file, itself replaced atomically) updated. A crash at any moment therefore leaves the previous
checkpoint and pointer intact.

Usage::

    ckpt = Checkpointer(output_dir, keep=2)
    ckpt.save(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": capture_rng_state()})
    state = ckpt.load_latest()     # None when there is nothing to resume
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spart.atomic import replace_directory, write_text_atomic

STATE_FILE = "state.pt"
LATEST_FILE = "latest"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def capture_rng_state() -> dict[str, Any]:
    """Every random generator a training step draws from (dropout, sampling, shuffling)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back exactly as :func:`capture_rng_state` found them."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer:
    """Saves and finds checkpoints under ``<output_dir>/checkpoints``, keeping the newest ``keep``.

    :param output_dir: the run directory.
    :param keep: number of most recent checkpoints to keep (older ones are deleted after a successful save).
    """

    def __init__(self, output_dir: str | os.PathLike, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.root = Path(output_dir) / "checkpoints"
        self.keep = keep

    def path_for(self, step: int) -> Path:
        return self.root / f"step-{step:08d}"

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write ``state`` (anything ``torch.save`` takes) as the checkpoint of ``step``, atomically."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path_for(step)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=self.root))
        try:
            with open(staging / STATE_FILE, "wb") as handle:
                torch.save({"step": step, **state}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            # Re-saving the same step (e.g. final == periodic) replaces it whole, never leaving it missing.
            replace_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        write_text_atomic(self.root / LATEST_FILE, target.name + "\n")
        self._prune()
        return target

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, ascending (half-written temp dirs are ignored)."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / STATE_FILE).is_file():
                found.append(int(match.group(1)))
        return sorted(found)

    def latest_path(self) -> Path | None:
        """The newest complete checkpoint (the ``latest`` pointer, or the highest step if it is missing)."""
        pointer = self.root / LATEST_FILE
        if pointer.is_file():
            candidate = self.root / pointer.read_text(encoding="utf-8").strip()
            if (candidate / STATE_FILE).is_file():
                return candidate
        steps = self.steps()
        return self.path_for(steps[-1]) if steps else None

    def load(self, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The state saved in checkpoint directory ``path``."""
        file = Path(path) / STATE_FILE
        if not file.is_file():
            raise FileNotFoundError(f"no checkpoint state at {file}")
        try:
            return torch.load(file, map_location=map_location, weights_only=False)
        except Exception as error:  # a truncated or foreign file
            raise ValueError(f"corrupt checkpoint {file}: {error}") from error

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        path = self.latest_path()
        return None if path is None else self.load(path, map_location)

    def _prune(self) -> None:
        for step in self.steps()[: -self.keep]:
            shutil.rmtree(self.path_for(step), ignore_errors=True)
        for child in self.root.iterdir():  # staging dirs left by a crashed save
            if child.name.startswith(".step-") and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
