"""spart.bm25: bm25s-backed sparse BM25 with one pure scoring function per variant, plus its tokenizer."""

from spart.bm25.index import BM25Index
from spart.bm25.scoring import VARIANTS, Variant, get_variant
from spart.bm25.tokenize import Tokenizer

__all__ = ["BM25Index", "Tokenizer", "VARIANTS", "Variant", "get_variant"]
