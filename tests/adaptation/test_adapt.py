"""``spart adapt`` end to end on tiny random models: every stage runs, writes its outputs, and a rerun resumes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _fake_generation import FakeGenerator

from spart.adaptation.adapt import STAGES, Adaptation, AdaptOptions
from spart.adaptation.audit import TEACHER_PASSAGE_TOKENS


def write_corpus(path, n_docs=8, per_doc=4):
    topics = ["apple", "river", "engine", "violin", "glacier", "python", "desert", "comet"]
    with open(path, "w") as f:
        for d in range(n_docs):
            for j in range(per_doc):
                text = f"{topics[d]} w{d}x{j} k{j}y{d} z{d}{j} " + " ".join(f"{topics[d]}{i}" for i in range(25))
                f.write(json.dumps({"_id": f"p{d}-{j}", "title": f"Doc {d}", "text": text}) + "\n")
    return path


@pytest.fixture
def options(tmp_path, tiny_bert_dir, tiny_causal_dir):
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    questions = tmp_path / "real.txt"
    questions.write_text("what about apple?\nhow does the river flow?\n")
    return AdaptOptions(
        corpus=str(corpus),
        out=str(tmp_path / "run"),
        questions=str(questions),
        model=str(tiny_bert_dir),
        method="art",
        teachers=[f"tiny={tiny_causal_dir}"],
        num_passages=32,
        filter_top_k=0,
        dev_fraction=0.5,
        weights=(0.0, 0.5),
        depth=5,
        steps=2,
        batch_size=4,
        top_k=3,
        reindex_every=1,
        exports=2,
        teacher_batch_size=4,
        train_anyway=True,
        progress=False,
    )


def test_adapt_runs_every_stage_and_resumes(options, tmp_path):
    state = Adaptation(options, generator=FakeGenerator()).run()
    out = tmp_path / "run"
    assert list(state["stages"]) == list(STAGES)
    assert state["stages"]["questions"]["stats"]["pseudo-dev"] == 16
    assert state["stages"]["audit"]["teacher"] == "tiny"
    assert state["stages"]["train"]["steps"] == 2 and state["stages"]["train"]["questions"] == 18  # 2 real + 16
    # ART's target mixes in the base score at the fixed default weight, whatever the audit's pseudo-dev pick was
    assert state["stages"]["train"]["base_weight"] == 0.5
    config = (out / "art" / "config.yaml").read_text()
    assert "base_weight: 0.5" in config and "grad_cache_chunk: 64" in config
    curve = state["stages"]["select"]["curve"]
    assert [p["step"] for p in curve] == ["base", 1, 2]
    assert all("ndcg@10" in p["pseudo_dev"] for p in curve)
    selected = state["stages"]["select"]
    why = selected["selection"]  # the default rule: the last step unless pseudo-dev finds another significantly better
    assert why["rule"] == "latest" and why["latest"] == 2 and set(why["versus"]) == {"base", "1"}
    if selected["selected"] == "base":  # the base is kept whenever it scores at least as high as the last step
        assert why["versus"]["base"]["difference"] >= 0
    elif selected["selected"] != 2:
        assert why["versus"][str(selected["selected"])]["p"] < why["alpha"]
    if selected["selected"] != "base":
        assert (out / "model" / "spart.json").exists()
        from sentence_transformers import SentenceTransformer

        assert SentenceTransformer(str(out / "model"), device="cpu").encode(["a question?"]).shape[0] == 1
    assert (out / "hybrid_qa.yaml").exists() and state["stages"]["hybrid"]["mode"]
    assert state["stages"]["expand"] == {"seconds": 0.0, "skipped": "no expander LM given (--expander)"}
    assert not (out / "expand_qa.yaml").exists()
    report = (out / "report.md").read_text()
    assert "Audit on pseudo-dev" in report and "Learning curve" in report and "| train |" in report
    assert "Rule `latest`: the last step (2)" in report and "| base | " in report
    assert "## Is it better than the encoder you had?" in report  # no labelled set: never a plain yes
    assert "## Query expansion" not in report
    usage = report.split("## Use it")[1]
    assert "pipe = load_pipeline('hybrid_qa.yaml')" in usage and "expand_qa.yaml" not in usage
    kept = "The run kept the base encoder: `model/` is a copy of it" in usage  # a base given by path is copied
    assert kept == (selected["selected"] == "base") and ("`model/` is the adapted encoder" in usage) != kept
    assert ("**No.**" if selected["selected"] == "base" else "**Not shown.**") in report and "**Yes.**" not in report
    audit = json.loads((out / "audit-pseudo-dev.json").read_text())
    assert [r["system"] for r in audit["rows"]] == ["base", "bm25", "hybrid", "base + tiny", "base + tiny (w=0.5)"]
    for row in audit["rows"][1:]:  # a p-value against the base for every metric, the objective's also on its own
        assert set(row["p_values"]) == set(row["summary"]) and row["p_value"] == row["p_values"][audit["objective"]]

    class Exploding(FakeGenerator):
        def generate(self, passages, seed=0):
            raise AssertionError("a finished stage ran again")

    again = Adaptation(options, generator=Exploding()).run()  # everything done: nothing runs
    assert again["stages"] == state["stages"]

    # rerank: a pipeline only where the audit expects the teacher's rerank to help (forced both ways here)
    assert ("skipped" in state["stages"]["rerank"]) != (out / "rerank_qa.yaml").exists()
    adaptation = Adaptation(options, generator=Exploding())
    audit = adaptation.state["stages"]["audit"]
    audit["call"] = "no"
    assert "does not expect tiny's rerank to help" in adaptation.stage_rerank()["skipped"]
    audit["call"], audit["weight"] = "help", 0.5
    result = adaptation.stage_rerank()
    assert (result["teacher"], result["weight"], result["depth"]) == ("tiny", 0.5, options.depth)
    from spart.evaluation.loading import load_any_pipeline

    pipeline = load_any_pipeline(str(out / "rerank_qa.yaml"))
    ranker = pipeline.get_component("ranker")
    assert ranker.model == options.teachers[0].split("=", 1)[1] and ranker.retriever_weight == 0.5
    assert ranker.max_passage_tokens == TEACHER_PASSAGE_TOKENS  # as audited, so the audit's cached scores serve it
    assert pipeline.get_component("dense_retriever").top_k == options.depth
    query = "what about apple?"
    docs = pipeline.run({"text_embedder": {"text": query}, "ranker": {"query": query}})["ranker"]["documents"]
    assert 0 < len(docs) <= options.depth
    # with a labelled set, the written pipeline is measured against the dense retrieval alone, for the report
    assert "versus_plain" not in result
    adaptation.o.report_dataset, adaptation.o.report_split = str(write_labelled(tmp_path)), "test"
    measured = adaptation.stage_rerank()
    assert measured["report_metric"] == "ndcg@10" and measured["versus_plain"]["n_queries"] == 4
    assert measured["seconds_per_question"]["pipeline"] > 0
    from spart.adaptation.report import write_report

    adaptation.state["stages"]["rerank"] = {"seconds": 1.0, **measured}
    section = write_report(out, adaptation.state).read_text().split("## Rerank")[1].split("\n## ")[0]
    assert "| metric | dense alone | reranked | difference | p (paired) |" in section and "| ndcg@10 |" in section
    assert "The LM reads every candidate at query time" in section


def test_adapt_pairs_fine_tunes_on_the_generated_pairs_without_a_teacher(options, tmp_path):
    import torch

    from spart.encoders import DualEncoder

    options.method, options.teachers, options.train_anyway = "pairs", [], False
    options.lr = 1e-3
    state = Adaptation(options, generator=FakeGenerator()).run()
    out = tmp_path / "run"
    train = state["stages"]["train"]
    assert train["method"] == "pairs" and train["pairs"] == 16 and train["steps"] == 2
    audit = json.loads((out / "audit-pseudo-dev.json").read_text())
    assert [r["system"] for r in audit["rows"]] == ["base", "bm25", "hybrid"]  # no teacher: no LM scored anything
    assert state["stages"]["audit"]["teacher"] is None
    assert state["stages"]["rerank"]["skipped"].startswith("no teacher was audited")
    assert not (out / "teacher-scores.sqlite").exists()
    assert [p["step"] for p in state["stages"]["select"]["curve"]] == ["base", 1, 2]
    # the exported checkpoint keeps the base model's pooling, normalisation and lengths, with new weights
    base = DualEncoder.load(options.model, device="cpu")
    tuned = DualEncoder.load(out / "checkpoints" / "step-00000002", device="cpu")
    assert (tuned.config.pooling, tuned.config.normalize) == (base.config.pooling, base.config.normalize)
    assert tuned.config.passage_max_length == base.config.passage_max_length
    moved = [not torch.equal(a, b) for a, b in zip(base.query_model.parameters(), tuned.query_model.parameters())]
    assert any(moved)
    assert "| train |" in (out / "report.md").read_text()


def test_adapt_train_budget_stops_training_and_selects_among_the_steps_reached(options):
    options.method, options.teachers, options.steps = "pairs", [], 4
    options.train_budget_minutes = 1e-9  # spent after the first step
    state = Adaptation(options, generator=FakeGenerator()).run()
    train = state["stages"]["train"]
    assert train["steps"] == 4 and train["stopped_at"] == 1 and train["exports"] == [0, 1]
    assert [p["step"] for p in state["stages"]["select"]["curve"]] == ["base", 1]


def test_adapt_method_defaults_and_the_art_base_weight_option(options):
    import argparse

    from spart.cli.adapt import parse_base_weight, parse_teacher_temperature

    options.epochs = options.batch_size = options.steps = None
    adaptation = Adaptation(options, generator=FakeGenerator())
    assert (adaptation.epochs, adaptation.batch_size) == (2.0, 16)  # ART
    assert adaptation._steps(40)[0] == 5  # 2 epochs of 40 questions, 16 per step
    options.method, options.out = "pairs", options.out + "-pairs"
    assert (Adaptation(options).epochs, Adaptation(options).batch_size) == (3.0, 32)
    options.art_base_weight = 1.5
    with pytest.raises(ValueError, match="art_base_weight"):
        Adaptation(options)
    assert parse_base_weight("audit") is None and parse_base_weight("0.25") == 0.25
    with pytest.raises(argparse.ArgumentTypeError, match="art-base-weight"):
        parse_base_weight("2")
    options.art_base_weight = 0.5
    for bad in (0, -1.0, "warm"):
        options.art_teacher_temperature = bad
        with pytest.raises(ValueError, match="art_teacher_temperature must be a positive number or 'auto'"):
            Adaptation(options)
    assert parse_teacher_temperature("auto") == "auto" and parse_teacher_temperature("0.4") == 0.4
    for bad in ("0", "-2", "warm"):
        with pytest.raises(argparse.ArgumentTypeError, match="art-teacher-temperature"):
            parse_teacher_temperature(bad)


def test_adapt_rejects_an_unknown_method(options):
    options.method = "magic"
    with pytest.raises(ValueError, match="method"):
        Adaptation(options, generator=FakeGenerator())


def test_adapt_refuses_other_options_in_the_same_directory(options):
    Adaptation(options, generator=FakeGenerator())  # records the options
    options.lr = 1e-3
    with pytest.raises(ValueError, match="lr"):
        Adaptation(options, generator=FakeGenerator())


def test_adapt_passes_its_instruction_to_the_question_writer(options, monkeypatch):
    import spart.generation

    made = []

    class Recording(FakeGenerator):
        def __init__(self, model=None, batch_size=4, prompt=None):
            super().__init__(batch_size=batch_size, prompt=prompt)
            made.append((model, self.prompt))

    monkeypatch.setattr(spart.generation, "QuestionGenerator", Recording)
    options.generator, options.instruction = "some-lm", "Write a quiz question that describes the answer."
    result = Adaptation(options).stage_questions()
    assert [(model, prompt.instruction) for model, prompt in made] == [("some-lm", options.instruction)]
    assert result["instruction"] == options.instruction and result["stats"]["pseudo-dev"] == 16


def test_adapt_student_view_shows_the_question_writer_the_training_passage_length(options, tmp_path):
    from spart.adaptation.report import write_report

    options.student_view = True
    adaptation = Adaptation(options, generator=FakeGenerator())
    adaptation._finish("questions", 1.0, **adaptation.stage_questions())
    assert "(`--student-view`)" in write_report(adaptation.out, adaptation.state).read_text()
    recorded = json.loads((tmp_path / "run" / "questions" / "generation.json").read_text())["generation"]
    assert recorded["student_passage_tokens"] == 128  # ART's training length
    options.passage_max_length, options.out = 64, str(tmp_path / "other")
    Adaptation(options, generator=FakeGenerator()).stage_questions()
    recorded = json.loads((tmp_path / "other" / "questions" / "generation.json").read_text())["generation"]
    assert recorded["student_passage_tokens"] == 64


def test_student_view_not_chosen_is_the_default_for_a_new_run_and_what_a_resumed_run_used(options, tmp_path):
    from dataclasses import replace

    from spart.adaptation.adapt import STATE, STUDENT_VIEW_DEFAULT

    assert options.student_view is None
    assert Adaptation(options).o.student_view is STUDENT_VIEW_DEFAULT
    assert Adaptation(options).o.student_view is STUDENT_VIEW_DEFAULT  # recorded, so resumed alike
    with pytest.raises(ValueError, match="student_view"):
        Adaptation(replace(options, student_view=not STUDENT_VIEW_DEFAULT))  # changing it needs another --out
    # a run recorded before the option existed wrote its questions from whole passages: it resumes that way
    state_path = tmp_path / "run" / STATE
    state = json.loads(state_path.read_text())
    del state["options"]["student_view"]
    state_path.write_text(json.dumps(state))
    assert Adaptation(options).o.student_view is False
    assert json.loads(state_path.read_text())["options"]["student_view"] is False


def test_method_not_chosen_is_art_with_a_teacher_pairs_without_and_a_resumed_run_keeps_its_own(options, tmp_path):
    from dataclasses import replace

    for teachers, method in ((options.teachers, "art"), ([], "pairs")):
        fresh = replace(options, method=None, teachers=teachers, out=str(tmp_path / f"new-{method}"))
        assert Adaptation(fresh).o.method == method
    # a run begun as pairs with a teacher (the old default) resumes as pairs when the method is not given again
    begun = replace(options, method="pairs", out=str(tmp_path / "begun"))
    Adaptation(begun)
    assert Adaptation(replace(begun, method=None)).o.method == "pairs"
    with pytest.raises(ValueError, match="method"):
        Adaptation(replace(begun, method="art"))


def _result(system, kind, summary, per_query):
    from spart.evaluation.evaluate import SystemResult

    return SystemResult(system, "d", kind, summary, [], per_query=per_query)


def test_versus_base_table_on_dpr_hits_and_beir_qrels():
    from types import SimpleNamespace

    from spart.adaptation.adapt import versus_base_table
    from spart.adaptation.report import versus_base_lines

    # DPR: 20 questions, the selected model finds the answer in its top 1 for 12 where the base does for 2
    base_hits = [[1, 0]] * 2 + [[0, 1]] * 10 + [[0, 0]] * 8
    new_hits = [[1, 0]] * 12 + [[0, 0]] * 8
    base = _result(
        "base", "dpr", {"top1": 0.1, "top2": 0.6}, [{"qid": str(i), "hits": h} for i, h in enumerate(base_hits)]
    )
    new = _result(
        "new", "dpr", {"top1": 0.6, "top2": 0.6}, [{"qid": str(i), "hits": h} for i, h in enumerate(new_hits)]
    )
    table = versus_base_table(base, new, SimpleNamespace(kind="dpr"))
    assert table["n_queries"] == 20 and table["test"] == "student"
    assert table["rows"]["top1"]["base"] == 0.1 and table["rows"]["top1"]["selected"] == 0.6
    assert table["rows"]["top1"]["p"] < 0.01 and table["rows"]["top2"]["p"] == 1.0  # identical top-2 hits

    # BEIR: ranx on the rankings against the qrels
    qrels = {str(i): {f"d{i}": 1} for i in range(12)}
    good = [{"qid": str(i), "doc_ids": [f"d{i}", "x"]} for i in range(12)]
    bad = [{"qid": str(i), "doc_ids": ["x", f"d{i}"] if i % 3 else [f"d{i}", "x"]} for i in range(12)]
    beir = versus_base_table(
        _result("b", "beir", {"ndcg@10": 0.0}, bad),
        _result("s", "beir", {"ndcg@10": 0.0}, good),
        SimpleNamespace(kind="beir", qrels=qrels),
    )
    assert beir["rows"]["ndcg@10"]["p"] < 0.05

    lines = "\n".join(versus_base_lines({"selected": 7, "versus_base": {"report": table, "pseudo_dev": beir}}))
    assert "## The selected model (step 7) vs the base" in lines
    assert "| real labels (report only), 20 q. | top1 | 10.0 | 60.0 | +50.0 |" in lines
    assert versus_base_lines({"selected": "base", "versus_base": {}}) == []


def write_labelled(tmp_path):
    """A BEIR set over the fixture's corpus: 4 questions, one relevant passage each."""
    data = tmp_path / "labelled"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text((tmp_path / "corpus.jsonl").read_text())
    topics = ["apple", "river", "engine", "violin"]
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{d}", "text": f"{t} w{d}x0?"}) + "\n" for d, t in enumerate(topics))
    )
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{d}\tp{d}-0\t1\n" for d in range(4))
    )
    return data


