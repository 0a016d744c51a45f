"""The audit's pieces: teacher specs, the verdict rule and the report table."""

from __future__ import annotations

import pytest

from spart.adaptation.audit import AuditReport, TeacherSpec, objective_for, verdict


def test_teacher_spec_parse():
    assert TeacherSpec.parse("smollm2") == TeacherSpec("smollm2", None)
    assert TeacherSpec.parse("qwen=models/qwen-0.5b") == TeacherSpec("qwen", "models/qwen-0.5b")
    assert TeacherSpec.parse("models/qwen-0.5b/") == TeacherSpec("qwen-0.5b", "models/qwen-0.5b/")
    with pytest.raises(ValueError, match="LABEL=MODEL"):
        TeacherSpec.parse("=x")


@pytest.mark.parametrize(
    ("best", "p", "call"),
    [(0.60, 0.01, "help"), (0.60, 0.4, "uncertain"), (0.60, None, "uncertain"), (0.50, 0.01, "no"), (0.55, 0.5, "no")],
)
def test_verdict(best, p, call):
    v = verdict(0.55, best, p, "qwen", "base + qwen (w=0.5)", "ndcg@10")
    assert v["call"] == call and v["delta"] == pytest.approx(best - 0.55)
    assert "qwen" in v["text"] and "0.550" in v["text"]


def test_report_markdown_formats_dpr_as_percentages():
    report = AuditReport(
        "wiki/test",
        "dpr",
        "top5",
        20,
        rows=[{"system": "base", "summary": {"top1": 0.165, "top5": 0.286, "top20": 0.444}}],
        verdicts={"smollm2": {"text": "ART with smollm2 expected to help"}},
    )
    table = report.to_markdown()
    assert "| base | 16.5 | 28.6 | 44.4 |" in table and "expected to help" in table


def test_objective_follows_the_rerank_depth_on_dpr_sets():
    assert objective_for("beir", 20) == objective_for("beir", 100) == "ndcg@10"
    assert objective_for("dpr", 20) == "top5"  # a rerank of the top 20 leaves top-20 as it was
    assert objective_for("dpr", 40) == "top20"


def test_teacher_spec_picks_the_rerank_pipeline_of_its_kind(tiny_encoder_dir, tiny_causal_dir):
    encoder = TeacherSpec.parse(f"enc={tiny_encoder_dir}")
    assert encoder.is_encoder
    name, ranker = encoder.rerank_pipeline(weight=0.25, batch_size=4, cache_path="c.sqlite")
    assert name == "dense_encoder_rerank_qa"
    assert ranker == {"model": str(tiny_encoder_dir), "retriever_weight": 0.25}  # no LM cache, no LM budget
    lm = TeacherSpec.parse(f"lm={tiny_causal_dir}")
    assert not lm.is_encoder and not TeacherSpec.parse("smollm2").is_encoder
    name, ranker = lm.rerank_pipeline(weight=0.5, batch_size=4, cache_path="c.sqlite", max_passage_tokens=64)
    assert name == "dense_rerank_qa"
    assert ranker == {
        "model": str(tiny_causal_dir),
        "gguf_file": None,
        "retriever_weight": 0.5,
        "batch_size": 4,
        "max_passage_tokens": 64,
        "cache_path": "c.sqlite",
    }
