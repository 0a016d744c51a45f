"""QuestionGenerator over tiny random causal and seq2seq LMs: shapes, seeding, options."""

from __future__ import annotations

import pytest
from _tiny_models import build_tiny_t5

from spart.data import Passage
from spart.generation import QuestionGenerator

PASSAGES = [Passage(f"p{i}", f"passage number {i} about rivers and engines " * (i + 1), f"T{i}") for i in range(5)]


def test_causal_generation_is_seeded_and_one_reply_per_passage(tiny_causal_dir):
    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, batch_size=2, precision="fp32")
    with pytest.raises(RuntimeError, match="warm_up"):
        gen.generate(PASSAGES)
    gen.warm_up()
    assert gen.model_kind == "causal" and gen.use_chat_template is False  # no chat template on this tokenizer
    first = gen.generate(PASSAGES, seed=1)
    assert len(first) == 5 and all(isinstance(r, str) for r in first)
    assert gen.generate(PASSAGES, seed=1) == first
    greedy = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, precision="fp32")
    greedy.warm_up()
    assert greedy.generate(PASSAGES[:2], seed=1) == greedy.generate(PASSAGES[:2], seed=9)
    assert gen.settings()["fingerprint"] and gen.settings() != greedy.settings()


def test_generate_is_reply_to_the_passage_messages(tiny_causal_dir):
    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=4, temperature=0, batch_size=2, precision="fp32")
    with pytest.raises(RuntimeError, match="warm_up"):
        gen.reply(["What is a river?"])
    gen.warm_up()
    messages = [gen.prompt.user_message(p.title, p.text) for p in PASSAGES[:3]]
    assert gen.generate(PASSAGES[:3]) == gen.reply(messages, cue="Question")
    assert gen._prompts(messages[:1], "Answer")[0].endswith("\n\nAnswer:")
    assert gen.reply([]) == []


def test_seq2seq_generation(tmp_path, minilm_dir):
    t5 = build_tiny_t5(tmp_path / "t5", minilm_dir)
    gen = QuestionGenerator(str(t5), max_new_tokens=4, precision="fp32")
    gen.warm_up()
    assert gen.model_kind == "seq2seq"
    assert len(gen.generate(PASSAGES[:3])) == 3
    assert gen.generate([]) == []


def test_bad_options_are_clear_errors(tiny_causal_dir):
    with pytest.raises(ValueError, match="max_new_tokens"):
        QuestionGenerator(max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        QuestionGenerator(temperature=-1)
    with pytest.raises(ValueError, match="precision"):
        QuestionGenerator(precision="fp8")
    gen = QuestionGenerator(str(tiny_causal_dir), use_chat_template=True)
    with pytest.raises(ValueError, match="chat template"):
        gen.warm_up()


@pytest.mark.parametrize(("native", "batch_size"), [(True, 1), (True, 4), (False, 1), (False, 4)])
def test_auto_precision_follows_native_bf16_and_the_batch_size(tiny_causal_dir, monkeypatch, native, batch_size):
    """``auto``: where bf16 is native, int8 weight copies (bf16 weights, no autocast) one message at a time on the
    CPU and bf16 autocast (fp32 weights) for batches; fp32 elsewhere. Replies stay one string per message."""
    import torch

    from spart.encoders import precision

    monkeypatch.setattr(precision, "bf16_supported", lambda device: native)
    auto = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=4, temperature=0, batch_size=batch_size, device="cpu")
    auto.warm_up()
    expected = "fp32" if not native else ("int8-weights" if batch_size == 1 else "bf16")
    assert auto.resolved_precision == expected
    assert auto.uses_bf16 is (expected == "bf16")  # bf16 weights need no autocast
    held = torch.bfloat16 if expected == "int8-weights" else torch.float32
    assert auto.model.get_input_embeddings().weight.dtype == held
    replies = auto.reply(["What is a river?", "Where is the engine?"])
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)


def test_auto_resolution_without_the_int8_kernel_or_on_a_gpu(monkeypatch):
    import torch

    from spart.generation.generator import auto_generation_precision

    assert auto_generation_precision(True, 1, "cpu") == "int8-weights"
    assert auto_generation_precision(True, 1, "cuda") == "bf16-weights"  # the int8 path is the CPU's
    assert auto_generation_precision(True, 8, "cpu") == "bf16" and auto_generation_precision(False, 1, "cpu") == "fp32"
    monkeypatch.delattr(torch, "_weight_int8pack_mm")
    assert auto_generation_precision(True, 1, "cpu") == "bf16-weights"


