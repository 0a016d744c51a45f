"""Word tokenizer for BM25: lowercase, regex word split, optional stop words, optional stemming.

Defaults (chosen to match bm25s's own ``bm25s.tokenize`` and the BM25 reference figures in
``shared/data/README.md``):

* ``lowercase=True``;
* ``token_pattern=r"(?u)\\b\\w\\w+\\b"``: runs of 2+ word characters (single letters/digits are dropped,
  as in scikit-learn and bm25s);
* ``stopwords="en"``: bm25s's 33 English stop words (``bm25s.stopwords.STOPWORDS_EN``); ``None`` keeps all
  words; a list gives your own;
* ``stemmer=None``: no stemming; ``"english"`` (or any PyStemmer language) stems every kept token.

Order: lowercase -> split -> drop stop words -> stem (stop words are matched before stemming, as in bm25s).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# What findall runs for a pattern: the same tokens, found faster. Scanning left to right, a greedy run of 2+
# word characters can only start after a non-word character and ends before one, so the boundaries of the
# default pattern never reject a match (tested on random text); without them the scan is ~25% faster.
_EQUIVALENT_PATTERNS = {DEFAULT_TOKEN_PATTERN: r"(?u)\w\w+"}


def _stopword_list(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    if stopwords is None:
        return frozenset()
    if isinstance(stopwords, str):
        if stopwords.lower() not in ("en", "english"):
            raise ValueError(f"unknown stop word language {stopwords!r}; use 'en', None or a list of words")
        from bm25s.stopwords import STOPWORDS_EN

        return frozenset(STOPWORDS_EN)
    return frozenset(w.lower() for w in stopwords)


class Tokenizer:
    """Turns text into BM25 tokens.

    :param lowercase: Lowercase before splitting.
    :param stopwords: ``"en"`` (bm25s English list), ``None`` (keep all), or an iterable of words.
    :param stemmer: ``None`` or a PyStemmer language name such as ``"english"``.
    :param token_pattern: Regex whose matches are the tokens.

    Example::

        tok = Tokenizer(stemmer="english")
        tok("The cats are running")  # ['cat', 'run']
    """

    def __init__(
        self,
        lowercase: bool = True,
        stopwords: str | list[str] | None = "en",
        stemmer: str | None = None,
        token_pattern: str = DEFAULT_TOKEN_PATTERN,
    ):
        self.lowercase = lowercase
        self.stopwords = list(stopwords) if stopwords is not None and not isinstance(stopwords, str) else stopwords
        self.stemmer = stemmer
        self.token_pattern = token_pattern
        self._split = re.compile(_EQUIVALENT_PATTERNS.get(token_pattern, token_pattern)).findall
        self._stop = _stopword_list(stopwords)
        self._stem = None
        if stemmer is not None:
            import Stemmer

            try:
                stem_word = Stemmer.Stemmer(stemmer).stemWord
            except KeyError as exc:
                raise ValueError(f"PyStemmer has no stemmer for language {stemmer!r}") from exc
            # Corpora repeat words a lot; caching the stem of each distinct word is a large speed-up.
            self._stem = lru_cache(maxsize=1 << 20)(stem_word)

    def __call__(self, text: str) -> list[str]:
        """Tokenize one text.

        :param text: The text (``None`` is treated as empty).
        :returns: The list of tokens, in text order, duplicates kept.
        """
        if not text:
            return []
        if self.lowercase:
            text = text.lower()
        tokens = self._split(text)
        if self._stop:
            tokens = [t for t in tokens if t not in self._stop]
        if self._stem is not None:
            tokens = [self._stem(t) for t in tokens]
        return tokens

    def to_dict(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {
            "lowercase": self.lowercase,
            "stopwords": self.stopwords,
            "stemmer": self.stemmer,
            "token_pattern": self.token_pattern,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
