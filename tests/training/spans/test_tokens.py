"""The vectorised tokenizer against the spec's regex (property tests), and its hash table."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from spart.training.spans import tokenize, tokens

ENGLISH = ["Paris", "the", "of", "New", "York", "1889", "42", "don't", "(", ")", ",", "."]

# Edge cases: letters and digits of other scripts, non-ASCII digits and numerics, a lone surrogate, odd
# whitespace and control characters, case changes that alter the length, and ASCII tokens on both sides of
# the 8- and 16-byte key boundaries (differing only in their last byte).
ODD_WORDS = [
    "Straße",
    "İstanbul",
    "ΣΊΣΥΦΟΣ",
    "١٢٣",
    "²³",
    "x²",
    "½",
    "Ⅻ",
    "\ud800",
    "a\u0301",
    "日本語",
    "snake_case",
    "\u00a0",
    "\u2003",
    "\x00",
    "\x1c",
    "abcdefg",
    "abcdefgh",
    "abcdefgi",
    "ABCDEFGH",
    "abcdefghi",
    "abcdefghj",
    "1234567890",
    "abcdefghijklmnop",
    "abcdefghijklmnoq",
    "abcdefghijklmnopq",
    "1234567890123456",
]
odd_text = st.lists(st.sampled_from(ODD_WORDS + ENGLISH) | st.text(max_size=6), max_size=12).map(
    lambda parts: "".join(f"{p}{' ' if i % 4 else ''}" for i, p in enumerate(parts))
)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(odd_text, min_size=1, max_size=4))
@example(texts=["abcdefgh abcdefgi abcdefg Abcdefgh abcdefghi abcdefghj", "x² ½ Ⅻ ١٢٣ İstanbul ΣΊΣΥΦΟΣ Straße"])
@example(texts=["abcdefghijklmnop abcdefghijklmnoq abcdefghijklmnopq Abcdefghijklmnop abcdefghijklmno"])
def test_vocabulary_tokenizes_like_the_spec(texts):
    vocabulary = tokens.Vocabulary(frozenset({"the", "straße"}))
    codes, lengths = vocabulary.tokenize(texts)
    assert lengths.tolist() == [len(tokenize(text)) for text in texts]
    expected = [token for text in texts for token in tokenize(text)]
    assert len(codes) == len(expected)
    for code, token in zip(codes.tolist(), expected):
        if not (token.isalpha() or token.isdigit()):
            assert code == -1
            continue
        assert vocabulary.lowered[vocabulary.token_lower.data[code]] == token.lower()
        assert vocabulary.token_stop.data[code] == (token.lower() in vocabulary.stopwords)
        assert vocabulary.token_single.data[code] == (token[0].isupper() or (len(token) == 4 and token.isdigit()))
    again, _ = vocabulary.tokenize(texts)  # known tokens keep their codes
    assert again.tolist() == codes.tolist()


def test_key_table_finds_what_was_added_across_growth():
    rng = np.random.default_rng(0)
    table = tokens.KeyTable()
    keys = np.unique(rng.integers(1, 2**63, size=(20_000, 2), dtype=np.int64), axis=0).astype(np.uint64)
    keys[::3, 1] = 0  # one-word keys too
    keys[1::7, 0] = keys[0, 0]  # many keys sharing a first word
    keys = np.unique(keys, axis=0)
    codes = np.arange(len(keys))
    for chunk in np.array_split(np.arange(len(keys)), 7):  # grows several times
        table.add(keys[chunk, 0], keys[chunk, 1], codes[chunk])
    assert table.find(keys[:, 0], keys[:, 1]).tolist() == codes.tolist()
    shifted = table.find(keys[:, 0], keys[:, 1] + np.uint64(1))  # mostly absent keys
    index = {tuple(key): i for i, key in enumerate(keys.tolist())}
    assert shifted.tolist() == [index.get((k0, k1 + 1), -1) for k0, k1 in keys.tolist()]
    assert (shifted == -1).sum() > len(keys) // 2
    assert len(table.first) >= 2 * len(keys)
