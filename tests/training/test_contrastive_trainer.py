"""The contrastive trainer: learning, exact resume, GradCache and 2-rank equivalence, outputs."""

from __future__ import annotations

import csv

import pytest
import torch
from _dist_helpers import init_gloo, spawn
from _trainer_helpers import make_tiny_bert, synthetic_examples, tiny_config, weights

from spart.encoders import DualEncoder
from spart.training.contrastive import Batch, ContrastiveTrainer
from spart.training.distributed import DistributedContext
from spart.training.models import spider_encoder
from spart.training.trainer import epoch_order


@pytest.fixture(scope="module")
def model_no_dropout(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("nodrop"), minilm_dir, dropout=0.0)


@pytest.fixture(scope="module")
def model_dropout(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("drop"), minilm_dir, dropout=0.1)


def train(config, examples, resume=False, **kwargs):
    encoder = spider_encoder(config, torch.device("cpu"))
    trainer = ContrastiveTrainer(config, encoder, examples, **kwargs)
    trainer.train(resume=resume)
    return trainer


def first_step_gradients(config, examples, ctx=None):
    """Loss and (rank-averaged) gradients of step 0, before any optimiser update."""
    trainer = ContrastiveTrainer(config, spider_encoder(config, torch.device("cpu")), examples, ctx)
    torch.manual_seed(0)
    loss = trainer.accumulate_gradients(0)
    grads = {n: p.grad.detach().clone() for n, p in trainer.encoder.named_parameters() if p.grad is not None}
    return loss, grads


def test_loss_decreases_and_outputs_are_written(tmp_path, model_dropout):
    # Mean pooling: a random 2-layer 32-d BERT learns this toy task in a few dozen steps with it (CLS is slower).
    config = tiny_config(
        tmp_path / "run", model_dropout, max_steps=40, lr=3e-3, checkpoint_every=20, log_every=5, pooling="mean"
    )
    trainer = train(config, synthetic_examples(48))
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    assert set(rows[0]) == {"step", "epoch", "loss", "lr", "examples_per_s", "elapsed_s"}
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < 0.5 * first, (first, last)
    assert float(rows[-1]["examples_per_s"]) > 0 and float(rows[-1]["lr"]) == pytest.approx(0.0, abs=1e-9)
    assert (tmp_path / "run" / "config.yaml").is_file()
    # The final model loads as a DualEncoder and encodes exactly like the trained one.
    loaded = DualEncoder.load(tmp_path / "run" / "final", device="cpu", precision="fp32")
    texts = ["apple river", "castle engine"]
    trainer.encoder.eval()
    assert torch.allclose(
        torch.from_numpy(loaded.encode_queries(texts)),
        torch.from_numpy(trainer.encoder.encode_queries(texts)),
        atol=1e-5,
    )


class Crash(RuntimeError):
    pass


def crash_after(step):
    def hook(done):
        if done == step:
            raise Crash(f"killed after step {done}")

    return hook


@pytest.mark.parametrize("grad_cache_chunk", [None, 3])
def test_resume_after_crash_is_exact(tmp_path, model_dropout, grad_cache_chunk):
    """With dropout on, RNG + data position + optimiser + scheduler must all be restored for equality."""
    examples = synthetic_examples(20)  # 2 steps per epoch of 8: crosses epochs, last partial batch dropped
    full = train(tiny_config(tmp_path / "full", model_dropout, grad_cache_chunk=grad_cache_chunk), examples)

    config = tiny_config(tmp_path / "crash", model_dropout, grad_cache_chunk=grad_cache_chunk)
    with pytest.raises(Crash):
        train(config, examples, on_step_end=crash_after(3))  # checkpoint at step 2, step 3 is lost
    resumed = train(config, examples, resume=True)
    assert resumed.step == 6
    a, b = weights(full.encoder), weights(resumed.encoder)
    assert all(torch.equal(a[k], b[k]) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)
    with open(tmp_path / "crash" / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5, 6]


def test_time_budget_stops_checkpoints_exports_and_resumes_exactly(tmp_path, model_dropout):
    examples = synthetic_examples(20)
    full = train(tiny_config(tmp_path / "full", model_dropout), examples)
    # A budget spent after the first step: the run stops there, with a checkpoint, an export and a final model.
    config = tiny_config(tmp_path / "budget", model_dropout, time_budget_s=1e-9, checkpoint_every=4)
    stopped = train(config, examples)
    assert stopped.stopped_by_budget and stopped.step == 1
    assert (tmp_path / "budget" / "models" / "step-00000001" / "spart.json").is_file()
    assert (tmp_path / "budget" / "final" / "spart.json").is_file()
    # Resumed without a budget, it ends where the uninterrupted run ends.
    resumed = train(config.model_copy(update={"time_budget_s": None}), examples, resume=True)
    assert not resumed.stopped_by_budget and resumed.step == 6
    a, b = weights(full.encoder), weights(resumed.encoder)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_starts_fresh(tmp_path, model_no_dropout):
    config = tiny_config(tmp_path / "r", model_no_dropout, max_steps=2)
    trainer = ContrastiveTrainer(config, spider_encoder(config, torch.device("cpu")), synthetic_examples(16))
    assert trainer.resume() is False and trainer.step == 0


def assert_same_gradients(a, b):
    assert set(a) == set(b)
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5), (name, (a[name] - b[name]).abs().max())