def test_adapt_scores_a_labelled_set_for_the_report(options, tmp_path, monkeypatch):
    options.report_dataset, options.report_split = str(write_labelled(tmp_path)), "test"
    evaluate = Adaptation._evaluate

    def checkpoints_win_on_pseudo_dev(self, model, dataset, *pipeline):  # a random tiny model: selection picks a step
        result = evaluate(self, model, dataset, *pipeline)
        if model != options.model and dataset.split == "pseudo-dev":
            result.summary["ndcg@10"] += 1.0
        return result

    monkeypatch.setattr(Adaptation, "_evaluate", checkpoints_win_on_pseudo_dev)
    state = Adaptation(options, generator=FakeGenerator()).run()
    select = state["stages"]["select"]
    assert select["report_metric"] == "ndcg@10"
    assert all("ndcg@10" in p["report"] for p in select["curve"])
    report = (tmp_path / "run" / "report.md").read_text()
    assert "real ndcg@10 (not used)" in report
    assert select["selected"] != "base"
    versus = select["versus_base"]
    assert set(versus) == {"pseudo_dev", "report"} and versus["report"]["n_queries"] == 4
    assert versus["report"]["rows"]["ndcg@10"]["base"] == select["curve"][0]["report"]["ndcg@10"]
    assert all(0.0 <= row["p"] <= 1.0 for table in versus.values() for row in table["rows"].values())
    assert f"## The selected model (step {select['selected']}) vs the base" in report
    assert "| real labels (report only), 4 q. | ndcg@10 |" in report
    verdict = report.split("## Is it better than the encoder you had?")[1].split("##")[0]  # first, before the stages
    assert report.index("## Is it better") < report.index("## Stages")
    assert "On your labelled set (report only, 4 questions)" in verdict and "ndcg@10" in verdict
    stages = report.split("## Stages")[1].split("##")[0]
    assert "| select | " in stages and f"selected {select['selected']} |" in stages and "{" not in stages
    assert "(`--student-view`)" in report  # the default for a new run


