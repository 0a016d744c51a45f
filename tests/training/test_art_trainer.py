"""The ART trainer: it learns the teacher's ranking, resumes exactly (index included), matches 1 process on 2
ranks, writes loadable models and metrics, runs with a real (tiny) LM teacher, and rejects bad configs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from _art_helpers import LexicalTeacher, art_config, synthetic_evidence, synthetic_questions
from _dist_helpers import init_gloo, spawn
from _tiny_models import build_tiny_gpt2
from _trainer_helpers import make_tiny_bert, weights

from spart.data import Passage
from spart.encoders import DualEncoder
from spart.training.art import ARTTrainer, resolve_temperature
from spart.training.config import ARTTrainingConfig, load_config
from spart.training.distributed import DistributedContext
from spart.training.losses.kl_distillation_loss import entropy_matched_temperature, softmax_entropy
from spart.training.models import art_encoder
from spart.training.trainer import epoch_order


@pytest.fixture(scope="module")
def model_no_dropout(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("art-nodrop"), minilm_dir, dropout=0.0)


@pytest.fixture(scope="module")
def model_dropout(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("art-drop"), minilm_dir, dropout=0.1)


def make_trainer(config, ctx=None, on_step_end=None, teacher=None):
    encoder = art_encoder(config, torch.device("cpu"))
    return ARTTrainer(
        config, encoder, synthetic_questions(), synthetic_evidence(), teacher or LexicalTeacher(), ctx, on_step_end
    )


def teacher_agreement(encoder, questions, evidence) -> float:
    """Mean over questions of the teacher's probability mass on the student's top-1 of all evidence."""
    q = encoder.encode_queries(questions)
    p = encoder.encode_passages(evidence.texts, evidence.titles)
    teacher = LexicalTeacher()
    from spart.data import Passage

    passages = [Passage(id=i, text=x, title=t) for i, t, x in zip(evidence.ids, evidence.titles, evidence.texts)]
    scores = teacher.score_topk(questions, [passages] * len(questions))
    best = (q @ p.T).argmax(1)
    return float(np.mean(scores[np.arange(len(questions)), best]))


def test_training_learns_the_teacher_and_writes_outputs(tmp_path, model_dropout):
    config = art_config(
        tmp_path / "run",
        model_dropout,
        max_steps=40,
        lr=3e-3,
        checkpoint_every=20,
        log_every=5,
        reindex_every=10,
        export_steps=[0, 40],
        temperature=0.3,
    )
    trainer = make_trainer(config)
    questions, evidence = synthetic_questions(), synthetic_evidence()
    before = teacher_agreement(trainer.encoder, questions, evidence)
    final = trainer.train()
    after = teacher_agreement(trainer.encoder, questions, evidence)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    first, last = float(rows[0]["loss"]), (float(rows[-1]["loss"]) + float(rows[-2]["loss"])) / 2
    assert last < 0.5 * first, (first, last)
    assert after > before + 1.0, (before, after)  # the top-1 shares more question words (teacher: 2 per word)
    for row in rows:
        assert 0 < float(row["teacher_share"]) < 1 and float(row["step_s"]) > float(row["teacher_s"]) > 0
    assert [int(r["index_step"]) for r in rows] == [0, 10, 10, 20, 20, 30, 30, 30]  # no re-index after the last step
    assert float(rows[1]["reindex_s"]) > 0 and float(rows[0]["reindex_s"]) == 0
    # The final model (two towers: ART's default) loads and encodes like the trained one.
    loaded = DualEncoder.load(final, device="cpu", precision="fp32")
    assert not loaded.config.shared
    texts = ["apple river", "castle engine"]
    assert np.allclose(loaded.encode_queries(texts), trainer.encoder.encode_queries(texts), atol=1e-5)
    assert np.allclose(loaded.encode_passages(texts), trainer.encoder.encode_passages(texts), atol=1e-5)
    # ... and the ART Haystack embedders serve it.
    from haystack import Document

    from spart.components.embedders import ARTDocumentEmbedder, ARTTextEmbedder

    text_embedder = ARTTextEmbedder(model=str(final), device="cpu", precision="fp32")
    text_embedder.warm_up()
    assert np.allclose(
        text_embedder.run(texts[0])["embedding"], trainer.encoder.encode_queries(texts[:1])[0], atol=1e-5
    )
    doc_embedder = ARTDocumentEmbedder(model=str(final), device="cpu", precision="fp32", progress_bar=False)
    doc_embedder.warm_up()
    doc = doc_embedder.run([Document(content=texts[1], meta={"title": "castle"})])["documents"][0]
    assert np.allclose(doc.embedding, trainer.encoder.encode_passages(texts[1:], ["castle"])[0], atol=1e-5)
    assert (tmp_path / "run" / "models" / "step-00000000").is_dir() and (
        tmp_path / "run" / "models" / "step-00000040"
    ).is_dir()
    assert (tmp_path / "run" / "config.yaml").is_file()


class Crash(Exception):
    pass


def test_resume_is_exact_including_the_evidence_index(tmp_path, model_dropout):
    # Checkpoints at 2 and 4, re-index at 3: the crash after step 5 resumes from step 4 with the index of step 3,
    # which the resumed weights could not reproduce by re-embedding.
    straight = make_trainer(art_config(tmp_path / "a", model_dropout))
    straight.train()

    def crash_after_5(step):
        if step == 5:
            raise Crash

    config_b = art_config(tmp_path / "b", model_dropout)
    with pytest.raises(Crash):
        make_trainer(config_b, on_step_end=crash_after_5).train()
    resumed = make_trainer(config_b)
    assert resumed.resume() and resumed.step == 4 and resumed.index.step == 3
    resumed.step = 0  # train() resumes again by itself
    resumed = make_trainer(config_b)
    resumed.train(resume=True)
    a, b = weights(straight.encoder), weights(resumed.encoder)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(straight.index.embeddings, resumed.index.embeddings) and resumed.index.step == 3
    with open(tmp_path / "b" / "metrics.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5, 6]
    # Without the stored index (re-embedding with the step-4 weights) the index would differ:
    fresh = make_trainer(config_b)
    fresh.resume()
    stored = fresh.index.embeddings.copy()
    fresh.reindex(4)
    assert not np.allclose(stored, fresh.index.embeddings)


def test_resume_across_a_change_of_dropout_kernel_warns(tmp_path, model_dropout, caplog):
    config = art_config(tmp_path / "run", model_dropout, fast_dropout=False, max_steps=2, checkpoint_every=2)
    make_trainer(config).train()
    same = make_trainer(config)
    with caplog.at_level("WARNING", logger="spart.training.trainer"):
        assert same.resume()
    assert "dropout" not in caplog.text
    switched = make_trainer(config.model_copy(update={"fast_dropout": True}))
    with caplog.at_level("WARNING", logger="spart.training.trainer"):
        assert switched.resume() and switched.step == 2
    assert "trained with torch's dropout, this run uses spart's dropout" in caplog.text
    assert "set fast_dropout: false to resume exactly" in caplog.text


class RecordingTeacher(LexicalTeacher):
    """The lexical teacher, keeping the passage ids it was asked about per question, in call order."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, list[str]]] = []

    def score_topk(self, questions, passages):
        self.asked += [(q, [p.id for p in row]) for q, row in zip(questions, passages)]
        return super().score_topk(questions, passages)


