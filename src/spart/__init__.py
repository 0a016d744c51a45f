"""spart: label-free dense retrievers (SPIDER, ART) as Haystack components, and the code that trains them.

Importing ``spart`` is light: heavy modules (torch, transformers, faiss) load only when a component or
trainer that needs them is used.
"""

__version__ = "0.1.0"