def _ranked(system, good_queries, n=40):
    """A BEIR result over ``n`` queries whose relevant passage is ranked first for ``good_queries``, second else."""
    per_query = [{"qid": str(i), "doc_ids": [f"d{i}", "x"] if i in good_queries else ["x", f"d{i}"]} for i in range(n)]
    ndcg = sum(1.0 if i in good_queries else 1 / math.log2(3) for i in range(n)) / n
    return _result(system, "beir", {"ndcg@10": ndcg}, per_query)


def test_choose_checkpoint_keeps_the_latest_unless_another_is_significantly_better():
    from types import SimpleNamespace

    from spart.adaptation.selection import choose_checkpoint

    dev = SimpleNamespace(kind="beir", qrels={str(i): {f"d{i}": 1} for i in range(40)})
    steps = ["base", 10, 20]
    # step 10 is ahead of the last step by 2 queries of 40 (noise): the latest is kept; "best" takes step 10
    noisy = {"base": _ranked("b", range(10)), 10: _ranked("s10", range(32)), 20: _ranked("s20", range(30))}
    chosen, why = choose_checkpoint(steps, noisy, dev)
    assert chosen == 20 and why["latest"] == 20
    assert why["versus"]["10"]["difference"] > 0 and why["versus"]["10"]["p"] >= 0.05
    assert why["versus"]["base"]["difference"] < 0
    assert choose_checkpoint(steps, noisy, dev, rule="best")[0] == 10

    # training hurt: the base beats the last step on 30 queries more -> the base is kept
    hurt = {"base": _ranked("b", range(35)), 10: _ranked("s10", range(5)), 20: _ranked("s20", range(5))}
    chosen, why = choose_checkpoint(steps, hurt, dev)
    assert chosen == "base" and why["versus"]["base"]["p"] < 0.05
    # the base ahead of the last step by one query (no significance): the base is kept, no regression shipped
    level = {"base": _ranked("b", range(21)), 10: _ranked("s10", range(20)), 20: _ranked("s20", range(20))}
    chosen, why = choose_checkpoint(steps, level, dev)
    assert chosen == "base" and why["versus"]["base"]["p"] > 0.05
    # an earlier checkpoint significantly better than the last one, and better than the base too -> that one
    late_drop = {"base": _ranked("b", range(20)), 10: _ranked("s10", range(36)), 20: _ranked("s20", range(12))}
    assert choose_checkpoint(steps, late_drop, dev)[0] == 10
    # ties under "best" go to the base; one candidate is kept by either rule
    tied = {"base": _ranked("b", range(20)), 10: _ranked("s10", range(20)), 20: _ranked("s20", range(20))}
    assert choose_checkpoint(steps, tied, dev, rule="best")[0] == "base"
    assert choose_checkpoint(steps, tied, dev)[0] == "base"  # level with the base: the base
    chosen, why = choose_checkpoint(["base"], tied, dev)
    assert chosen == "base" and why["versus"] == {}


