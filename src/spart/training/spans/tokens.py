"""The mining tokenizer (:func:`spart.training.spans.semantics.tokenize`) for whole batches, vectorised:
per token of a batch of texts, a code into a per-process :class:`Vocabulary` that knows the token's
lowercased form and span flags; no token string is built except for tokens never seen before.

How (each step was kept because a profile showed it paid; the property tests check it against the regex):

- The texts are joined by spaces and encoded to UTF-32, one ``uint32`` per code point. A table of
  character kinds per code point (``str.isspace`` / ``isalnum`` / ``isalpha`` / ``isdigit``, filled lazily
  beyond ASCII) marks the regex's tokens: runs of ``[^\\W_]`` characters, and every other non-space
  character alone. Whether a token may be part of a span (all letters or all digits) comes from OR-ing
  per-character flags over each token (``np.bitwise_or.reduceat``).
- ASCII tokens of up to 16 characters (97-99% of the span-eligible tokens in the shared corpora) are keyed
  exactly by their bytes, two ``uint64`` words, and found in a :class:`KeyTable`, an open-addressing hash
  table probed with vectorised gathers (six times faster than ``np.searchsorted`` here, far faster than a
  dict lookup per token). Longer or non-ASCII tokens go through a dict of their strings.
- Only tokens new to the vocabulary run Python code (``str.lower``, the stopword test, ...). The vocabulary
  lives as long as the process (a pool worker mines many batches) and is bounded: past ``_MAX_TOKENS``
  tokens it is replaced by an empty one.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from itertools import count, islice
from typing import Any

import numpy as np

# Per code point, the character kinds the tokenizer needs (bit flags): the regex's \s and [^\W_] are
# str.isspace and str.isalnum, span eligibility needs str.isalpha and str.isdigit. Known for ASCII, filled
# in lazily for other characters (_UNKNOWN until then). A character with none of the flags is a token alone.
_SPACE, _ALNUM, _ALPHA, _DIGIT, _UNKNOWN = 1, 2, 4, 8, 0xFF
_CHAR_KINDS = np.full(0x110000, _UNKNOWN, dtype=np.uint8)


def _kind(char: str) -> int:
    return _SPACE * char.isspace() | _ALNUM * char.isalnum() | _ALPHA * char.isalpha() | _DIGIT * char.isdigit()


_CHAR_KINDS[:128] = [_kind(chr(code)) for code in range(128)]
# ASCII tokens of up to 16 characters are keyed exactly by their bytes, read as two little-endian uint64
# words (bytes past the token masked off; letters and digits are never NUL, so the first word never is 0).
_KEY_BYTES = 16
_WORD_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
# A vocabulary holding more tokens than this is dropped (between batches) and rebuilt: ~200 bytes a token.
_MAX_TOKENS = 500_000


class _Column:
    """A growable numpy array (amortised doubling); ``data[:size]`` holds the values."""

    __slots__ = ("data", "size")

    def __init__(self, dtype: Any) -> None:
        self.data = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: list) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end


class KeyTable:
    """Codes by exact two-word keys (the first word never 0): an open-addressing hash table with linear
    probing at load <= 1/2, looked up and filled with vectorised probes (six times faster than a
    ``searchsorted`` over sorted keys here)."""

    def __init__(self) -> None:
        self._allocate(12)

    def _allocate(self, bits: int) -> None:
        self.first = np.zeros(1 << bits, dtype=np.uint64)  # 0: an empty slot
        self.second = np.zeros(1 << bits, dtype=np.uint64)
        self.codes = np.zeros(1 << bits, dtype=np.int64)
        self.size = 0

    def _slots(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        bits = len(self.first).bit_length() - 1
        return (((first ^ (second * _MIX2)) * _MIX1) >> np.uint64(64 - bits)).astype(np.intp)

    def find(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """:returns: the code of every key, -1 for keys not in the table."""
        mask = len(self.first) - 1
        slot = self._slots(first, second)
        stored = self.first[slot]
        hit = (stored == first) & (self.second[slot] == second)
        codes = np.where(hit, self.codes[slot], -1)
        pending = np.flatnonzero(~hit & (stored != 0))  # probe on while the slot holds another key
        while len(pending):
            at = slot[pending] = (slot[pending] + 1) & mask
            stored = self.first[at]
            hit = (stored == first[pending]) & (self.second[at] == second[pending])
            codes[pending[hit]] = self.codes[at[hit]]
            pending = pending[~hit & (stored != 0)]
        return codes

    def add(self, first: np.ndarray, second: np.ndarray, codes: np.ndarray) -> None:
        """Insert distinct keys that are not in the table yet."""
        if 2 * (self.size + len(first)) > len(self.first):
            used = np.flatnonzero(self.first)
            entries = self.first[used], self.second[used], self.codes[used]
            self._allocate((2 * (self.size + len(first))).bit_length())
            self.add(*entries)
        mask = len(self.first) - 1
        slot = self._slots(first, second)
        pending = np.arange(len(first))
        while len(pending):
            at = slot[pending]
            free = np.flatnonzero(self.first[at] == 0)
            # Keys probing the same free slot: the first of them takes it.
            _, take = np.unique(at[free], return_index=True)
            won = pending[free[take]]
            self.first[slot[won]], self.second[slot[won]], self.codes[slot[won]] = first[won], second[won], codes[won]
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[take]] = True
            pending = pending[~placed]
            slot[pending] = (slot[pending] + 1) & mask  # every slot they probed is taken now
        self.size += len(first)


class Vocabulary:
    """The span-eligible tokens this process has seen, for one stopword list.

    A token's code maps to its lowercased id (``lowered[id]`` is the lowercased token), its stopword flag
    and whether it may be a 1-token span. Short ASCII tokens are found by their exact key in a
    hash table (:class:`KeyTable`), the others through a dict of their strings; only tokens never seen before
    cost Python work.
    """

    def __init__(self, stopwords: frozenset[str]) -> None:
        self.stopwords = stopwords
        self.lock = threading.Lock()
        self.codes = count()  # the next token code
        self.short_codes = KeyTable()
        self.long_code: defaultdict[str, int] = defaultdict(self.codes.__next__)
        self.lower_code: defaultdict[str, int] = defaultdict(count().__next__)
        self.lowered: list[str] = []
        self.token_lower = _Column(np.int64)
        self.token_stop = _Column(np.bool_)
        self.token_single = _Column(np.bool_)  # capitalised or a 4-digit number

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenise like the spec's regex (:data:`TOKEN_PATTERN`), without building the tokens.

        :returns: per token of the texts (concatenated) its code, or -1 for a token that may not be part of a
            span (not all letters, not all digits), and the number of tokens of each text.
        """
        # Joined by spaces, so that no token crosses two texts; padded for the fixed-width reads below.
        joined = " ".join(texts) + " " * _KEY_BYTES
        chars = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        kinds = _char_kinds(chars)
        word = (kinds & _ALNUM) != 0
        # A token is a run of word characters, or one other non-space character.
        first = kinds == 0
        last = first.copy()
        first[0] |= word[0]
        first[1:] |= word[1:] & ~word[:-1]
        last[:-1] |= word[:-1] & ~word[1:]  # the last character is padding, never a word character
        starts, ends = np.flatnonzero(first), np.flatnonzero(last) + 1
        text_starts = np.cumsum([0] + [len(text) + 1 for text in texts[:-1]])
        lengths = np.diff(np.searchsorted(starts, text_starts), append=len(starts))
        codes = np.full(len(starts), -1, dtype=np.int64)
        if len(starts) == 0:
            return codes, lengths

        # A token may be part of a span when its characters are all letters or all digits: flag (bit 0)
        # every word character that is neither, or is not of the same kind as the previous one of its token,
        # and (bit 1) every non-ASCII character; OR-ing the flags over each token's characters (and the
        # spaces after it, which have none) classifies it.
        letter_or_digit = kinds & (_ALPHA | _DIGIT)
        flags = (word & (letter_or_digit == 0)).view(np.uint8)
        flags[1:] |= word[1:] & word[:-1] & (letter_or_digit[1:] != letter_or_digit[:-1])
        flags |= (chars >= 128).view(np.uint8) << 1
        token_flags = np.bitwise_or.reduceat(flags, starts)
        size = ends - starts
        valid = word[starts] & ((token_flags & 1) == 0)
        short = np.flatnonzero(valid & (token_flags == 0) & (size <= _KEY_BYTES))
        long = np.flatnonzero(valid & ((token_flags != 0) | (size > _KEY_BYTES)))
        with self.lock:
            if len(short):
                codes[short] = self._short_codes(chars, joined, starts[short], size[short])
            if len(long):
                strings = [joined[a:b] for a, b in zip(starts[long].tolist(), ends[long].tolist())]
                known = len(self.long_code)
                codes[long] = np.fromiter(map(self.long_code.__getitem__, strings), dtype=np.int64, count=len(long))
                if len(self.long_code) > known:
                    self._add_tokens(_added_keys(self.long_code, known))
        return codes, lengths

    def _short_codes(self, chars: np.ndarray, joined: str, starts: np.ndarray, size: np.ndarray) -> np.ndarray:
        """The codes of short ASCII tokens; new tokens (read from ``joined``) get the next codes."""
        # The 8 bytes at every character position (an unaligned view; the padding keeps reads in bounds).
        low_bytes = chars.astype(np.uint8)
        words = np.ndarray((len(low_bytes) - 7,), dtype="<u8", buffer=low_bytes, strides=(1,))
        first = words[starts] & _WORD_MASKS[np.minimum(size, 8)]
        second = words[starts + 8] & _WORD_MASKS[np.maximum(size - 8, 0)]
        codes = self.short_codes.find(first, second)
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            order = missing[np.lexsort((second[missing], first[missing]))]
            new = np.ones(len(order), dtype=bool)
            new[1:] = (first[order[1:]] != first[order[:-1]]) | (second[order[1:]] != second[order[:-1]])
            distinct = order[new]
            new_tokens = [joined[a : a + n] for a, n in zip(starts[distinct].tolist(), size[distinct].tolist())]
            new_codes = np.fromiter(islice(self.codes, len(new_tokens)), dtype=np.int64, count=len(new_tokens))
            self._add_tokens(new_tokens)
            self.short_codes.add(first[distinct], second[distinct], new_codes)
            codes[order] = new_codes[np.cumsum(new) - 1]
        return codes

    def _add_tokens(self, new_tokens: list[str]) -> None:
        """Record the lowercased id and the flags of tokens that just got the next codes."""
        lowered = [token.lower() for token in new_tokens]
        known = len(self.lower_code)
        self.token_lower.extend(np.fromiter(map(self.lower_code.__getitem__, lowered), np.int64, len(lowered)))
        self.lowered.extend(_added_keys(self.lower_code, known))
        self.token_stop.extend(np.fromiter(map(self.stopwords.__contains__, lowered), bool, len(lowered)))
        self.token_single.extend([token[0].isupper() or (len(token) == 4 and token.isdigit()) for token in new_tokens])


def _added_keys(mapping: dict[str, int], known: int) -> list[str]:
    """The keys added to ``mapping`` since it had ``known`` keys, in insertion order (dicts keep it)."""
    return list(islice(reversed(mapping), len(mapping) - known))[::-1]


def _char_kinds(chars: np.ndarray) -> np.ndarray:
    kinds = _CHAR_KINDS[chars]
    unknown = kinds == _UNKNOWN
    if unknown.any():
        for code in np.unique(chars[unknown]).tolist():
            _CHAR_KINDS[code] = _kind(chr(code))
        kinds[unknown] = _CHAR_KINDS[chars[unknown]]
    return kinds


_VOCABULARIES: dict[frozenset[str], Vocabulary] = {}


def vocabulary(stopwords: frozenset[str]) -> Vocabulary:
    """This process's vocabulary for a stopword list (replaced by an empty one past ``_MAX_TOKENS`` tokens)."""
    current = _VOCABULARIES.get(stopwords)
    if current is None or current.token_lower.size > _MAX_TOKENS:
        if len(_VOCABULARIES) >= 4:
            _VOCABULARIES.clear()
        current = _VOCABULARIES[stopwords] = Vocabulary(stopwords)
    return current
