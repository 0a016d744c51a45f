"""``spart adapt``'s command line maps onto :class:`AdaptOptions` (the stages are tested in tests/adaptation)."""

from __future__ import annotations

import pytest

from spart.cli import main


@pytest.fixture
def captured(monkeypatch):
    seen = {}

    class FakeAdaptation:
        def __init__(self, options):
            seen["options"] = options

        def run(self):
            return {"stages": {"report": {"seconds": 0.0, "report": "r.md"}}}

    monkeypatch.setattr("spart.adaptation.adapt.Adaptation", FakeAdaptation)
    return seen


def test_defaults_leave_the_method_and_the_view_to_the_run(captured, capsys):
    assert main(["adapt", "--corpus", "c.jsonl", "--out", "run"]) == 0
    o = captured["options"]
    assert (o.method, o.teachers, o.generator, o.batch_size, o.epochs) == (None, [], None, None, None)
    assert o.train_budget_minutes is None and o.passage_max_length is None
    assert (o.reindex_every, o.art_base_weight, o.instruction, o.select) == (0, 0.5, None, "latest")
    assert not o.fixed_candidates and not o.query_tower_only and o.art_teacher_temperature == "auto"
    assert (o.expander, o.expander_instruction, o.expander_max_new_tokens) == (None, None, 32)
    assert o.max_dev_questions == 500 and o.student_view is None  # the run's own, or the default
    out = capsys.readouterr().out
    assert "report: r.md" in out and "expansion" not in out


def test_the_expander_options_are_passed_and_its_pipeline_printed(captured, monkeypatch, capsys):
    class Finished:
        def __init__(self, options):
            captured["options"] = options

        def run(self):
            expand = {"seconds": 1.0, "expander": "lm", "pipeline": "expand_qa.yaml"}
            return {"stages": {"expand": expand, "report": {"seconds": 0.0, "report": "r.md"}}}

    monkeypatch.setattr("spart.adaptation.adapt.Adaptation", Finished)
    argv = ["adapt", "--corpus", "c.jsonl", "--out", "run", "--expander", "lm", "--expander-tokens", "64"]
    assert main([*argv, "--expander-instruction", "About Python: {question}", "--report-dataset", "labelled"]) == 0
    o = captured["options"]
    assert (o.expander, o.expander_instruction, o.expander_max_new_tokens) == ("lm", "About Python: {question}", 64)
    assert o.report_dataset == "labelled"
    assert "query expansion pipeline (lm):" in capsys.readouterr().out


def test_art_teachers_budget_and_lengths_are_passed(captured):
    argv = ["adapt", "--corpus", "c.jsonl", "--out", "run", "--method", "art", "--teacher", "q=lm", "--teacher"]
    argv += ["smollm2", "--train-budget", "30", "--passage-max-length", "128", "--generation-batch-size", "8"]
    argv += ["--exports", "2", "--art-base-weight", "audit", "--epochs", "1.5", "--instruction", "Ask a quiz question."]
    argv += ["--select", "best", "--fixed-candidates", "--query-tower-only", "--art-teacher-temperature", "0.5"]
    assert main([*argv, "--student-view"]) == 0
    o = captured["options"]
    assert (o.method, o.teachers, o.train_budget_minutes) == ("art", ["q=lm", "smollm2"], 30.0)
    assert (o.passage_max_length, o.generation_batch_size, o.exports) == (128, 8, 2)
    assert (o.art_base_weight, o.epochs, o.instruction, o.select) == (None, 1.5, "Ask a quiz question.", "best")
    assert o.fixed_candidates and o.query_tower_only and o.art_teacher_temperature == 0.5 and o.student_view
    assert main([*argv, "--no-student-view"]) == 0 and captured["options"].student_view is False


@pytest.mark.parametrize(("flag", "expected"), [("0", None), ("40", 40)])
def test_max_dev_caps_pseudo_dev_and_zero_lifts_the_cap(captured, flag, expected):
    assert main(["adapt", "--corpus", "c.jsonl", "--out", "run", "--max-dev", flag]) == 0
    assert captured["options"].max_dev_questions == expected


def test_unknown_method_is_refused(captured, capsys):
    with pytest.raises(SystemExit):
        main(["adapt", "--corpus", "c.jsonl", "--out", "run", "--method", "magic"])
    assert "invalid choice" in capsys.readouterr().err