def crash_and_resume(config, after_step):
    """Train ``config`` until a crash after step ``after_step``, then resume it to the end: the resumed trainer."""

    def crash(step):
        if step == after_step:
            raise Crash

    with pytest.raises(Crash):
        make_trainer(config, on_step_end=crash).train()
    resumed = make_trainer(config)
    resumed.train(resume=True)
    return resumed


def assert_resume_refuses_a_switch_of(option, config, plain):
    """A checkpoint of ``config`` (trained with ``option``) and one of ``plain`` (without it, trained here) each
    refuse a resume with the other setting."""
    with pytest.raises(ValueError, match=f"trained with {option} and this run is configured without"):
        make_trainer(config.model_copy(update={option: False})).resume()
    make_trainer(plain).train()
    with pytest.raises(ValueError, match=f"trained without {option} and this run is configured with"):
        make_trainer(plain.model_copy(update={option: True})).resume()


def test_fixed_candidates_are_the_initial_models_top_k_at_every_step(tmp_path, model_dropout):
    questions, evidence = synthetic_questions(), synthetic_evidence()
    options = dict(max_steps=8, lr=5e-3, reindex_every=0, checkpoint_every=0)
    fixed_teacher, moving_teacher = RecordingTeacher(), RecordingTeacher()
    fixed = make_trainer(
        art_config(tmp_path / "fixed", model_dropout, fixed_candidates=True, **options), teacher=fixed_teacher
    )
    # the initial model's own top 5 of every question, from its public encode methods (eval mode, fp32)
    q = fixed.encoder.encode_queries(questions)
    p = fixed.encoder.encode_passages(evidence.texts, evidence.titles)
    top = np.argsort(-(q @ p.T), axis=1)[:, :5]
    expected = {question: {evidence.ids[j] for j in row} for question, row in zip(questions, top)}
    fixed.train()
    assert len(fixed_teacher.asked) == 8 * 4
    for question, ids in fixed_teacher.asked:
        assert set(ids) == expected[question], question
    # without them (ART) the drifting query tower's candidates leave the initial top 5 within the same run
    make_trainer(art_config(tmp_path / "moving", model_dropout, **options), teacher=moving_teacher).train()
    assert any(set(ids) != expected[question] for question, ids in moving_teacher.asked)


