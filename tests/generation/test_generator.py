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
