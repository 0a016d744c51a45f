import numpy as np
import pytest
import torch

from spart.data import as_passage
from spart.teacher.cache import ScoreCache
from spart.teacher.likelihood import QuestionLikelihoodScorer
from spart.teacher.prompts import PromptTemplate

QUESTIONS = ["What is the capital of France?", "Who created Python?"]


@pytest.fixture(scope="module")
def causal(tiny_causal_dir):
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", device="cpu", batch_size=3)
    scorer.warm_up()
    return scorer


@pytest.fixture(scope="module")
def seq2seq(tiny_t5_dir):
    scorer = QuestionLikelihoodScorer(str(tiny_t5_dir), precision="fp32", device="cpu", batch_size=3)
    scorer.warm_up()
    return scorer


def reference_causal(scorer, question, passage):
    """Unbatched, unpadded, full-logits computation written independently of the scorer's fast path."""
    p = as_passage(passage)
    tok = scorer.tokenizer
    prompt = tok(scorer.prompt.render_passage(p.title, p.text))["input_ids"]
    target = tok(scorer.prompt.render_question(question), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([prompt + target])
    with torch.no_grad():
        logp = torch.log_softmax(scorer.model(input_ids=ids).logits[0].float(), -1)
    positions = range(len(prompt) - 1, len(prompt) + len(target) - 1)
    return float(np.mean([logp[pos, ids[0, pos + 1]].item() for pos in positions]))


def test_causal_kind_detected_and_fingerprinted(causal):
    assert causal.model_kind == "causal"
    assert isinstance(causal.fingerprint, str) and len(causal.fingerprint) == 32


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2_dir):
    scorer = QuestionLikelihoodScorer(str(tiny_gpt2_dir), precision="fp32", device="cpu", batch_size=3)
    scorer.warm_up()
    return scorer


@pytest.mark.parametrize("which", ["causal", "gpt2"])
def test_causal_matches_unbatched_reference(which, request, passages):
    causal = request.getfixturevalue(which)  # Llama (rotary positions) and GPT-2 (absolute positions)
    for question in QUESTIONS:
        got = causal.score(question, passages)
        want = [reference_causal(causal, question, p) for p in passages]
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_causal_scores_independent_of_batch_composition(causal, passages):
    together = causal.score_pairs([QUESTIONS[0], QUESTIONS[1]] * 2, passages)
    alone = np.array([causal.score_pairs([q], [p])[0] for q, p in zip([QUESTIONS[0], QUESTIONS[1]] * 2, passages)])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_scores_follow_input_order(causal, passages):
    forward = causal.score(QUESTIONS[0], passages)
    backward = causal.score(QUESTIONS[0], passages[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
    assert len(set(np.round(forward, 5))) == len(passages)  # distinct passages get distinct scores


def test_score_topk_shape_matches_pairs(causal, passages):
    grid = causal.score_topk(QUESTIONS, [passages[:3], passages[1:]])
    assert grid.shape == (2, 3)
    np.testing.assert_allclose(grid[1], causal.score(QUESTIONS[1], passages[1:]), atol=1e-5)
    with pytest.raises(ValueError, match="same number"):
        causal.score_topk(QUESTIONS, [passages[:3], passages[:2]])


def test_seq2seq_matches_hf_loss(seq2seq, passages):
    assert seq2seq.model_kind == "seq2seq"
    tok = seq2seq.tokenizer
    got = seq2seq.score(QUESTIONS[0], passages)
    for score, passage in zip(got, passages):
        p = as_passage(passage)
        enc = tok(seq2seq.prompt.render_passage(p.title, p.text), return_tensors="pt")
        labels = tok(seq2seq.prompt.render_question(QUESTIONS[0]), add_special_tokens=False)["input_ids"]
        labels = torch.tensor([labels + [tok.eos_token_id]])
        with torch.no_grad():
            loss = seq2seq.model(**enc, labels=labels).loss.item()  # mean NLL over the target tokens
        assert score == pytest.approx(-loss, abs=1e-4)


def test_seq2seq_padding_invariant(seq2seq, passages):
    together = seq2seq.score_pairs(QUESTIONS * 2, passages)
    alone = [seq2seq.score_pairs([q], [p])[0] for q, p in zip(QUESTIONS * 2, passages)]
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "bf16-weights"])
def test_bf16_close_to_fp32(precision, tiny_causal_dir, causal, passages):
    bf16 = QuestionLikelihoodScorer(str(tiny_causal_dir), precision=precision, device="cpu")
    bf16.warm_up()
    assert bf16.resolved_precision == precision and bf16.fingerprint != causal.fingerprint
    assert (next(bf16.model.parameters()).dtype == torch.bfloat16) == (precision == "bf16-weights")
    np.testing.assert_allclose(bf16.score(QUESTIONS[0], passages), causal.score(QUESTIONS[0], passages), atol=0.05)