def test_fixed_candidates_resume_exactly_and_refuse_a_switch(tmp_path, model_dropout):
    options = dict(reindex_every=0, fixed_candidates=True)
    straight = make_trainer(art_config(tmp_path / "a", model_dropout, **options))
    straight.train()
    config = art_config(tmp_path / "b", model_dropout, **options)
    resumed = crash_and_resume(config, after_step=3)
    a, b = weights(straight.encoder), weights(resumed.encoder)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(straight.candidates, resumed.candidates)
    plain = art_config(tmp_path / "c", model_dropout, reindex_every=0, max_steps=2)
    assert_resume_refuses_a_switch_of("fixed_candidates", config, plain)


def test_a_frozen_passage_tower_takes_the_query_side_of_arts_gradient(tmp_path, model_no_dropout):
    # Step 0: both runs retrieve the same candidates with the same initial towers; the frozen run scores them with
    # the index's embeddings instead of re-embedding them, so its loss and query-tower gradient are ART's, and its
    # passage tower gets none.
    full = first_step_gradients(make_trainer(art_config(tmp_path / "full", model_no_dropout, reindex_every=0)))
    frozen = first_step_gradients(
        make_trainer(art_config(tmp_path / "frozen", model_no_dropout, reindex_every=0, freeze_passage_tower=True))
    )
    assert frozen[0] == pytest.approx(full[0], abs=1e-5)
    query = {n: g for n, g in full[1].items() if n.startswith("query_model")}
    assert query and set(frozen[1]) == set(query)
    assert any(n.startswith("passage_model") for n in full[1])
    for name, grad in query.items():
        assert torch.allclose(frozen[1][name], grad, rtol=1e-3, atol=1e-6), (name, (frozen[1][name] - grad).abs().max())


def test_a_frozen_passage_tower_keeps_its_weights_learns_and_resumes_exactly(tmp_path, model_dropout):
    options = dict(reindex_every=0, freeze_passage_tower=True, max_steps=12, lr=3e-3, temperature=0.3)
    straight = make_trainer(art_config(tmp_path / "a", model_dropout, **options))
    questions, evidence = synthetic_questions(), synthetic_evidence()
    initial, agreement_before = weights(straight.encoder), teacher_agreement(straight.encoder, questions, evidence)
    straight.train()
    trained = weights(straight.encoder)
    passage = [k for k in trained if k.startswith("passage_model")]
    assert passage and all(torch.equal(trained[k], initial[k]) for k in passage)
    assert any(not torch.equal(trained[k], initial[k]) for k in trained if k.startswith("query_model"))
    assert teacher_agreement(straight.encoder, questions, evidence) > agreement_before  # the query side learns
    assert straight.index.step == 0  # never re-embedded: the index is the passage tower's, always
    config = art_config(tmp_path / "b", model_dropout, **options)
    b = weights(crash_and_resume(config, after_step=5).encoder)
    assert all(torch.equal(trained[k], b[k]) for k in trained)
    plain = art_config(tmp_path / "c", model_dropout, reindex_every=0, max_steps=2)
    assert_resume_refuses_a_switch_of("freeze_passage_tower", config, plain)


