"""The ``spart serve`` application: hayhooks' server with spart's pipelines deployed, plus the search page.

Routes (all in the OpenAPI schema at ``/openapi.json``, browsable at ``/docs``):

* ``POST /<pipeline>/run`` — ``{"query": ..., "top_k": ...}`` -> the ranked passages (one per pipeline);
* ``GET /status`` — health: ``{"status": "Up!", "pipelines": [...]}`` (hayhooks'); ``/status/<pipeline>``;
* ``GET /`` — the search page; ``GET /pipelines`` — what the page offers.

hayhooks' routes that deploy or undeploy code over HTTP, draw pipelines (a web service), or speak OpenAI's
chat protocol are not mounted: the server runs exactly the pipelines it was started with. Pipelines load
through :func:`spart.pipelines.load_pipeline`, which allows spart's modules for its own call; nothing is
loaded with hayhooks' YAML loader or Haystack's ``unsafe`` mode.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Any

from spart.pipelines.pgvector import is_database_url

FAISS_PIPELINES = ("bm25_qa", "dense_qa", "hybrid_qa")
PGVECTOR_PIPELINES = ("dense_qa_pgvector", "hybrid_qa_pgvector")


def default_pipelines(store: str | os.PathLike) -> tuple[str, ...]:
    """The packaged pipelines served for ``store`` when none are named (rerank pipelines only on request)."""
    return PGVECTOR_PIPELINES if is_database_url(store) else FAISS_PIPELINES


def pipeline_name(name_or_path: str | os.PathLike) -> str:
    """The route name of a pipeline: a packaged name as is, a YAML file by its stem."""
    from spart.pipelines import pipeline_path

    return pipeline_path(name_or_path).stem


def create_app(pipelines: dict[str, dict[str, Any]], *, title: str = "spart") -> Any:
    """Build the FastAPI application serving ``pipelines``.

    :param pipelines: ``{pipeline name or YAML path: load_pipeline keyword arguments}``; each is loaded and
        warmed up here, so a bad store or YAML fails now, not on the first request.
    :param title: the application's title in the OpenAPI schema and on the page.
    :returns: the FastAPI application (run it with uvicorn).
    :raises ValueError / FileNotFoundError: as ``load_pipeline`` does, naming the pipeline.
    """
    from fastapi import HTTPException
    from fastapi.responses import HTMLResponse
    from hayhooks.server.utils.deploy_utils import commit_prepared_pipeline
    from hayhooks.server.utils.models import PreparedPipeline
    from hayhooks.settings import settings

    from spart.serving.wrapper import SpartPipelineWrapper

    if not pipelines:
        raise ValueError("no pipeline to serve")
    # No pipelines directory (nothing is deployed from disk), no dashboards and traces, no cross-origin calls
    # (the search page is served from the same origin).
    settings.pipelines_dir = ""
    settings.cors_allow_origins = []
    settings.tracing_enabled = False
    settings.monitoring_enabled = False
    settings.chainlit_enabled = False

    wrappers: dict[str, SpartPipelineWrapper] = {}
    for name_or_path, load_kwargs in pipelines.items():
        name = pipeline_name(name_or_path)
        if name in wrappers:
            raise ValueError(f"two pipelines would be served as /{name}/run; rename one of the YAML files")
        wrapper = SpartPipelineWrapper(name_or_path, load_kwargs)
        try:
            wrapper.setup()
        except (ValueError, FileNotFoundError) as error:
            raise type(error)(f"pipeline {name}: {error}") from error
        wrappers[name] = wrapper

    from hayhooks.server.app import create_app as create_hayhooks_app
    from hayhooks.server.pipelines.registry import registry
    from hayhooks.server.routers import status_router

    app = create_hayhooks_app()
    app.title = title
    # hayhooks' own routes that stay, besides its status router: the API documentation, wherever the app has it.
    documentation = {app.openapi_url, app.docs_url, app.swagger_ui_oauth2_redirect_url, app.redoc_url} - {None}
    app.router.routes = [
        r
        for r in app.router.routes
        if getattr(r, "path", None) in documentation or getattr(r, "original_router", None) is status_router
    ]
    for name in list(registry.get_names()):  # a previous app in this process
        registry.remove(name)
    for name, wrapper in wrappers.items():
        commit_prepared_pipeline(PreparedPipeline(name=name, wrapper=wrapper), app=app)

    page = resources.files("spart.serving").joinpath("search.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page() -> str:
        return page.replace("{{title}}", title)

    @app.get("/pipelines", tags=["search page"], summary="The served pipelines and their retrievers")
    def list_pipelines() -> dict[str, Any]:
        return {
            "pipelines": [
                {"name": name, "description": wrapper.pipeline.metadata.get("description", "")}
                for name, wrapper in wrappers.items()
            ]
        }

    @app.post("/{pipeline}/run", include_in_schema=False)
    def unknown_pipeline(pipeline: str) -> None:  # matched only when no served pipeline has that name
        raise HTTPException(
            status_code=404, detail=f"unknown pipeline {pipeline!r}; served: {', '.join(sorted(wrappers))}"
        )

    app.state.spart_wrappers = wrappers
    return app


def serve(app: Any, host: str = "127.0.0.1", port: int = 1416) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["create_app", "default_pipelines", "pipeline_name", "serve"]