def test_choose_checkpoint_rejects_bad_input():
    from types import SimpleNamespace

    from spart.adaptation.selection import choose_checkpoint

    dev = SimpleNamespace(kind="beir", qrels={"0": {"d0": 1}})
    results = {"base": _ranked("same", {0}, n=1), 5: _ranked("same", set(), n=1)}
    with pytest.raises(ValueError, match="unknown selection rule 'last'"):
        choose_checkpoint(["base", 5], results, dev, rule="last")
    with pytest.raises(ValueError, match=r"candidates without a result: \[7\]"):
        choose_checkpoint(["base", 5, 7], results, dev)
    with pytest.raises(ValueError, match="its own system name"):
        choose_checkpoint(["base", 5], results, dev)
    with pytest.raises(ValueError, match="no candidate"):
        choose_checkpoint([], results, dev)


def test_adapt_rejects_an_unknown_selection_rule(options):
    options.select = "median"
    with pytest.raises(ValueError, match="select must be one of"):
        Adaptation(options)


def test_a_run_started_before_an_option_existed_resumes_with_its_default(options, tmp_path):
    Adaptation(options)
    path = tmp_path / "run" / "adapt-state.json"
    state = json.loads(path.read_text())
    del state["options"]["select"]  # a run directory written by an older spart
    path.write_text(json.dumps(state))
    assert Adaptation(options).state["options"]["select"] == "latest"
    options.num_passages += 1
    with pytest.raises(ValueError, match=r"started with other options \(num_passages\)"):
        Adaptation(options)


