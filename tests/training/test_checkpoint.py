"""Atomic checkpoints and RNG capture."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from spart.training.checkpoint import Checkpointer, capture_rng_state, restore_rng_state


def test_save_load_latest_and_prune(tmp_path):
    ckpt = Checkpointer(tmp_path, keep=2)
    assert ckpt.load_latest() is None
    for step in (1, 2, 3):
        ckpt.save(step, {"w": torch.full((2,), float(step))})
    assert ckpt.steps() == [2, 3]
    state = ckpt.load_latest()
    assert state["step"] == 3 and torch.equal(state["w"], torch.full((2,), 3.0))


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    ckpt = Checkpointer(tmp_path, keep=3)
    ckpt.save(1, {"w": torch.ones(1)})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ckpt.save(2, {"w": Unpicklable()})
    assert ckpt.steps() == [1]
    assert ckpt.load_latest()["step"] == 1
    assert not [p for p in ckpt.root.iterdir() if p.name.startswith(".step-")]


def test_half_written_directory_is_ignored(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(5, {"x": 1})
    (ckpt.root / "step-00000009").mkdir()  # no state.pt: a crash before the rename cannot produce this,
    (ckpt.root / "latest").unlink()  # but a hand-made mess must still resolve to the last complete one
    assert ckpt.latest_path().name == "step-00000005"


def test_corrupt_state_is_a_clear_error(tmp_path):
    ckpt = Checkpointer(tmp_path)
    path = ckpt.save(1, {"x": 1})
    (path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        ckpt.load(path)
    with pytest.raises(FileNotFoundError):
        ckpt.load(tmp_path / "missing")


def test_rng_round_trip():
    torch.manual_seed(0)
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        Checkpointer(tmp_path, keep=0)
    with pytest.raises(ValueError):
        Checkpointer(tmp_path).save(-1, {})
