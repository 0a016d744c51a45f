"""spart.index: dense inner-product index (FAISS underneath) and sharded top-k merge.

FAISS itself is imported only when an index is built or loaded.
"""

from spart.index.dense import DenseIndex, merge_topk

__all__ = ["DenseIndex", "merge_topk"]