def test_adapt_passes_fixed_candidates_and_the_teacher_temperature_to_art(options, monkeypatch):
    import spart.training.registry

    class Captured(Exception):
        pass

    def capture(kind, config, resume):
        assert kind == "art" and resume
        raise Captured(config)

    options.reindex_every = 1
    options.fixed_candidates = True
    with pytest.raises(ValueError, match="fixed_candidates needs reindex_every=0"):
        Adaptation(options)
    options.reindex_every, options.art_teacher_temperature = 0, 0.7
    monkeypatch.setattr(spart.training.registry, "run_training", capture)
    with pytest.raises(Captured) as caught:
        Adaptation(options, generator=FakeGenerator()).run()
    config = caught.value.args[0]
    assert config.fixed_candidates and config.reindex_every == 0 and config.top_k == options.top_k
    assert config.teacher_temperature == 0.7


def test_adapt_query_tower_only_keeps_the_base_passage_tower_end_to_end(options, tmp_path):
    from spart.encoders import DualEncoder

    options.query_tower_only = True
    with pytest.raises(ValueError, match="query_tower_only needs reindex_every=0"):
        Adaptation(options)
    options.reindex_every, options.lr = 0, 1e-3
    state = Adaptation(options, generator=FakeGenerator()).run()
    out = tmp_path / "run"
    assert list(state["stages"]) == list(STAGES)
    config = (out / "art" / "config.yaml").read_text()
    assert "freeze_passage_tower: true" in config and "shared: false" in config
    exported = DualEncoder.load(out / "checkpoints" / "step-00000002", device="cpu", precision="fp32")
    base = DualEncoder.load(options.model, device="cpu", precision="fp32")
    assert not exported.config.shared
    # trained against the corpus as the deployed model embeds it: the base's passage length, not ART's 128
    assert f"passage_max_length: {base.config.passage_max_length}" in config
    texts, titles = ["apple grows on trees", "the river flows"], ["Apple", "River"]
    # the corpus is embedded exactly as the base embeds it; the questions are not
    assert np.allclose(exported.encode_passages(texts, titles), base.encode_passages(texts, titles), atol=1e-6)
    assert not np.allclose(exported.encode_queries(texts), base.encode_queries(texts), atol=1e-4)
    # ... so its evaluations read the base's encoded corpus from the cache
    assert exported.passage_fingerprint == base.passage_fingerprint
    # the pipelines' embedder (hybrid_qa's type) embeds questions with the query tower of such a model
    from spart.components.embedders import SpiderTextEmbedder

    embedder = SpiderTextEmbedder(model=str(out / "checkpoints" / "step-00000002"), device="cpu", precision="fp32")
    embedder.warm_up()
    question = "what about apple?"
    assert np.allclose(embedder.run(question)["embedding"], exported.encode_queries([question])[0], atol=1e-5)


