"""SpartPipelineWrapper: one spart pipeline as a hayhooks deployment (``POST /<name>/run``)."""

from __future__ import annotations

import os
import threading
from typing import Any

from fastapi import HTTPException
from hayhooks import BasePipelineWrapper


class SpartPipelineWrapper(BasePipelineWrapper):
    """Serves a pipeline loaded by :func:`spart.pipelines.load_pipeline` (spart's own allowlist, never unsafe).

    hayhooks builds the request model and the OpenAPI schema from :meth:`run_api`'s signature and docstring.
    Bad input (an empty question, ``top_k <= 0``) is answered with HTTP 400 and the message the components
    raise; runs of one pipeline are serialised (a pipeline's components and store connection are shared).

    :param name_or_path: packaged pipeline name or YAML path.
    :param load_kwargs: keyword arguments of ``load_pipeline`` (``store``, ``model``, ``top_k``...).
    """

    def __init__(self, name_or_path: str | os.PathLike, load_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.name_or_path = name_or_path
        self.load_kwargs = dict(load_kwargs or {})
        self._lock = threading.Lock()
        self._is_run_api_implemented = True  # what hayhooks' module loader would detect

    def setup(self) -> None:
        """Load the pipeline and warm up its components, so the first request is as fast as the next."""
        from spart.pipelines import load_pipeline

        self.pipeline = load_pipeline(self.name_or_path, **self.load_kwargs)
        self.pipeline.warm_up()

    def run_api(self, query: str, top_k: int | None = None) -> dict:
        """Retrieve the passages for one question.

        :param query: the question (non-empty).
        :param top_k: number of passages in the final list (default: the pipeline's setting; > 0).
        :returns: the final list (rank, id, score, title, text, and for each retriever the rank and raw score it
            gave the passage) and each retriever's own list.
        """
        return self.ask(query, top_k)

    def ask(self, query: str, top_k: int | None = None) -> dict[str, Any]:
        """:meth:`run_api` for in-process callers (the search page, the load test's baseline)."""
        from spart.pipelines.display import ask
        from spart.validation import check_top_k

        try:
            if top_k is not None:
                check_top_k(top_k)
            with self._lock:
                answer = ask(self.pipeline, query, top_k=top_k)
        except ValueError as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        return answer.to_dict(show=top_k)
