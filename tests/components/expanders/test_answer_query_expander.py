"""AnswerQueryExpander over a tiny random causal LM: options, serialisation, and the answer it passes on."""

from __future__ import annotations

import pytest
from haystack import Pipeline

from spart.components.expanders import AnswerQueryExpander
from spart.generation import QuestionGenerator


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_kind": "decoder"}, "model_kind"),
        ({"precision": "fp8"}, "precision"),
        ({"instruction": "Answer briefly."}, "question"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnswerQueryExpander(**kwargs)


def test_init_is_light_and_round_trips(tiny_causal_dir):
    expander = AnswerQueryExpander(model=str(tiny_causal_dir), max_new_tokens=6, precision="fp32", device="cpu")
    assert expander._generator is None
    data = expander.to_dict()
    assert data["init_parameters"]["model"] == str(tiny_causal_dir)
    assert data["init_parameters"]["max_new_tokens"] == 6
    assert AnswerQueryExpander.from_dict(data).to_dict() == data


def test_run_returns_the_lm_greedy_answer_to_the_instruction(tiny_causal_dir):
    instruction = "Q: {question} {not a placeholder}"
    expander = AnswerQueryExpander(
        model=str(tiny_causal_dir), instruction=instruction, max_new_tokens=5, precision="fp32", device="cpu"
    )
    query = "which country was formerly called abyssinia?"
    out = expander.run(query=query)  # warms up on its own
    assert set(out) == {"expansion"} and isinstance(out["expansion"], str)
    assert out["expansion"] == out["expansion"].strip()
    reference = QuestionGenerator(str(tiny_causal_dir), max_new_tokens=5, temperature=0, precision="fp32", device="cpu")
    reference.warm_up()
    message = f"Q: {query} {{not a placeholder}}"
    assert out["expansion"] == reference.reply([message])[0].strip()
    assert expander.run(query=query) == out  # greedy: the same answer every time
    for bad in ("", "  ", None):
        with pytest.raises(ValueError, match="query"):
            expander.run(query=bad)


def test_in_a_pipeline_yaml_round_trip(tiny_causal_dir):
    pipeline = Pipeline()
    pipeline.add_component("expander", AnswerQueryExpander(model=str(tiny_causal_dir), max_new_tokens=3))
    restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert restored.to_dict() == pipeline.to_dict()