@pytest.mark.parametrize(
    ("requested", "dtype_is_bf16", "autocast"), [("bf16", False, True), ("bf16-weights", True, False)]
)
def test_explicit_bf16_precisions(tiny_causal_dir, requested, dtype_is_bf16, autocast):
    import torch

    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=3, temperature=0, precision=requested, device="cpu")
    gen.warm_up()
    assert gen.resolved_precision == requested and gen.uses_bf16 is autocast
    assert (next(gen.model.parameters()).dtype == torch.bfloat16) is dtype_is_bf16
    # under autocast the linear layers hold bf16 weights (not recast at every token), the embedding stays fp32
    linear = [m.weight.dtype for m in gen.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and set(linear) == {torch.bfloat16}
    assert gen.model.get_input_embeddings().weight.dtype == (torch.bfloat16 if dtype_is_bf16 else torch.float32)
    assert len(gen.reply(["What is a river?"])) == 1


def test_int8_weights_decode_with_int8_copies_and_the_teacher_refuses_them(tiny_causal_dir, monkeypatch):
    import torch

    from spart.teacher.int8_weights import Int8WeightLinear
    from spart.teacher.likelihood import QuestionLikelihoodScorer

    gen = QuestionGenerator(
        str(tiny_causal_dir), max_new_tokens=4, temperature=0, batch_size=1, precision="int8-weights", device="cpu"
    )
    gen.warm_up()
    assert gen.resolved_precision == "int8-weights" and gen.uses_bf16 is False
    assert any(isinstance(m, Int8WeightLinear) for m in gen.model.modules())
    assert not any(isinstance(m, torch.nn.Linear) for m in gen.model.modules())
    rows = []
    real = torch._weight_int8pack_mm
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda *a: rows.append(a[0].shape[0]) or real(*a))
    messages = [INSTRUCTION + q for q in QUESTIONS]
    replies = gen.reply(messages, prefix=INSTRUCTION)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert rows and set(rows) == {1}  # decoded tokens, one row each; prompts ran on the bf16 weights
    with pytest.raises(ValueError, match="precision"):
        QuestionLikelihoodScorer(str(tiny_causal_dir), precision="int8-weights")