def test_selection_lines_explain_either_rule():
    from spart.adaptation.report import selection_lines

    latest = {
        "rule": "latest",
        "objective": "ndcg@10",
        "alpha": 0.05,
        "latest": 108,
        "versus": {"base": {"difference": -0.061, "p": 2.3e-05}, "54": {"difference": 0.008, "p": 0.142}},
    }
    text = "\n".join(selection_lines(latest))
    assert "Rule `latest`: the last step (108) unless an earlier step beats it" in text and "p < 0.05" in text
    assert "| base | -0.061 | 2.3e-05 |" in text and "| 54 | +0.008 | 0.142 |" in text
    assert (
        selection_lines({"rule": "best", "objective": "ndcg@10"})[-1] == "Rule `best`: the highest pseudo-dev ndcg@10."
    )
    assert selection_lines(None) == [] and selection_lines({}) == []


def test_the_verdict_says_yes_only_on_a_significant_gain_on_real_labels():
    from spart.adaptation.report import verdict_lines

    def select(real=None, selected=54):
        tables = {"pseudo_dev": {"n_queries": 113, "rows": {"ndcg@10": {"base": 0.875, "selected": 0.953, "p": 1e-5}}}}
        if real is not None:
            tables["report"] = {"n_queries": 133, "rows": {"top20": real}}
        return {
            "selected": selected,
            "objective": "ndcg@10",
            "report_metric": "top20" if real is not None else None,
            "versus_base": tables if selected != "base" else {},
        }

    def text(record):
        return "\n".join(verdict_lines(record))

    assert verdict_lines(None) == [] and verdict_lines({}) == []
    assert "**No.** No trained checkpoint beat your base" in text(select(selected="base"))
    unproven = text(select())  # a pseudo-dev gain alone is no evidence
    assert "**Not shown.**" in unproven and "ndcg@10 0.875 -> 0.953 (+0.078, p = 1e-05)" in unproven
    assert "--report-dataset" in unproven and "spart eval --pipeline dense_qa --model model" in unproven
    yes = text(select({"base": 0.444, "selected": 0.474, "p": 0.045}))
    assert "**Yes.**" in yes and "top20 44.4 -> 47.4 (+3.0, p = 0.045)" in yes and "133 questions" in yes
    assert "deploy `model/`" in yes and "ndcg@10 0.875 -> 0.953" in yes
    level = text(select({"base": 0.444, "selected": 0.436, "p": 0.71}))
    assert "**Not shown.**" in level and "(-0.8, p = 0.71)" in level and "keep the encoder you had" in level
    assert "**Not shown.**" in text(select({"base": 0.444, "selected": 0.474, "p": 0.06}))  # a gain, not significant
    worse = text(select({"base": 0.444, "selected": 0.376, "p": 0.02}))
    assert "**No, it is worse.**" in worse and "keep the encoder you had" in worse