def test_lm_head_and_last_layer_run_in_fp32_under_bf16_autocast(tiny_causal_dir, causal, passages):
    """bf16 matmuls in the body, but the last decoder layer and the LM head at the question positions run in fp32."""
    bf16 = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="bf16", device="cpu")
    bf16.warm_up()
    assert bf16.uses_bf16 and bf16.causal_layout == "right"
    seen = []
    hook = bf16.model.get_output_embeddings().register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        bf16.score(QUESTIONS[1], passages)
    finally:
        hook.remove()
    assert seen and all(dtype == torch.float32 for dtype in seen)
    body = []
    hook = bf16.model.base_model.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, out: body.append(out.dtype))
    try:
        bf16.score(QUESTIONS[1], passages[:1])
    finally:
        hook.remove()
    assert body == [torch.bfloat16]  # the body still runs under autocast
    last = []
    hook = bf16.model.base_model.layers[-1].mlp.down_proj.register_forward_hook(
        lambda m, i, out: last.append(out.dtype)
    )
    try:
        bf16.score(QUESTIONS[1], passages[:1])
    finally:
        hook.remove()
    assert last == [torch.float32]  # ... but for the last decoder layer, which feeds the head
    assert torch.is_autocast_enabled("cpu") is False  # the layer's hooks left autocast as they found it


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_native_bf16_support(causal, monkeypatch, native):
    """``auto`` = bf16 autocast where bf16 is native (the shared encoders test), fp32 elsewhere; the resolved
    precision is part of the fingerprint, so fp32 and bf16 scores never share cache rows."""
    from spart.encoders import precision

    monkeypatch.setattr(precision, "bf16_supported", lambda device: native)
    auto = QuestionLikelihoodScorer(str(causal.model_name), device="cpu")
    auto.warm_up()
    assert auto.resolved_precision == ("bf16" if native else "fp32")
    assert auto.uses_bf16 is native
    assert (auto.fingerprint == causal.fingerprint) is (not native)  # `causal` is the fp32 fixture


def test_cache_serves_repeats_without_the_model(tiny_causal_dir, passages, tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path / "scores.sqlite")
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", cache=cache)
    scorer.warm_up()
    first = scorer.score(QUESTIONS[0], passages)
    assert len(cache) == len(passages)

    calls = []
    original = scorer._score_uncached
    monkeypatch.setattr(scorer, "_score_uncached", lambda q, p: calls.append(len(q)) or original(q, p))
    np.testing.assert_array_equal(scorer.score(QUESTIONS[0], passages), first)
    assert calls == []
    # an edited passage (same id) is rescored; the others still hit
    edited = [passages[0].__class__(passages[0].id, passages[0].text + " It is on the Seine.", "Paris")]
    scorer.score(QUESTIONS[0], edited + passages[1:])
    assert calls == [1]

    # a fresh scorer (as after a restart) reads the same file
    restarted = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", cache=ScoreCache(cache.path))
    restarted.warm_up()
    monkeypatch.setattr(restarted, "_score_uncached", lambda q, p: pytest.fail("cache miss after restart"))
    np.testing.assert_array_equal(restarted.score(QUESTIONS[0], passages), first)


def test_duplicate_pairs_scored_once(causal, passages, monkeypatch):
    seen = []
    original = causal._score_uncached
    monkeypatch.setattr(causal, "_score_uncached", lambda q, p: seen.append(len(q)) or original(q, p))
    scores = causal.score_pairs([QUESTIONS[0]] * 4, [passages[0], passages[1], passages[0], passages[1]])
    assert seen == [2] and scores[0] == scores[2]


def test_template_changes_scores_and_fingerprint(tiny_causal_dir, causal, passages):
    other = QuestionLikelihoodScorer(
        str(tiny_causal_dir), precision="fp32", prompt=PromptTemplate("Text: {text}\n", "Q: {question}")
    )
    other.warm_up()
    assert other.fingerprint != causal.fingerprint
    assert not np.allclose(other.score(QUESTIONS[0], passages), causal.score(QUESTIONS[0], passages))


def test_long_passages_truncated(tiny_causal_dir, passages):
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", max_passage_tokens=5)
    scorer.warm_up()
    long = {"id": "long", "title": "", "text": " ".join(["word"] * 2000)}
    prompt_ids = scorer._encode_prompts([as_passage(long)])[0]
    assert len(prompt_ids) < 40
    assert np.isfinite(scorer.score(QUESTIONS[0], [long])).all()