@pytest.mark.parametrize("kind", ["llama", "llama-tied", "t5"])
def test_linear_weights_held_in_bf16_give_autocast_s_numbers_without_casts(tmp_path, minilm_dir, kind):
    """hold_linear_weights_in_bf16: the same logits as bf16 autocast over fp32 weights, bit for bit, and no weight
    cast in a forward pass (the casts autocast repeats at every generated token under inference mode)."""
    import copy

    import torch
    from _tiny_models import build_tiny_causal
    from torch.profiler import profile, record_function
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from spart.teacher.loading import hold_linear_weights_in_bf16

    if kind == "t5":
        model = AutoModelForSeq2SeqLM.from_pretrained(build_tiny_t5(tmp_path / "m", minilm_dir))
    else:
        config = AutoConfig.from_pretrained(build_tiny_causal(tmp_path / "m", minilm_dir))
        config.tie_word_embeddings = kind == "llama-tied"
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
    model.eval().requires_grad_(False)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied is (kind != "llama")  # T5 ties its head by default
    ids = torch.randint(5, 1000, (3, 17), generator=torch.Generator().manual_seed(0))
    extra = {"decoder_input_ids": ids[:, :5]} if kind == "t5" else {}

    shapes = [list(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]

    def forward(m):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            with profile(record_shapes=True) as prof, record_function("forward"):
                logits = m(input_ids=ids, **extra).logits
        weight_casts = sum(
            e.count
            for e in prof.key_averages(group_by_input_shape=True)
            if e.key == "aten::_to_copy" and e.input_shapes and list(e.input_shapes[0]) in shapes
        )
        return logits, weight_casts

    expected, casts_before = forward(model)
    held = copy.deepcopy(model)
    linear = [m for m in held.modules() if isinstance(m, torch.nn.Linear)]
    assert hold_linear_weights_in_bf16(held) == len(linear) > 0
    got, casts_after = forward(held)
    assert torch.equal(got, expected)
    assert casts_before >= len(linear) and casts_after == 0
    assert {m.weight.dtype for m in linear} == {torch.bfloat16}
    assert held.get_input_embeddings().weight.dtype == torch.float32  # a tied one too: the head got its own copy
    assert model.get_input_embeddings().weight.dtype == torch.float32  # the original is untouched


QUESTIONS = ["What is a river?", "Where is the engine of the train?", "Who built the bridge?"]
INSTRUCTION = "Answer this question in a few words about rivers and engines.\nQuestion: "


@pytest.mark.parametrize("chat", [False, True])
def test_shared_prefix_is_run_once_and_gives_the_same_replies(tiny_causal_dir, monkeypatch, chat):
    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, batch_size=1, precision="fp32")
    gen.warm_up()
    if chat:  # a template with a system turn, as instruct LMs have
        gen.tokenizer.chat_template = (
            "system: be brief.\n{% for m in messages %}user: {{ m['content'] }}\n{% endfor %}assistant:"
        )
        gen.use_chat_template = True
    messages = [INSTRUCTION + q for q in QUESTIONS]
    plain = gen.reply(messages)
    seen = []
    generate = gen.model.generate
    monkeypatch.setattr(gen.model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    assert gen.reply(messages, prefix=INSTRUCTION) == plain
    first_cache = gen._prefix[1]
    assert len(first_cache[0]) >= 5  # the instruction's tokens (and the template's head)
    assert all(any(k in kw for k in ("cache", "past_key_values")) for kw in seen)  # every prompt reused it
    assert gen.reply(messages[:1], prefix=INSTRUCTION) == plain[:1] and gen._prefix[1] is first_cache  # kept
    # the cached prefix is never extended in place: a second pass gives the same replies
    assert gen.reply(messages, prefix=INSTRUCTION) == plain


@pytest.mark.parametrize("chat", [False, True])
def test_a_batch_shares_the_prefix_with_its_padding_after_it(tiny_causal_dir, monkeypatch, chat):
    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, batch_size=2, precision="fp32")
    gen.warm_up()
    if chat:
        gen.tokenizer.chat_template = (
            "system: be brief.\n{% for m in messages %}user: {{ m['content'] }}\n{% endfor %}assistant:"
        )
        gen.use_chat_template = True
    with pytest.raises(ValueError, match="prefix"):
        gen.reply(["Where is it?"], prefix=INSTRUCTION)
    messages = [INSTRUCTION + q for q in QUESTIONS]  # questions of different lengths: the first batch is padded
    plain = gen.reply(messages)
    seen = []
    generate = gen.model.generate
    monkeypatch.setattr(gen.model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    assert gen.reply(messages, prefix=INSTRUCTION) == plain
    head = gen._prefix[1][0].tolist()
    assert len(seen) == 2 and all(any(k in kw for k in ("cache", "past_key_values")) for kw in seen)
    first = seen[0]
    ids, mask = first["input_ids"], first["attention_mask"]
    assert ids.shape[0] == 2 and all(row[: len(head)].tolist() == head for row in ids)  # the prefix leads each row
    lengths = [
        len(gen.tokenizer(p, add_special_tokens=gen._add_special)["input_ids"])
        for p in gen._prompts(messages[:2], "Answer")
    ]
    assert mask.sum(1).tolist() == lengths and mask[:, : len(head)].all()  # padding only after the prefix
    assert lengths[0] != lengths[1]


def test_generate_runs_the_prompts_shared_start_once(tiny_causal_dir, monkeypatch):
    from spart.data import Passage

    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, batch_size=2, precision="fp32")
    gen.warm_up()
    passages = [Passage(f"p{i}", "The river flows past the old mill " * (i + 1), f"Mill {i}") for i in range(3)]
    plain = gen.reply([gen.prompt.user_message(p.title, p.text) for p in passages], cue="Question")
    seen = []
    generate = gen.model.generate
    monkeypatch.setattr(gen.model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    assert gen.generate(passages) == plain
    assert len(seen) == 2 and all(any(k in kw for k in ("cache", "past_key_values")) for kw in seen)


def test_a_cache_that_cannot_be_repeated_falls_back_to_whole_prompts(tiny_causal_dir, monkeypatch):
    gen = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, batch_size=2, precision="fp32")
    gen.warm_up()
    messages = [INSTRUCTION + q for q in [*QUESTIONS, "Why?"]]  # two batches of two
    plain = gen.reply(messages)
    ids, _ = gen._prefix_cache(INSTRUCTION, "Answer")
    gen._prefix = ((INSTRUCTION, "Answer"), (ids, object()))  # a cache type without batch_repeat_interleave
    seen = []
    generate = gen.model.generate
    monkeypatch.setattr(gen.model, "generate", lambda **kw: seen.append(kw) or generate(**kw))
    assert gen.reply(messages, prefix=INSTRUCTION) == plain
    assert len(seen) == 2 and not any("cache" in kw or "past_key_values" in kw for kw in seen)