def test_an_auto_teacher_temperature_matches_the_students_entropy_and_resumes_exactly(tmp_path, model_dropout):
    questions, evidence = synthetic_questions(), synthetic_evidence()
    options = dict(teacher_temperature="auto", calibration_questions=6, max_steps=6)
    trainer = make_trainer(art_config(tmp_path / "a", model_dropout, **options))
    # by hand, from the initial model's public encode methods: its top 5 of the first 6 questions of the data order
    order = epoch_order(len(questions), trainer.config.seed, 0)[:6].tolist()
    q = trainer.encoder.encode_queries([questions[i] for i in order])
    p = trainer.encoder.encode_passages(evidence.texts, evidence.titles)
    scores = q @ p.T
    top = np.argsort(-scores, axis=1)[:, :5]
    student = np.take_along_axis(scores, top, 1) / trainer.temperature
    passages = [Passage(id=i, text=x, title=t) for i, t, x in zip(evidence.ids, evidence.titles, evidence.texts)]
    teacher = LexicalTeacher().score_topk([questions[i] for i in order], [[passages[j] for j in row] for row in top])
    expected = entropy_matched_temperature(teacher, softmax_entropy(student).mean())
    assert softmax_entropy(teacher / expected).mean() == pytest.approx(softmax_entropy(student).mean(), abs=1e-6)
    assert abs(expected - 1.0) > 0.1  # the test means something: 1.0 (ART's) is not the answer
    trainer.train()
    assert trainer.loss_fn.teacher_temperature == pytest.approx(expected, rel=1e-4)
    # crash and resume: the calibrated value comes back from the checkpoint, and the run continues exactly
    config = art_config(tmp_path / "b", model_dropout, **options)
    resumed = crash_and_resume(config, after_step=3)
    assert resumed.loss_fn.teacher_temperature == trainer.loss_fn.teacher_temperature
    a, b = weights(trainer.encoder), weights(resumed.encoder)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and a resume may not switch between a calibrated and a fixed temperature, either way
    with pytest.raises(ValueError, match="trained with teacher_temperature: auto and this run is configured without"):
        make_trainer(config.model_copy(update={"teacher_temperature": 1.0})).resume()
    plain = art_config(tmp_path / "c", model_dropout, max_steps=2)
    make_trainer(plain).train()
    with pytest.raises(ValueError, match="trained without teacher_temperature: auto and this run is configured with"):
        make_trainer(plain.model_copy(update={"teacher_temperature": "auto"})).resume()


def first_step_gradients(trainer):
    """Step 0's loss and rank-averaged gradients, before any optimiser update."""
    from spart.training.distributed import average_gradients

    trainer.before_training(resumed=False)  # the index, fixed candidates, an auto teacher temperature
    rows = None if trainer.candidates is None else trainer.candidates[trainer.local_indices(0)]
    trainer.encoder.train()
    loss, _ = trainer.compute_loss_and_backward(trainer.local_questions(0), rows)
    params = dict(trainer.encoder.named_parameters())
    average_gradients(params.values(), trainer.ctx.world_size)
    grads = {n: p.grad.detach().clone() for n, p in params.items() if p.grad is not None}
    trainer.optimizer.zero_grad(set_to_none=True)
    return float(loss), grads


