"""Which embedder class serves each method (``spider``, ``art``) and role (``text``, ``document``).

The one table from which the package's exports, the pipeline loader's ``method=`` swap and the store
builder's "text embedder for this document embedder" are derived. Light: importing it loads no model code.
"""

from __future__ import annotations

METHODS = ("spider", "art")
ROLES = ("text", "document")

# (method, role) -> (module in this package, class name)
EMBEDDERS: dict[tuple[str, str], tuple[str, str]] = {
    ("spider", "text"): ("spider_text_embedder", "SpiderTextEmbedder"),
    ("spider", "document"): ("spider_document_embedder", "SpiderDocumentEmbedder"),
    ("art", "text"): ("art_text_embedder", "ARTTextEmbedder"),
    ("art", "document"): ("art_document_embedder", "ARTDocumentEmbedder"),
}
PACKAGE = __name__.rpartition(".")[0]
# (method, role) -> the class's qualified name, as in a serialised pipeline's ``type``
EMBEDDER_TYPES = {key: f"{PACKAGE}.{module}.{name}" for key, (module, name) in EMBEDDERS.items()}


def embedder_type(method: str, role: str) -> str:
    """The qualified class name (a pipeline YAML's ``type``) of the ``role`` embedder of ``method``.

    :param method: ``"spider"`` or ``"art"``.
    :param role: ``"text"`` (embeds questions) or ``"document"`` (embeds passages).
    :raises ValueError: for an unknown method or role.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
    return EMBEDDER_TYPES[(method, role)]


def embedder_class(method: str, role: str) -> type:
    """The ``role`` embedder class of ``method`` (imports it), e.g. ``embedder_class("art", "document")``.

    :raises ValueError: for an unknown method or role.
    """
    import importlib

    module, _, name = embedder_type(method, role).rpartition(".")
    return getattr(importlib.import_module(module), name)


def method_and_role(type_name: str) -> tuple[str, str] | None:
    """``(method, role)`` of a qualified embedder class name, or ``None`` if it is not one of spart's embedders."""
    for key, qualified in EMBEDDER_TYPES.items():
        if qualified == type_name:
            return key
    return None
