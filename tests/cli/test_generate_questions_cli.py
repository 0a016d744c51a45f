"""``spart generate-questions``'s command line maps onto :class:`GenerationSettings` and the generator."""

from __future__ import annotations

import json

from spart.cli import main


def test_options_reach_the_settings_and_the_generator(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_generate(passages, out, generator, settings, progress=True, overwrite=False):
        seen.update(passages=passages, out=out, generator=generator, settings=settings, overwrite=overwrite)
        return {"kept": 1}

    monkeypatch.setattr("spart.generation.generate_questions", fake_generate)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "d1", "title": "T", "text": "some passage text"}) + "\n")
    argv = ["generate-questions", str(corpus), "--out", str(tmp_path / "q"), "--num-passages", "7"]
    argv += ["--student-passage-tokens", "96", "--filter-top-k", "5", "--max-dev", "0", "--batch-size", "2"]
    assert main([*argv, "--no-progress"]) == 0
    s = seen["settings"]
    assert (s.num_passages, s.student_passage_tokens, s.filter_top_k, s.max_dev_questions) == (7, 96, 5, None)
    assert seen["generator"].batch_size == 2 and [p.id for p in seen["passages"]] == ["d1"]
    assert json.loads(capsys.readouterr().out) == {"kept": 1}
    assert main(argv[:4] + ["--no-progress"]) == 0 and seen["settings"].student_passage_tokens is None
