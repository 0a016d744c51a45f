"""PostgreSQL + pgvector as a spart store: build a table of embedded passages, and point pipelines at it.

A store is named by a database URL, optionally with the table after ``#``:
``postgresql://user@host:5432/db#pydocs`` (default table ``spart_documents``). The table is Haystack's
`PgvectorDocumentStore` layout (from ``pgvector-haystack``; the ``[pgvector]`` extra), searched by inner
product, the score spart's encoders are trained for, through an HNSW index.

* :func:`build_pgvector_store` (used by :func:`spart.pipelines.build_store` for a URL) embeds the passages into
  a staging table and, in one transaction, swaps it in place of the old table and records how it was built
  (the ``spart_build_info`` table, the database twin of ``spart-build.json``): an interrupted build leaves the
  previous table untouched. The HNSW index is built after the bulk load.
* :func:`configure_pgvector_stores` fills a pipeline dictionary's `PgvectorDocumentStore` entries for one table
  (table, index names, embedding size); :func:`connect_pgvector_stores` hands the URL to the built stores
  in memory, so a password in it is never written into a serialised pipeline.

Pitfalls handled here: ``recreate_table`` is never set on a store that a pipeline loads (it would empty the
table), and ``hnsw_ef_search`` (pgvector's default 40 caps how many rows HNSW returns) is kept at least the
retrieval depth of every retriever on the store.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from spart._extras import require

if TYPE_CHECKING:
    from haystack import Pipeline

STORE_TYPE = "haystack_integrations.document_stores.pgvector.document_store.PgvectorDocumentStore"
URL_SCHEMES = ("postgresql", "postgres")
DEFAULT_TABLE = "spart_documents"
BUILD_INFO_TABLE = "spart_build_info"
DEFAULT_EF_SEARCH = 400  # = exact search on pydocs (15k passages); 100 lost 1.3 nDCG@10 points (docs/serving.md)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def is_database_url(store: Any) -> bool:
    """Whether ``store`` names a PostgreSQL database (``postgresql://...``) rather than a store directory."""
    return isinstance(store, str) and urlsplit(store).scheme in URL_SCHEMES


def split_store_url(url: str) -> tuple[str, str]:
    """``postgresql://...#table`` -> (connection URL without the fragment, table name).

    :raises ValueError: if the URL is not a PostgreSQL URL or the table is not a plain SQL identifier.
    """
    if not is_database_url(url):
        raise ValueError(f"not a PostgreSQL URL (postgresql://user@host:port/db#table): {url!r}")
    connection, _, table = url.partition("#")
    table = table or DEFAULT_TABLE
    if not _TABLE_NAME.fullmatch(table):
        raise ValueError(
            f"table name {table!r} after '#' must be letters, digits and '_' (at most 40, not a digit first)"
        )
    return connection, table


def store_init_parameters(
    table: str, embedding_dim: int, ef_search: int = DEFAULT_EF_SEARCH, search_strategy: str = "hnsw"
) -> dict[str, Any]:
    """The `PgvectorDocumentStore` settings spart uses for ``table`` (inner product, index names per table)."""
    return {
        "table_name": table,
        "embedding_dimension": int(embedding_dim),
        "vector_function": "inner_product",
        "search_strategy": search_strategy,
        "hnsw_index_name": f"{table}_hnsw",
        "hnsw_ef_search": int(ef_search),
        "keyword_index_name": f"{table}_keyword",
        "recreate_table": False,
    }


def _connect(connection_url: str):
    import psycopg

    try:
        return psycopg.connect(connection_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise ValueError(f"cannot connect to PostgreSQL at {_redact(connection_url)}: {error}".strip()) from error


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _table_exists(conn, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (f'public."{table}"',)).fetchone()[0] is not None


def read_pgvector_build_info(url: str) -> dict[str, Any] | None:
    """The build record of the table named by ``url``; ``None`` if it has none (not built by spart).

    :raises FileNotFoundError: if the table does not exist (a pipeline would silently create an empty one).
    :raises ValueError: if the database cannot be reached.
    """
    connection_url, table = split_store_url(url)
    with _connect(connection_url) as conn:
        if not _table_exists(conn, table):
            raise FileNotFoundError(
                f"no table {table!r} in {_redact(connection_url)}: build it with "
                f"`spart index CORPUS --store {_redact(connection_url)}#{table}`"
            )
        if not _table_exists(conn, BUILD_INFO_TABLE):
            return None
        row = conn.execute(f"SELECT info FROM {BUILD_INFO_TABLE} WHERE table_name = %s", (table,)).fetchone()
    return None if row is None else row[0]


def build_pgvector_store(
    url: str, chunks, info: dict[str, Any], *, overwrite: bool = False, ef_search: int = DEFAULT_EF_SEARCH
) -> None:
    """Write embedded documents into the table named by ``url`` (used by :func:`spart.pipelines.build_store`).

    :param url: ``postgresql://...#table``.
    :param chunks: lists of embedded documents (consumed once).
    :param info: the build record; ``embedding_dim`` sizes the vector column. ``documents`` and ``seconds``
        are filled in by the caller after ``chunks`` is exhausted, before the record is written.
    :param overwrite: replace an existing table; without it an existing table is an error.
    :param ef_search: the HNSW search breadth saved with the record (at least the retrieval depth).
    :raises FileExistsError: if the table exists and ``overwrite`` is false.
    :raises ValueError: if the database cannot be reached or holds no pgvector.
    """
    from haystack.document_stores.types import DuplicatePolicy
    from haystack.utils import Secret

    PgvectorDocumentStore = require("haystack_integrations.document_stores.pgvector", "pgvector").PgvectorDocumentStore

    connection_url, table = split_store_url(url)
    staging = f"{table}__staging"
    with _connect(connection_url) as conn:
        if _table_exists(conn, table) and not overwrite:
            raise FileExistsError(
                f"table {table!r} already exists in {_redact(connection_url)}; overwrite it or pick "
                "another table (postgresql://...#name)"
            )
        conn.execute(f'DROP TABLE IF EXISTS "{staging}" CASCADE')
    params = store_init_parameters(staging, info["embedding_dim"], ef_search, search_strategy="exact_nearest_neighbor")
    store = PgvectorDocumentStore(connection_string=Secret.from_token(connection_url), **params)
    try:
        for chunk in chunks:
            # Plain floats: numpy scalars do not adapt to pgvector's column type.
            chunk = [replace(doc, embedding=[float(x) for x in doc.embedding]) for doc in chunk]
            store.write_documents(chunk, policy=DuplicatePolicy.FAIL)
    except BaseException:
        store.close()
        with _connect(connection_url) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{staging}" CASCADE')
        raise
    store.close()
    info["pgvector"] = {"table": table, "hnsw_ef_search": int(ef_search)}
    with _connect(connection_url) as conn, conn.transaction():
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {BUILD_INFO_TABLE} (table_name text PRIMARY KEY, info jsonb NOT NULL)"
        )
        conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        conn.execute(f'ALTER TABLE "{staging}" RENAME TO "{table}"')
        conn.execute(f'ALTER INDEX "{staging}_keyword" RENAME TO "{table}_keyword"')
        conn.execute(
            f"INSERT INTO {BUILD_INFO_TABLE} VALUES (%s, %s) "
            "ON CONFLICT (table_name) DO UPDATE SET info = EXCLUDED.info",
            (table, json.dumps(info)),
        )
    # Building the HNSW graph after the bulk load is faster than growing it row by row.
    final = PgvectorDocumentStore(
        connection_string=Secret.from_token(connection_url),
        **store_init_parameters(table, info["embedding_dim"], ef_search),
    )
    final.count_documents()
    final.close()


def _pgvector_specs(specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for spec in specs.values():
        nested = spec["init_parameters"].get("document_store")
        if isinstance(nested, dict) and nested.get("type") == STORE_TYPE and all(nested is not f for f in found):
            found.append(nested)
    return found


def configure_pgvector_stores(specs: dict[str, dict[str, Any]], url: str | None, info: dict[str, Any] | None) -> bool:
    """Point every `PgvectorDocumentStore` of a pipeline dictionary at the table named by ``url``.

    :param specs: the pipeline dictionary's ``components`` (changed in place).
    :param url: the store URL (``None``: keep the YAML's table; the connection then comes from its secret,
        ``PG_CONN_STR`` in spart's YAMLs).
    :param info: the table's build record (its embedding size and ef_search are used), if any.
    :returns: whether the pipeline has a `PgvectorDocumentStore`.
    :raises ValueError: if ``url`` is given and the pipeline has no `PgvectorDocumentStore`.
    """
    stores = _pgvector_specs(specs)
    if url is not None and not stores:
        raise ValueError(
            "a PostgreSQL store was given, but this pipeline has no PgvectorDocumentStore: "
            "use a *_pgvector pipeline (e.g. dense_qa_pgvector)"
        )
    for nested in stores:
        params = nested.setdefault("init_parameters", {})
        if url is not None:
            _, table = split_store_url(url)
            dim = (info or {}).get("embedding_dim", params.get("embedding_dimension", 768))
            ef = (info or {}).get("pgvector", {}).get("hnsw_ef_search", params.get("hnsw_ef_search") or 0)
            params.update(
                {
                    k: v
                    for k, v in store_init_parameters(table, dim, ef).items()
                    if k not in ("search_strategy", "vector_function")
                }
            )
        params["recreate_table"] = False
    return bool(stores)


def connect_pgvector_stores(pipeline: Pipeline, url: str | None) -> None:
    """Finish the `PgvectorDocumentStore` s of a built pipeline: connection and HNSW search breadth.

    :param url: give every store the connection of ``url`` (kept in memory only: the pipeline can then not be
        serialised); ``None`` keeps each store's own secret.

    ``hnsw_ef_search`` becomes at least the ``top_k`` of every retriever on the store (HNSW returns at most
    ef_search rows); a larger ``top_k`` passed at run time is still capped by it.
    """
    from haystack.utils import Secret

    # A pipeline without a pgvector store needs nothing from the [pgvector] extra (the core install lacks it).
    stores = [(instance, getattr(instance, "document_store", None)) for _, instance in pipeline.walk()]
    stores = [
        (i, s) for i, s in stores if type(s).__module__.startswith("haystack_integrations.document_stores.pgvector")
    ]
    if not stores and url is None:
        return
    PgvectorDocumentStore = require("haystack_integrations.document_stores.pgvector", "pgvector").PgvectorDocumentStore
    connection_url = split_store_url(url)[0] if url is not None else None
    for instance, store in stores:
        if not isinstance(store, PgvectorDocumentStore):
            continue
        if connection_url is not None:
            store.connection_string = Secret.from_token(connection_url)
        if store.search_strategy == "hnsw":
            store.hnsw_ef_search = max(
                store.hnsw_ef_search or 0, int(getattr(instance, "top_k", 0) or 0), DEFAULT_EF_SEARCH
            )