def test_grad_cache_matches_plain_training(tmp_path, model_no_dropout):
    # Dropout off: chunked encoding draws masks in another order than one big batch (the replay itself is tested
    # in test_grad_cache.py). 4 questions x top 5 = 20 passages in chunks of 3: an uneven last chunk.
    plain = first_step_gradients(make_trainer(art_config(tmp_path / "plain", model_no_dropout)))
    cached = first_step_gradients(make_trainer(art_config(tmp_path / "gc", model_no_dropout, grad_cache_chunk=3)))
    assert plain[0] == pytest.approx(cached[0], abs=1e-6)
    assert set(plain[1]) == set(cached[1]) and any(n.startswith("query_model") for n in plain[1])
    for name, grad in plain[1].items():
        assert torch.allclose(cached[1][name], grad, rtol=1e-4, atol=1e-6), (name, (cached[1][name] - grad).abs().max())


def _two_rank_worker(rank, world, rendezvous, out_dir, model_dir, options):
    init_gloo(rank, world, rendezvous)
    ctx = DistributedContext(rank=rank, world_size=world)
    config = art_config(out_dir / "dist", model_dir, max_steps=3, checkpoint_every=0, **options)
    loss, grads = first_step_gradients(make_trainer(config, ctx=ctx))
    trainer = make_trainer(config, ctx=ctx)
    trainer.train()
    torch.save({"loss": loss, "grads": grads, "weights": weights(trainer.encoder)}, out_dir / f"r{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize(
    "options",
    [
        {"reindex_every": 2},
        {"reindex_every": 0, "fixed_candidates": True},
        {"reindex_every": 0, "freeze_passage_tower": True},
        {"reindex_every": 2, "teacher_temperature": "auto", "calibration_questions": 7},
    ],
    ids=["reindex", "fixed", "frozen", "auto-teacher-temperature"],
)
def test_two_ranks_train_like_one_process(tmp_path, model_no_dropout, options):
    config = art_config(tmp_path / "single", model_no_dropout, max_steps=3, checkpoint_every=0, **options)
    _, ref_grads = first_step_gradients(make_trainer(config))
    single = make_trainer(config)
    single.train()
    spawn(_two_rank_worker, 2, tmp_path / "rdzv", tmp_path, model_no_dropout, options)
    r0, r1 = torch.load(tmp_path / "r0.pt"), torch.load(tmp_path / "r1.pt")
    # Step 0: the rank-averaged gradient is the single-process gradient of the whole batch.
    assert set(r0["grads"]) == set(ref_grads)
    for name, grad in ref_grads.items():
        assert torch.allclose(r0["grads"][name], grad, rtol=1e-4, atol=1e-7), name
    # Training: the ranks stay identical, and the logged (global) losses follow the single process.
    for key, value in r0["weights"].items():
        assert torch.equal(value, r1["weights"][key]), key
    metrics = list(csv.DictReader(open(tmp_path / "dist" / "metrics.csv", newline="")))
    single_metrics = list(csv.DictReader(open(tmp_path / "single" / "metrics.csv", newline="")))
    assert [float(r["loss"]) for r in metrics] == pytest.approx([float(r["loss"]) for r in single_metrics], rel=1e-3)


def test_real_lm_teacher_with_cache(tmp_path, model_no_dropout, minilm_dir):
    from spart.training.models import build_teacher

    lm = build_tiny_gpt2(tmp_path / "lm", minilm_dir)
    config = art_config(
        tmp_path / "run",
        model_no_dropout,
        max_steps=4,
        checkpoint_every=0,
        reindex_every=0,
        teacher={"model": str(lm), "precision": "fp32", "max_passage_tokens": 32},
    )
    teacher = build_teacher(config, torch.device("cpu"))
    assert teacher.cache is not None and str(teacher.cache.path).endswith("run/teacher-scores.sqlite")
    trainer = make_trainer(config, teacher=teacher)
    trainer.train()
    # 16 questions, batch 4: steps 5+ would repeat questions; 4 steps see each once, all scored by the LM.
    assert teacher.stats["scored"] > 0 and len(teacher.cache) == teacher.stats["scored"]
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv", newline="")))
    assert len(rows) == 4 and all(np.isfinite(float(r["loss"])) for r in rows)
    # A second run over the same questions is served from the cache.
    again = make_trainer(
        art_config(tmp_path / "run2", model_no_dropout, max_steps=1, checkpoint_every=0, reindex_every=0),
        teacher=teacher,
    )
    hits = teacher.stats["cache_hits"]
    again.reindex(0)
    again.train_step(0)
    assert teacher.stats["cache_hits"] > hits