def test_adapt_writes_the_expansion_pipeline_and_measures_it_on_labelled_questions_only(
    options, tmp_path, tiny_causal_dir, monkeypatch
):
    import os

    from spart.evaluation.loading import load_any_pipeline

    options.method, options.teachers, options.steps = "pairs", [], 1
    # the run and the LM named relative to the working directory, as on a command line
    monkeypatch.chdir(tmp_path)
    options.out = "run"
    options.expander, options.expander_max_new_tokens = os.path.relpath(tiny_causal_dir, tmp_path), 3
    for bad, message in (
        ({"expander_instruction": "Answer it."}, "expander_instruction"),
        ({"expander_max_new_tokens": 0}, "expander_max_new_tokens"),
    ):
        with pytest.raises(ValueError, match=message):
            Adaptation(AdaptOptions(**{**options.__dict__, **bad, "out": str(tmp_path / "bad")}))
    options.expander_instruction = "Say what you know.\nQuestion: {question}"
    options.report_dataset, options.report_split = str(write_labelled(tmp_path)), "test"
    evaluate, runs = Adaptation._evaluate, []

    def counted(self, model, dataset, *pipeline):
        runs.append((model, dataset.split, *pipeline))
        return evaluate(self, model, dataset, *pipeline)

    monkeypatch.setattr(Adaptation, "_evaluate", counted)
    state = Adaptation(options, generator=FakeGenerator()).run()
    selected = state["stages"]["select"]["model"] or options.model
    # the hybrid and the expansion are each compared with one dense run of the selected model on the report set
    assert runs[-3:][0] == (selected, "test") and [len(r) for r in runs[-3:]] == [2, 3, 3]
    out = tmp_path / "run"
    expand = state["stages"]["expand"]
    assert expand["pipeline"] == "expand_qa.yaml" and expand["report_metric"] == "ndcg@10"
    table = expand["versus_plain"]
    assert table["n_queries"] == 4 and {"ndcg@10", "recall@100"} <= set(table["rows"])
    assert all(0.0 <= row["p"] <= 1.0 for row in table["rows"].values())
    cost = expand["seconds_per_question"]
    assert cost["pipeline"] > 0 and cost["plain"] > 0
    hybrid = state["stages"]["hybrid"]  # the hybrid, measured the same way
    assert hybrid["report_metric"] == "ndcg@10" and hybrid["versus_plain"]["n_queries"] == 4
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the written YAML names every model and file by absolute path
    pipeline = load_any_pipeline(str(out / "expand_qa.yaml"))
    expander = pipeline.get_component("expander")
    assert (expander.model, expander.max_new_tokens) == (str(tiny_causal_dir.resolve()), 3)
    model = pipeline.get_component("text_embedder").model
    assert model is None or os.path.isabs(model)  # None: the base, named by the store's build record
    assert expander.instruction == options.expander_instruction
    retriever_store = pipeline.get_component("dense_retriever").document_store
    assert str(retriever_store.path) == state["stages"]["hybrid"]["store"]  # the selected model's index
    report = (out / "report.md").read_text()
    section = report.split("## Query expansion")[1].split("\n## ")[0]
    assert "On your labelled set (report only, 4 questions)" in section and "| ndcg@10 |" in section
    assert f"{cost['pipeline']:.2f} s expanded against {cost['plain']:.2f} s dense alone" in section
    assert "**Use it**" in section or "**Not shown to help**" in section
    assert "| metric | dense alone | hybrid |" in report.split("## Hybrid")[1].split("\n## ")[0]
    usage = report.split("## Use it")[1]
    assert "pipe = load_pipeline('hybrid_qa.yaml')  # or\npipe = load_pipeline('expand_qa.yaml')\n" in usage
    from spart.pipelines import retrieve

    assert retrieve(pipeline, "what about apple?")  # the pipeline runs as the report says, from another directory


def test_a_finished_run_given_the_expander_later_writes_it_and_the_report_again(options, tmp_path, tiny_causal_dir):
    options.method, options.teachers, options.steps = "pairs", [], 1
    Adaptation(options, generator=FakeGenerator()).run()
    out = tmp_path / "run"
    assert "## Query expansion" not in (out / "report.md").read_text()
    path = out / "adapt-state.json"
    state = json.loads(path.read_text())
    del state["stages"]["expand"]  # a run finished by a spart without the stage or its options
    for key in ("expander", "expander_instruction", "expander_max_new_tokens"):
        del state["options"][key]
    path.write_text(json.dumps(state))
    options.expander = str(tiny_causal_dir)

    class Exploding(FakeGenerator):
        def generate(self, passages, seed=0):
            raise AssertionError("a finished stage ran again")

    state = Adaptation(options, generator=Exploding()).run()
    assert state["stages"]["expand"]["pipeline"] == "expand_qa.yaml" and (out / "expand_qa.yaml").exists()
    section = (out / "report.md").read_text().split("## Query expansion")[1]
    assert "Not measured: no labelled set" in section
    row = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("| expand |"))
    assert row.endswith(f"expander {tiny_causal_dir} |")


