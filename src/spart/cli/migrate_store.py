"""``spart migrate-store``: convert document store directories of format 1 (snapshots) to format 2 in place.

Example::

    spart migrate-store stores/wiki

Format 1 wrote the whole store as a snapshot on each ``save()``; format 2 keeps a durable SQLite database
plus checkpointed indexes (see ``spart.components.document_stores.faiss.persistence``). Opening a format-1
store migrates it too; this command does it ahead of time (for example before read-only use). The
conversion is crash-safe and keeps the dense index (no retraining); BM25 is rebuilt once.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "migrate-store",
        help="convert format-1 document store directories to the current format",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("stores", nargs="+", help="store directories")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.components.document_stores import FaissDocumentStore
    from spart.components.document_stores.faiss.persistence import migrate_v1

    for path in args.stores:
        if not migrate_v1(path):
            print(f"{path}: already in the current format")
            continue
        store = FaissDocumentStore.load(path)  # builds the BM25 index once ...
        store.save()  # ... and checkpoints it, so later opens load it
        print(f"{path}: migrated to format 2 ({store.count_documents()} documents)")
        store.close()
    return 0