def _mean_kl_on_candidates(teacher, encoder, questions, evidence, candidates, temperature) -> float:
    """Mean KL(teacher || student) over each question's fixed candidates (row numbers into ``evidence``)."""
    passages = [Passage(id=i, text=x, title=t) for i, t, x in zip(evidence.ids, evidence.titles, evidence.texts)]
    target = teacher.score_topk(questions, [[passages[j] for j in row] for row in candidates]).astype(np.float64)
    q = encoder.encode_queries(questions)
    p = encoder.encode_passages(evidence.texts, evidence.titles)
    student = np.take_along_axis(q @ p.T, candidates, axis=1) / temperature

    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    t = log_softmax(target)
    return float(np.mean(np.sum(np.exp(t) * (t - log_softmax(student)), axis=1)))


def test_an_encoder_directory_is_an_encoder_teacher_and_the_student_learns_it(
    tmp_path, model_no_dropout, tiny_encoder_dir
):
    from spart.teacher import EncoderScorer
    from spart.teacher.mixing import BaseInterpolatedTeacher
    from spart.training.models import build_teacher

    config = art_config(
        tmp_path / "run",
        model_no_dropout,
        max_steps=8,
        lr=3e-3,
        checkpoint_every=0,
        reindex_every=0,  # the step-0 index: every question keeps its step-0 candidates
        teacher={"model": str(tiny_encoder_dir), "precision": "fp32"},
    )
    teacher = build_teacher(config, torch.device("cpu"))
    assert isinstance(teacher, EncoderScorer) and teacher.fingerprint.startswith("encoder:")
    questions, evidence = synthetic_questions(), synthetic_evidence()
    initial = art_encoder(config, torch.device("cpu"))
    q0 = initial.encode_queries(questions)
    candidates = np.argsort(-(q0 @ initial.encode_passages(evidence.texts, evidence.titles).T), axis=1)[:, :5]
    temperature = resolve_temperature(config, initial)
    before = _mean_kl_on_candidates(teacher, initial, questions, evidence, candidates, temperature)
    final = make_trainer(config, teacher=teacher).train()
    trained = DualEncoder.load(final, device="cpu", precision="fp32")
    after = _mean_kl_on_candidates(teacher, trained, questions, evidence, candidates, temperature)
    assert after < 0.8 * before
    assert not (tmp_path / "run" / "teacher-scores.sqlite").exists()  # an encoder teacher keeps no score cache

    mixed = config.model_copy(update={"teacher": config.teacher.model_copy(update={"base_weight": 0.5})})
    wrapped = build_teacher(mixed, torch.device("cpu"))
    assert isinstance(wrapped, BaseInterpolatedTeacher) and isinstance(wrapped.teacher, EncoderScorer)
    as_lm = config.model_copy(update={"teacher": config.teacher.model_copy(update={"kind": "encoder", "model": None})})
    with pytest.raises(ValueError, match="needs teacher.model"):
        build_teacher(as_lm, torch.device("cpu"))


def test_temperature_defaults(tmp_path, model_no_dropout, minilm_dir):
    plain = art_encoder(art_config(tmp_path, model_no_dropout, pooling=None, temperature=None), torch.device("cpu"))
    assert plain.config.pooling == "cls" and not plain.config.normalize and not plain.config.shared  # ART defaults
    assert resolve_temperature(art_config(tmp_path, model_no_dropout, temperature=None), plain) == pytest.approx(
        32**0.5
    )
    minilm = art_encoder(art_config(tmp_path, minilm_dir, pooling=None, temperature=None), torch.device("cpu"))
    assert minilm.config.normalize and minilm.config.pooling == "mean"  # the model's own settings are kept
    assert resolve_temperature(art_config(tmp_path, minilm_dir, temperature=None), minilm) == 0.05


