"""DPR's answer-in-passage test, re-implemented to decide exactly as DPR's ``qa_validation.has_answer`` does.

A retrieved passage "has the answer" when, after Unicode NFD normalisation and tokenisation with DrQA's
``SimpleTokenizer`` (tokens are runs of letters/digits/marks, or any single other non-space, non-control
character), the lower-cased token sequence of some answer occurs contiguously in the lower-cased token
sequence of the passage **text** (never its title). In ``regex`` mode (CuratedTREC), each answer is a
pattern, NFD-normalised and searched in the NFD-normalised text with IGNORECASE | UNICODE | MULTILINE; a
pattern that does not compile counts as no match, as in DPR.

Deviation from DPR: an answer that tokenises to nothing (empty or whitespace-only) would match every
passage in DPR's loop; here it raises ``ValueError`` because it is a data error, not an answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

import regex

# DrQA SimpleTokenizer: a run of letters, numbers and combining marks, or any one character that is
# neither a separator (\p{Z}) nor a control/format/unassigned code point (\p{C}).
_TOKEN_RE = regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]", flags=regex.UNICODE | regex.MULTILINE)

# Tokens can never contain a control character, so joining them with NUL turns "token sequence occurs
# contiguously" into a plain substring test (with NULs at both ends so partial tokens never match).
_SEP = "\x00"

MATCH_TYPES = ("string", "regex")


def normalize(text: str) -> str:
    """NFD-normalise ``text`` (DPR's ``_normalize``): accents become base letter + combining mark."""
    return unicodedata.normalize("NFD", text)


def tokenize(text: str) -> list[str]:
    """Tokenise like DrQA's ``SimpleTokenizer`` and lower-case (``Tokens.words(uncased=True)``).

    :param text: already NFD-normalised text.
    :returns: the list of lower-cased tokens.
    """
    return [token.lower() for token in _TOKEN_RE.findall(text)]


@lru_cache(maxsize=65536)
def _joined_passage_tokens(text: str) -> str:
    # The same passage is usually checked against many questions (and in several systems' runs).
    return _SEP + _SEP.join(tokenize(normalize(text))) + _SEP


@lru_cache(maxsize=65536)
def _joined_answer_tokens(answer: str) -> str:
    tokens = tokenize(normalize(answer))
    if not tokens:
        raise ValueError(f"answer {answer!r} is empty after tokenisation; it would match every passage")
    return _SEP + _SEP.join(tokens) + _SEP


@lru_cache(maxsize=4096)
def _compiled(pattern: str):
    try:
        return regex.compile(pattern, flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)
    except Exception:  # DPR treats an uncompilable answer pattern as "no match"
        return None


def has_answer(answers: Sequence[str], text: str | None, match_type: str = "string") -> bool:
    """Whether ``text`` contains any of ``answers``, decided as DPR decides it.

    :param answers: the acceptable answers (strings, or regex patterns when ``match_type="regex"``).
    :param text: the passage text (not the title; DPR's retriever validation ignores titles).
        ``None`` (a passage missing from the corpus) is never a hit.
    :param match_type: ``"string"`` (token-sequence match, uncased) or ``"regex"``.
    :returns: ``True`` if some answer is found.
    :raises ValueError: for an unknown ``match_type`` or an answer with no tokens (string mode).

    Example::

        >>> has_answer(["Richard Nixon"], "Nixon: Richard  NIXON was president.")
        True
        >>> has_answer(["Nix"], "Richard Nixon")
        False
    """
    if match_type not in MATCH_TYPES:
        raise ValueError(f"match_type must be one of {MATCH_TYPES}, got {match_type!r}")
    if isinstance(answers, str):
        raise ValueError("answers must be a list of strings, got a single string")
    if text is None:
        return False
    if match_type == "string":
        haystack = _joined_passage_tokens(text)
        return any(_joined_answer_tokens(answer) in haystack for answer in answers)
    normalized = normalize(text)
    for answer in answers:
        pattern = _compiled(normalize(answer))
        if pattern is not None and pattern.search(normalized) is not None:
            return True
    return False


def hits_for_ranking(answers: Sequence[str], texts: Iterable[str | None], match_type: str = "string") -> list[bool]:
    """``has_answer`` for each passage of one ranked list (DPR's ``check_answer``).

    :param answers: the question's answers.
    :param texts: the ranked passages' texts, best first.
    :param match_type: ``"string"`` or ``"regex"``.
    :returns: one bool per passage.
    """
    return [has_answer(answers, text, match_type) for text in texts]