# Why gradients and losses, not weights after several steps: Adam divides by sqrt(v), so float rounding in a
# near-zero gradient component can move that weight by a sizeable fraction of lr; weights after a few steps
# differ by ~1e-4 at lr 1e-3 even though every gradient agrees to ~1e-7.
def test_grad_cache_matches_plain_training(tmp_path, model_no_dropout):
    # Dropout off: chunked encoding draws masks in another order than one big batch (the replay of the
    # masks themselves is tested with dropout on in test_grad_cache.py and by the exact-resume test).
    examples = synthetic_examples(16, with_negatives=True)
    plain = first_step_gradients(tiny_config(tmp_path / "plain", model_no_dropout), examples)
    cached = first_step_gradients(tiny_config(tmp_path / "gc", model_no_dropout, grad_cache_chunk=3), examples)
    assert torch.allclose(plain[0], cached[0], atol=1e-6)
    assert_same_gradients(plain[1], cached[1])


def _rank_worker(rank, world, rendezvous, out_dir, model_dir, grad_cache_chunk):
    init_gloo(rank, world, rendezvous)
    from pathlib import Path

    config = tiny_config(Path(out_dir) / "ddp", Path(model_dir), max_steps=3, grad_cache_chunk=grad_cache_chunk)
    ctx = DistributedContext(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))
    loss, grads = first_step_gradients(config, synthetic_examples(16, seed=1), ctx)
    global_loss = loss.clone()
    torch.distributed.all_reduce(global_loss)
    torch.save({"loss": global_loss / world, "grads": grads}, Path(out_dir) / f"rank{rank}.pt")
    trainer = ContrastiveTrainer(config, spider_encoder(config, ctx.device), synthetic_examples(16, seed=1), ctx)
    trainer.train()
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("grad_cache_chunk", [None, 2])
def test_two_ranks_match_one_process(tmp_path, model_no_dropout, grad_cache_chunk):
    """2 gloo ranks x 4 examples == 1 process x 8: loss and gradients of a step, and the loss curve."""
    examples = synthetic_examples(16, seed=1)
    loss, grads = first_step_gradients(tiny_config(tmp_path / "g", model_no_dropout), examples)
    train(tiny_config(tmp_path / "single", model_no_dropout, max_steps=3), examples)
    spawn(_rank_worker, 2, str(tmp_path / "rdv"), str(tmp_path), str(model_no_dropout), grad_cache_chunk)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.allclose(got["loss"], loss, atol=1e-6)
        assert_same_gradients(got["grads"], grads)
    rows = {}
    for name in ("single", "ddp"):
        with open(tmp_path / name / "metrics.csv", newline="") as handle:
            rows[name] = [float(r["loss"]) for r in csv.DictReader(handle)]
    assert len(rows["single"]) == 3 and rows["single"] == pytest.approx(rows["ddp"], abs=1e-4)


def test_duplicate_positive_is_masked_not_a_negative():
    examples = [
        {"query": "q0", "positive": ("a", "", "text a"), "negative": ("b", "", "text b")},
        {"query": "q1", "positive": ("b", "", "text b"), "negative": None, "positive_ids": ["b", "c"]},
        {"query": "q2", "positive": ("c", "", "text c"), "negative": None},
    ]
    batch = Batch.from_examples(examples)
    assert [p.id for p in batch.passages] == ["a", "b", "c", "b"]
    trainer = ContrastiveTrainer.__new__(ContrastiveTrainer)
    trainer.ctx = DistributedContext()
    target, mask = trainer._candidate_mask(batch, 0)
    assert target.tolist() == [0, 1, 2]
    assert mask.tolist() == [
        [True, True, True, True],  # q0: b is a real negative for it
        [True, True, False, False],  # q1: its other positive c and the duplicate of b are masked
        [True, True, True, True],
    ]


def test_epoch_order_is_deterministic_and_differs_per_epoch():
    assert torch.equal(epoch_order(50, 3, 0), epoch_order(50, 3, 0))
    assert not torch.equal(epoch_order(50, 3, 0), epoch_order(50, 3, 1))


def test_bad_setups_are_clear_errors(tmp_path, model_no_dropout):
    config = tiny_config(tmp_path / "x", model_no_dropout, batch_size=8)
    encoder = spider_encoder(config, torch.device("cpu"))
    with pytest.raises(ValueError, match="fewer than one batch"):
        ContrastiveTrainer(config, encoder, synthetic_examples(5))
    with pytest.raises(ValueError, match="not divisible"):
        ContrastiveTrainer(config, encoder, synthetic_examples(16), DistributedContext(rank=0, world_size=3))
    with pytest.raises(ValueError, match="empty query"):
        Batch.from_examples([{"query": " ", "positive": ("a", "", "t")}])
    with pytest.raises(ValueError, match="empty text"):
        Batch.from_examples([{"query": "q", "positive": ("a", "", "")}])
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        ContrastiveTrainer(
            tiny_config(tmp_path / "y", model_no_dropout, precision="fp16"), encoder, synthetic_examples(16)
        )


def test_separate_towers_train_both(tmp_path, model_no_dropout):
    config = tiny_config(tmp_path / "sep", model_no_dropout, shared=False, max_steps=2)
    trainer = train(config, synthetic_examples(16))
    assert trainer.encoder.passage_model is not None
    q = trainer.encoder.query_model.embeddings.word_embeddings.weight
    p = trainer.encoder.passage_model.embeddings.word_embeddings.weight
    assert not torch.equal(q, p)  # both updated differently from the shared start
    loaded = DualEncoder.load(tmp_path / "sep" / "final", device="cpu", precision="fp32")
    assert loaded.config.shared is False


def test_bf16_autocast_step_runs(tmp_path, model_no_dropout):
    config = tiny_config(tmp_path / "bf", model_no_dropout, precision="bf16", max_steps=2)
    trainer = train(config, synthetic_examples(16))
    assert trainer.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in trainer.encoder.parameters())  # master weights stay fp32