def test_bad_configs_are_clear_errors(tmp_path, model_no_dropout):
    with pytest.raises(ValueError, match="top_k=41 exceeds the 40 evidence passages"):
        make_trainer(art_config(tmp_path, model_no_dropout, top_k=41))
    with pytest.raises(ValueError, match="fewer than one batch"):
        make_trainer(art_config(tmp_path, model_no_dropout, batch_size=32))
    with pytest.raises(ValueError, match="not divisible"):
        make_trainer(art_config(tmp_path, model_no_dropout, batch_size=5), ctx=DistributedContext(rank=0, world_size=2))
    with pytest.raises(ValueError, match="top_k"):
        art_config(tmp_path, model_no_dropout, top_k=0)
    with pytest.raises(ValueError, match="fixed_candidates needs reindex_every: 0"):
        art_config(tmp_path, model_no_dropout, fixed_candidates=True, reindex_every=3)
    with pytest.raises(ValueError, match="freeze_passage_tower needs shared: false"):
        art_config(tmp_path, model_no_dropout, freeze_passage_tower=True, reindex_every=0, shared=True)
    with pytest.raises(ValueError, match="freeze_passage_tower needs reindex_every: 0"):
        art_config(tmp_path, model_no_dropout, freeze_passage_tower=True, reindex_every=3)
    with pytest.raises(ValueError, match="teacher.bogus"):
        load_config(
            ARTTrainingConfig,
            None,
            [f"output_dir={tmp_path}", "model=x", "questions=q", "evidence=e", "teacher.bogus=1"],
        )


def test_teacher_with_wrong_shape_is_rejected(tmp_path, model_no_dropout):
    class Broken(LexicalTeacher):
        def score_topk(self, questions, passages):
            return super().score_topk(questions, passages)[:, :-1]

    trainer = make_trainer(art_config(tmp_path, model_no_dropout), teacher=Broken())
    trainer.reindex(0)
    with pytest.raises(ValueError, match="teacher returned scores of shape"):
        trainer.train_step(0)


def test_example_config_and_cli_print_config(capsys):
    from pathlib import Path

    from spart.cli import main

    example = Path(__file__).resolve().parents[2] / "src" / "spart" / "training" / "configs" / "art.yaml"
    config = load_config(ARTTrainingConfig, example)
    assert config.top_k == 8 and not config.shared and config.teacher.model is None
    assert main(["train", "art", "--config", str(example), "--set", "top_k=16", "--print-config"]) == 0
    import json

    printed = json.loads(capsys.readouterr().out)
    assert printed["top_k"] == 16 and printed["teacher"]["batch_size"] == 16
    assert main(["train", "art", "--config", str(example), "--set", "top_k=0", "--print-config"]) == 2


def test_cli_trains_art_through_the_registry(tmp_path, model_no_dropout, minilm_dir):
    from spart.cli import main

    lm = build_tiny_gpt2(tmp_path / "lm", minilm_dir)
    evidence = synthetic_evidence(12)
    rows = zip(evidence.ids, evidence.texts, evidence.titles)
    (tmp_path / "e.tsv").write_text("id\ttext\ttitle\n" + "".join("\t".join(row) + "\n" for row in rows))
    (tmp_path / "q.txt").write_text("\n".join(synthetic_questions(8)) + "\n")
    config = tmp_path / "art.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'run'}\nmodel: {model_no_dropout}\nquestions: {tmp_path / 'q.txt'}\n"
        f"evidence: {tmp_path / 'e.tsv'}\nbatch_size: 4\nmax_steps: 2\ntop_k: 3\nreindex_every: 0\n"
        f"checkpoint_every: 0\nlog_every: 1\nprecision: fp32\nprogress: false\n"
        f"query_max_length: 16\npassage_max_length: 24\n"
        f"teacher: {{model: {lm}, precision: fp32, max_passage_tokens: 32}}\n"
    )
    assert main(["train", "art", "--config", str(config)]) == 0
    assert (tmp_path / "run" / "final" / "spart.json").is_file()
    assert (tmp_path / "run" / "teacher-scores.sqlite").is_file()  # the teacher came from config.teacher
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv", newline="")))
    assert [r["step"] for r in rows] == ["1", "2"] and all(np.isfinite(float(r["loss"])) for r in rows)