def test_bad_inputs(tiny_causal_dir, causal, passages):
    with pytest.raises(ValueError, match="question"):
        causal.score("  ", passages)
    with pytest.raises(ValueError, match="2 questions but 1"):
        causal.score_pairs(QUESTIONS, passages[:1])
    with pytest.raises(ValueError, match="no text"):
        causal.score(QUESTIONS[0], [{"id": "e", "text": ""}])
    assert causal.score(QUESTIONS[0], []).shape == (0,)
    with pytest.raises(RuntimeError, match="warm_up"):
        QuestionLikelihoodScorer(str(tiny_causal_dir)).score(QUESTIONS[0], passages)
    with pytest.raises(ValueError, match="precision"):
        QuestionLikelihoodScorer(precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        QuestionLikelihoodScorer(batch_size=0)
    with pytest.raises(FileNotFoundError):
        QuestionLikelihoodScorer("/nonexistent/teacher.gguf").warm_up()
    with pytest.raises(ValueError, match="chat template"):
        QuestionLikelihoodScorer(str(tiny_causal_dir), use_chat_template=True).warm_up()


def test_apply_lm_precision_needs_a_resolved_precision():
    from spart.teacher.loading import apply_lm_precision

    model = torch.nn.Linear(2, 2)
    for unresolved in ("auto", "fp16", "int8"):
        with pytest.raises(ValueError, match="resolved"):
            apply_lm_precision(model, unresolved, True, "cpu")
    assert apply_lm_precision(model, "fp32", True, "cpu") is False and model.weight.dtype == torch.float32
    assert apply_lm_precision(model, "bf16", True, "cpu") is True and model.weight.dtype == torch.float32
    assert apply_lm_precision(model, "bf16-weights", True, "cpu") is False and model.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("which", ["causal", "gpt2"])
def test_right_padded_layout_matches_left_padded(which, request, passages):
    scorer = request.getfixturevalue(which)  # Llama (rotary positions) and GPT-2 (absolute positions)
    assert scorer.causal_layout == "right"  # the default fast path, chosen by the warm-up check
    questions = [QUESTIONS[0], QUESTIONS[1], QUESTIONS[0], "Why?"]
    right = scorer.score_pairs(questions, passages)
    scorer.causal_layout = "left"
    try:
        left = scorer.score_pairs(questions, passages)
    finally:
        scorer.causal_layout = "right"
    np.testing.assert_allclose(right, left, atol=1e-5)
    assert len(set(np.round(right, 4))) == len(right)  # four different pairs, four different scores


def test_logits_post_processing_keeps_the_left_padded_layout(tiny_causal_dir, passages):
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", device="cpu", batch_size=3)
    scorer.warm_up()
    model = scorer.model
    plain_forward = model.forward

    def scaled_forward(*args, **kwargs):  # a model whose logits are not just the LM head's (cf. a logit scale)
        out = plain_forward(*args, **kwargs)
        out.logits = 4.0 * out.logits
        return out

    model.forward = scaled_forward
    try:
        assert scorer._pick_causal_layout() == "left"
        scorer.causal_layout = "left"
        got = scorer.score(QUESTIONS[0], passages)
        want = [reference_causal(scorer, QUESTIONS[0], p) for p in passages]  # the reference runs the full forward
        np.testing.assert_allclose(got, want, atol=1e-4)
    finally:
        model.forward = plain_forward


def test_a_model_the_right_padded_path_cannot_run_keeps_the_left_padded_layout(tiny_causal_dir, monkeypatch):
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32", device="cpu", batch_size=3)
    scorer.warm_up()

    def unusual_interface(prompts, targets):  # e.g. a base model that returns a plain tuple
        raise AttributeError("'tuple' object has no attribute 'last_hidden_state'")

    monkeypatch.setattr(scorer, "_forward_right", unusual_interface)
    assert scorer._pick_causal_layout() == "left"


def test_decoder_layers_finds_the_one_stack_of_num_hidden_layers(causal):
    import torch

    from spart.teacher.loading import decoder_layers

    layers = decoder_layers(causal.model)
    assert layers is causal.model.base_model.layers and len(layers) == causal.model.config.num_hidden_layers

    class NoStack(torch.nn.Module):  # a model whose layers are not one ModuleList of num_hidden_layers modules
        def __init__(self):
            super().__init__()
            self.config = causal.model.config
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

        @property
        def base_model(self):
            return self

    assert decoder_layers(NoStack()) is None
