"""generate_questions: outputs, round-trip filter, resume after an interruption, settings checks."""

from __future__ import annotations

import json

import pytest
from _fake_generation import FakeGenerator

from spart.data import Passage
from spart.evaluation.datasets import load_dataset
from spart.generation import GenerationPrompt, GenerationSettings, generate_questions
from spart.generation.pipeline import CANDIDATES, SETTINGS
from spart.generation.pseudo_dataset import dev_split


def corpus(n_docs: int = 6, per_doc: int = 4) -> list[Passage]:
    topics = ["apple", "river", "engine", "violin", "glacier", "python", "desert", "comet"]
    out = []
    for d in range(n_docs):
        for j in range(per_doc):
            words = [topics[d % len(topics)], f"w{d}x{j}", f"k{j}y{d}", f"z{d}{j}"] + [f"filler{i}" for i in range(25)]
            out.append(Passage(f"p{d}-{j}", " ".join(words), f"Doc {d}"))
    return out


def settings(**kw) -> GenerationSettings:
    base = dict(num_passages=12, seed=3, filter_top_k=0, dev_fraction=0.25)
    base.update(kw)
    return GenerationSettings(**base)


def test_outputs_form_a_loadable_pseudo_beir_dataset(tmp_path, tiny_bert_dir):
    passages = corpus()
    stats = generate_questions(
        passages, tmp_path, FakeGenerator(), settings(filter_model=str(tiny_bert_dir)), progress=False
    )
    assert stats["passages"] == 12 and stats["parsed"] == 12 and stats["kept"] == 12
    assert stats["pseudo-train"] == 9 and stats["pseudo-dev"] == 3
    dev = load_dataset(tmp_path, "pseudo-dev")
    train = load_dataset(tmp_path, "pseudo-train")
    assert len(dev.queries) == 3 and len(train.queries) == 9
    assert not {q.id for q in dev.queries} & {q.id for q in train.queries}
    by_id = {p.id: p for p in passages}
    for q in dev.queries + train.queries:
        (source,) = dev.qrels.get(q.id, train.qrels.get(q.id))
        assert " ".join(by_id[source].text.split()[1:4]) in q.text  # the label is the passage it was written from
    lines = (tmp_path / "pseudo-train-questions.txt").read_text().splitlines()
    assert sorted(lines) == sorted(q.text for q in train.queries)


def test_round_trip_filter_drops_questions_whose_source_is_not_found(tmp_path, tiny_bert_dir):
    stats = generate_questions(
        corpus(), tmp_path, FakeGenerator(), settings(filter_model=str(tiny_bert_dir), filter_top_k=1), progress=False
    )
    ranks = [json.loads(line)["rank"] for line in open(tmp_path / "round-trip.jsonl")]
    assert stats["kept"] == sum(r <= 1 for r in ranks) < len(ranks)  # a random tiny encoder misses some


def test_resume_after_interruption_writes_what_an_uninterrupted_run_writes(tmp_path, tiny_bert_dir):
    s = settings(filter_model=str(tiny_bert_dir))
    generate_questions(corpus(), tmp_path / "whole", FakeGenerator(), s, progress=False)
    with pytest.raises(KeyboardInterrupt):
        generate_questions(corpus(), tmp_path / "cut", FakeGenerator(fail_after=2), s, progress=False)
    partial = (tmp_path / "cut" / CANDIDATES).read_text().splitlines()
    assert len(partial) == 8
    with open(tmp_path / "cut" / CANDIDATES, "a") as f:  # a torn line and half a batch, as a crash leaves them
        f.write(partial[0] + "\n" + '{"row": 1, "passage')
    resumed = FakeGenerator()
    generate_questions(corpus(), tmp_path / "cut", resumed, s, progress=False)
    assert resumed.calls == 1  # only the missing batch was generated
    for name in (CANDIDATES, "queries.jsonl", "qrels/pseudo-dev.tsv", "qrels/pseudo-train.tsv"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "whole" / name).read_text()


def test_other_settings_are_refused_unless_overwrite(tmp_path, tiny_bert_dir):
    generate_questions(corpus(), tmp_path, FakeGenerator(), settings(filter_model=str(tiny_bert_dir)), progress=False)
    with pytest.raises(ValueError, match="other settings"):
        generate_questions(corpus(), tmp_path, FakeGenerator(), settings(seed=4, filter_model=str(tiny_bert_dir)))
    stats = generate_questions(
        corpus(),
        tmp_path,
        FakeGenerator(),
        settings(seed=4, filter_model=str(tiny_bert_dir)),
        overwrite=True,
        progress=False,
    )
    assert stats["passages"] == 12


