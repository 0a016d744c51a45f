"""all-gather with gradient + gradient averaging reproduce the single-process loss and gradients."""

from __future__ import annotations

import logging

import pytest
import torch
from _dist_helpers import init_gloo, spawn
from torch import nn

from spart.training.distributed import (
    DistributedContext,
    all_gather_with_grad,
    average_gradients,
    init_distributed,
    setup_logging,
)
from spart.training.losses import InBatchContrastiveLoss

DIM, FEATURES, BATCH = 8, 16, 8


def make_batch():
    g = torch.Generator().manual_seed(1)
    queries = torch.randn(BATCH, FEATURES, generator=g)
    passages = torch.randn(2 * BATCH, FEATURES, generator=g)  # positives then hard negatives
    return queries, passages


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.Tanh(), nn.Linear(32, DIM))


def local_loss(model, queries, positives, negatives):
    """Local queries against the gathered candidates [pos_r0, neg_r0, pos_r1, neg_r1, ...]."""
    q = model(queries)
    p = model(torch.cat([positives, negatives]))
    all_p = all_gather_with_grad(p)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    offset = rank * 2 * len(queries)  # equal shard sizes in this test
    target = torch.arange(len(queries)) + offset
    return InBatchContrastiveLoss()(q, all_p, target)


def _worker(rank, world, rendezvous, out_dir):
    init_gloo(rank, world, rendezvous)
    queries, passages = make_batch()
    b = BATCH // world
    rows = slice(rank * b, (rank + 1) * b)
    model = make_model()
    loss = local_loss(model, queries[rows], passages[:BATCH][rows], passages[BATCH:][rows])
    loss.backward()
    average_gradients(model.parameters())
    global_loss = loss.detach().clone()
    torch.distributed.all_reduce(global_loss)
    torch.save({"loss": global_loss / world, "grads": [p.grad for p in model.parameters()]}, f"{out_dir}/r{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_ranks_match_one_process(tmp_path):
    queries, passages = make_batch()
    model = make_model()
    loss = local_loss(model, queries, passages[:BATCH], passages[BATCH:])
    loss.backward()
    expected = [p.grad.clone() for p in model.parameters()]

    spawn(_worker, 2, str(tmp_path / "rdv"), str(tmp_path))
    for rank in range(2):
        got = torch.load(tmp_path / f"r{rank}.pt")
        assert torch.allclose(got["loss"], loss.detach(), atol=1e-6)
        for g, e in zip(got["grads"], expected):
            assert torch.allclose(g, e, atol=1e-6), (g - e).abs().max()


def _uneven_worker(rank, world, rendezvous, out_dir):
    init_gloo(rank, world, rendezvous)
    x = torch.full((rank + 1, 2), float(rank + 1), requires_grad=True)  # rank 0: 1 row, rank 1: 2 rows
    gathered = all_gather_with_grad(x)
    (gathered * torch.arange(1, 4).unsqueeze(1)).sum().backward()
    torch.save({"gathered": gathered.detach(), "grad": x.grad}, f"{out_dir}/u{rank}.pt")
    torch.distributed.destroy_process_group()


def test_uneven_gather_and_gradient_sum(tmp_path):
    spawn(_uneven_worker, 2, str(tmp_path / "rdv"), str(tmp_path))
    r0, r1 = torch.load(tmp_path / "u0.pt"), torch.load(tmp_path / "u1.pt")
    assert torch.equal(r0["gathered"], torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]]))
    # Each row's gradient is summed over both ranks' losses: 2 * its weight.
    assert torch.equal(r0["grad"], torch.tensor([[2.0, 2.0]]))
    assert torch.equal(r1["grad"], torch.tensor([[4.0, 4.0], [6.0, 6.0]]))


def test_single_process_is_identity_and_context(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed(device="cpu")
    assert ctx == DistributedContext() and ctx.is_main and not ctx.enabled
    x = torch.ones(3, 2, requires_grad=True)
    assert all_gather_with_grad(x) is x
    average_gradients([x])  # no-op, must not fail without a process group


def test_single_process_under_torchrun_initialises_the_backend(monkeypatch):
    """torchrun --nproc_per_node 1 sets up the process group (gloo here, NCCL on CUDA) like a multi-rank job."""
    import socket

    import torch.distributed as dist

    from spart.training.distributed import cleanup_distributed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in (
        ("WORLD_SIZE", "1"),
        ("RANK", "0"),
        ("LOCAL_RANK", "0"),
        ("TORCHELASTIC_RUN_ID", "test"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", str(port)),
    ):
        monkeypatch.setenv(name, value)
    try:
        ctx = init_distributed(device="cpu")
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert ctx.world_size == 1 and ctx.is_main and not ctx.enabled
    finally:
        cleanup_distributed()
    assert not dist.is_initialized()


def test_bad_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        init_distributed(device="cpu")


def test_rank_logging_silences_info_on_other_ranks(capfd):
    setup_logging(DistributedContext(rank=1, world_size=2))
    log = logging.getLogger("spart.training.test")
    log.info("hidden-info")
    log.warning("shown-warning")
    err = capfd.readouterr().err
    assert "hidden-info" not in err and "[rank 1]" in err and "shown-warning" in err
    setup_logging(DistributedContext())