def test_the_use_it_section_lists_the_pipelines_written_and_what_the_encoder_is():
    from spart.adaptation.report import usage_lines

    def text(**stages):
        return "\n".join(usage_lines(stages))

    hybrid = {"mode": "rrf"}
    skipped = {"skipped": "no teacher"}
    both = text(hybrid=hybrid, rerank=skipped, expand={"pipeline": "expand_qa.yaml"}, select={"selected": 7})
    assert "pipe = load_pipeline('hybrid_qa.yaml')  # or\npipe = load_pipeline('expand_qa.yaml')\ndocs" in both
    assert "rerank_qa.yaml" not in both and "`model/` is the adapted encoder" in both
    packaged = text(hybrid=hybrid, select={"selected": "base", "model": None})
    assert "The run kept the base encoder: no `model/` was written (the packaged default)" in packaged
    copied = text(hybrid=hybrid, select={"selected": "base", "model": "run/model"})
    assert "The run kept the base encoder: `model/` is a copy of it" in copied
    assert text() == "\n## Use it\n"  # a run stopped before any pipeline: the heading only


def test_the_report_says_what_the_base_models_card_lists_as_its_training_data(options, tmp_path):
    from spart.adaptation.report import training_data_lines, write_report

    adaptation = Adaptation(options, generator=FakeGenerator())
    assert "## What the base model was trained on" not in write_report(adaptation.out, adaptation.state).read_text()
    card = tmp_path / "card-model"
    card.mkdir()
    (card / "README.md").write_text("---\ndatasets:\n- trivia_qa\n- embedding-data/PAQ_pairs\n---\n# A model\n")
    section = "\n".join(training_data_lines(str(card)))
    assert "## What the base model was trained on" in section
    assert "lists 2 training data sets: trivia_qa, embedding-data/PAQ_pairs." in section
    assert training_data_lines(str(tmp_path / "no-card")) == []
    packaged = "\n".join(training_data_lines(None))  # no --model: the packaged MiniLM, whose card lists TriviaQA
    assert "`all-MiniLM-L6-v2 (packaged)`" in packaged and "trivia_qa" in packaged


def test_adapt_with_an_encoder_teacher_audits_distils_and_writes_an_encoder_rerank(options, tmp_path, tiny_encoder_dir):
    from dataclasses import replace

    from spart.components.rankers import EncoderRanker
    from spart.evaluation.loading import load_any_pipeline

    options = replace(options, teachers=[f"enc={tiny_encoder_dir}"])
    state = Adaptation(options, generator=FakeGenerator()).run()
    out = tmp_path / "run"
    audit = json.loads((out / "audit-pseudo-dev.json").read_text())
    assert [r["system"] for r in audit["rows"]][3:] == ["base + enc", "base + enc (w=0.5)"]
    assert state["stages"]["audit"]["teacher"] == "enc" and state["stages"]["train"]["teacher"] == "enc"
    assert state["stages"]["questions"]["generator"] == "smollm2"  # an encoder cannot write: the default LM does
    config = (out / "art" / "config.yaml").read_text()
    assert "kind: encoder" in config and str(tiny_encoder_dir) in config
    assert not (out / "teacher-scores.sqlite").exists()  # nothing was scored by an LM

    adaptation = Adaptation(options, generator=FakeGenerator())
    adaptation.state["stages"]["audit"].update(call="help", weight=0.5)
    result = adaptation.stage_rerank()
    assert (result["teacher"], result["weight"], result["pipeline"]) == ("enc", 0.5, "rerank_qa.yaml")
    pipeline = load_any_pipeline(str(out / "rerank_qa.yaml"))
    ranker = pipeline.get_component("ranker")
    assert isinstance(ranker, EncoderRanker) and ranker.model == str(tiny_encoder_dir.resolve())
    assert ranker.retriever_weight == 0.5
    query = "what about apple?"
    docs = pipeline.run({"text_embedder": {"text": query}, "ranker": {"query": query}})["ranker"]["documents"]
    assert 0 < len(docs) <= options.depth
    from spart.adaptation.report import write_report

    adaptation.state["stages"]["rerank"] = {"seconds": 1.0, **result}
    section = write_report(out, adaptation.state).read_text().split("## Rerank")[1].split("\n## ")[0]
    assert "The teacher encoder embeds every candidate at query time" in section and "The LM reads" not in section