def test_pseudo_dev_is_capped_and_the_rest_trains(tmp_path, tiny_bert_dir):
    s = settings(filter_model=str(tiny_bert_dir), dev_fraction=0.5, max_dev_questions=2)
    stats = generate_questions(corpus(), tmp_path, FakeGenerator(), s, progress=False)
    assert stats["kept"] == 12 and stats["pseudo-dev"] == 2 and stats["pseudo-train"] == 10
    uncapped = dev_split([f"gen:{i}" for i in range(12)], 0.5, s.seed)
    assert len(uncapped) == 6 and dev_split([f"gen:{i}" for i in range(12)], 0.5, s.seed, 2) < uncapped


def test_a_run_recorded_before_a_newer_setting_existed_resumes(tmp_path, tiny_bert_dir):
    s = settings(filter_model=str(tiny_bert_dir))
    generate_questions(corpus(), tmp_path, FakeGenerator(), s, progress=False)
    recorded = json.loads((tmp_path / SETTINGS).read_text())
    del recorded["generation"]["max_dev_questions"]
    (tmp_path / SETTINGS).write_text(json.dumps(recorded))
    again = FakeGenerator()
    generate_questions(corpus(), tmp_path, again, s, progress=False)
    assert again.calls == 0  # nothing generated anew: the earlier candidates were kept


def test_the_generator_can_be_shown_each_passage_as_the_student_reads_it(tmp_path, tiny_bert_dir):
    from spart.encoders import DualEncoder

    passages = corpus()
    shown = []

    class Recording(FakeGenerator):
        def generate(self, batch, seed=0):
            shown.extend(batch)
            return super().generate(batch, seed)

    s = settings(filter_model=str(tiny_bert_dir), student_passage_tokens=16)
    generate_questions(passages, tmp_path, Recording(), s, progress=False)
    encoder = DualEncoder.load(tiny_bert_dir)
    by_id = {p.id: p for p in passages}
    assert len(shown) == 12
    for p in shown:
        whole = by_id[p.id]
        assert p.title == whole.title and whole.text.startswith(p.text) and len(p.text) < len(whole.text)
        cut = encoder.tokenize_passages([p.text], [p.title])["input_ids"][0].tolist()
        assert (
            cut == encoder._tokenize(encoder.format_passages([whole.text], [whole.title]), 16)["input_ids"][0].tolist()
        )
    assert json.loads((tmp_path / SETTINGS).read_text())["generation"]["student_passage_tokens"] == 16
    with pytest.raises(ValueError, match="at least 8"):
        settings(student_passage_tokens=4)


def test_a_run_recorded_before_the_student_view_resumes_only_with_whole_passages(tmp_path, tiny_bert_dir):
    s = settings(filter_model=str(tiny_bert_dir))
    generate_questions(corpus(), tmp_path, FakeGenerator(), s, progress=False)
    recorded = json.loads((tmp_path / SETTINGS).read_text())
    del recorded["generation"]["student_passage_tokens"]  # a run written before the setting existed
    (tmp_path / SETTINGS).write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="other settings"):  # its questions were written from whole passages
        generate_questions(
            corpus(), tmp_path, FakeGenerator(), settings(filter_model=str(tiny_bert_dir), student_passage_tokens=16)
        )
    again = FakeGenerator()
    generate_questions(corpus(), tmp_path, again, s, progress=False)
    assert again.calls == 0


def test_copied_examples_and_duplicates_are_not_kept(tmp_path, tiny_bert_dir):
    passages = corpus()

    class Copier(FakeGenerator):
        def generate(self, passages, seed=0):
            return ["Is this an example question?"] * (len(passages) - 1) + ["What is new here?"]

    prompt = GenerationPrompt(examples=("Is this an example question?",))
    stats = generate_questions(
        passages, tmp_path, Copier(prompt=prompt), settings(filter_model=str(tiny_bert_dir)), progress=False
    )
    assert stats["reasons"]["copied an example"] == 9
    assert stats["unique"] == 1  # "What is new here?" three times: the first is kept


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="num_passages"):
        GenerationSettings(num_passages=0)
    with pytest.raises(ValueError, match="dev_fraction"):
        GenerationSettings(dev_fraction=1.0)
    with pytest.raises(ValueError, match="filter_top_k"):
        GenerationSettings(filter_top_k=-1)
    with pytest.raises(ValueError, match="max_dev_questions"):
        GenerationSettings(max_dev_questions=0)
    with pytest.raises(ValueError, match="max_dev"):
        dev_split(["a", "b"], 0.5, max_dev=-1)
