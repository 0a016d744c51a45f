"""Training configuration: every trainer's pydantic config, loaded from YAML with command-line overrides.

The general part (:class:`TrainingConfig`, :func:`load_config`, :func:`apply_overrides`) is shared by every
trainer; :class:`EncoderTrainingConfig` adds the options of the encoder being trained. The method configs:
:class:`ContrastiveTrainingConfig` (SPIDER pre-training and few-shot fine-tuning, with
:class:`SpiderDataConfig` or :class:`PairsDataConfig`) and :class:`ARTTrainingConfig` (with
:class:`TeacherConfig`). Which method uses which config is :mod:`spart.training.registry`'s table.

Overrides are ``key=value`` strings with dotted keys for nested sections; the value is parsed as YAML, so
``lr=1e-5``, ``data.kind=pairs``, ``shared=false`` and ``eval_steps=[100, 200]`` all do what they say::

    config = load_config(ContrastiveTrainingConfig, "spider.yaml", ["lr=1e-5", "max_steps=200"])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spart.atomic import atomic_write

C = TypeVar("C", bound="TrainingConfig")


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys (a misspelt option must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainingConfig(StrictModel):
    """Options every trainer has: output, optimisation schedule, precision, checkpointing and logging.

    :param output_dir: where checkpoints, the metrics CSV and the final model go.
    :param seed: seeds the model init (where random), data order and dropout.
    :param max_steps: optimiser steps to run.
    :param batch_size: the *global* batch (all ranks together); each rank takes ``batch_size / world_size``.
    :param lr: peak learning rate of AdamW.
    :param weight_decay: AdamW decay, not applied to biases and LayerNorm weights (DPR's convention).
    :param warmup_ratio: fraction of ``max_steps`` of linear warm-up (SPIDER/DPR: about 1%); ``warmup_steps``
        wins when set.
    :param grad_clip: max global gradient norm (DPR and SPIDER use 2.0); ``0`` disables clipping.
    :param precision: ``auto`` (bf16 where native, else fp32), ``fp32``, ``bf16`` or ``fp16`` (CUDA only,
        with a gradient scaler).
    :param checkpoint_every: write a resumable checkpoint every N steps (0: only at the end).
    :param keep_checkpoints: how many recent checkpoints to keep.
    :param log_every: write a metrics row every N steps.
    :param dist_timeout_s: collective-operation timeout of the process group.
    :param time_budget_s: stop at the first step that ends past this many seconds of training in this process
        (a resumed run gets the budget afresh); that step is checkpointed and exported, so a budget-stopped run
        leaves a model to select and can be resumed toward ``max_steps``. The learning-rate schedule stays the
        one of ``max_steps`` (a stopped run has not decayed to 0). ``None``: no budget.
    """

    output_dir: Path
    seed: int = 42
    max_steps: int = Field(1000, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    adam_eps: float = Field(1e-8, gt=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = Field(0.01, ge=0, le=1)
    warmup_steps: int | None = Field(None, ge=0)
    grad_clip: float = Field(2.0, ge=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    checkpoint_every: int = Field(500, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, gt=0)
    dist_timeout_s: float = Field(1800.0, gt=0)
    time_budget_s: float | None = Field(None, gt=0)
    num_threads: int | None = Field(None, gt=0)
    progress: bool = True

    def resolved_warmup_steps(self) -> int:
        """Warm-up length in steps: ``warmup_steps`` if given, else ``round(warmup_ratio * max_steps)``."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return int(round(self.warmup_ratio * self.max_steps))

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)


class EncoderTrainingConfig(TrainingConfig):
    """Options of the dual encoder being trained, shared by every method (defaults vary per method).

    :param model: initial encoder: a MiniLM alias, a spart/sentence-transformers/HF directory (a SPIDER
        checkpoint...) or a hub id.
    :param passage_model: optional separate starting point of the passage tower (needs ``shared: false``).
    :param random_init: re-initialise the weights randomly (keeping the architecture and vocabulary of
        ``model``); ``random_init_layers``/``random_init_hidden`` shrink the architecture.
    :param shared: one tower for queries and passages, or two.
    :param pooling / normalize: ``cls`` or ``mean`` pooling and L2 normalisation; ``None`` keeps the model's
        own (sentence-transformers settings, spart.json, else the method's defaults).
    :param query_max_length / passage_max_length: token budgets (SPIDER/DPR/ART: 64 / 240).
    :param export_steps: also save a loadable model (``models/step-N``) at these steps, for learning curves.
    :param grad_cache_chunk: GradCache chunk size (per rank, in texts): the passages (and, in the contrastive
        trainer, the queries) are encoded in chunks of this many with the exact full-batch gradient, so activation
        memory is that of one chunk; ``None`` encodes the batch at once.
    :param fast_dropout: on CPU, draw dropout masks with :mod:`spart.training.dropout` (the same Bernoulli dropout,
        ``p`` rounded to 1/65536, about half the step time of native dropout there); ``false`` keeps torch's native
        dropout (runs bit-identical to those made before it). CUDA always uses the native kernels.
    """

    model: str
    passage_model: str | None = None
    random_init: bool = False
    random_init_layers: int | None = Field(None, gt=0)
    random_init_hidden: int | None = Field(None, gt=0)
    shared: bool = True
    pooling: Literal["cls", "mean"] | None = None
    normalize: bool | None = None
    query_max_length: int = Field(64, ge=4)
    passage_max_length: int = Field(240, ge=4)
    export_steps: list[int] = Field(default_factory=list)
    grad_cache_chunk: int | None = Field(None, gt=0)
    fast_dropout: bool = True

    @model_validator(mode="after")
    def _passage_tower(self) -> EncoderTrainingConfig:
        if self.passage_model is not None and self.shared:
            raise ValueError("passage_model gives a separate passage tower; set shared: false")
        return self


# ---------------------------------------------------------------------- the contrastive trainer's config
class SpiderDataConfig(StrictModel):
    """SPIDER pre-training data: recurring-span examples mined from a corpus (``spart.training.spider_examples``).

    :param corpus: passages (DPR TSV or BEIR corpus.jsonl) the spans were mined from; a list trains on several
        corpora at once (paired with ``spans`` in order; examples of all corpora are shuffled together).
    :param spans: the mined span file (``spart mine-spans`` output, ``.jsonl[.gz]``), or one per corpus.
    :param options: passed as keyword arguments to the examples dataset (query transformation etc.).
    """

    kind: Literal["spider"] = "spider"
    corpus: Path | list[Path]
    spans: Path | list[Path]
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _paired(self) -> SpiderDataConfig:
        if isinstance(self.corpus, list) != isinstance(self.spans, list) or (
            isinstance(self.corpus, list) and len(self.corpus) != len(self.spans)
        ):
            raise ValueError("corpus and spans must both be single paths or lists of the same length")
        return self

    def sources(self) -> list[tuple[Path, Path]]:
        """``(corpus, spans)`` pairs."""
        if isinstance(self.corpus, list):
            return list(zip(self.corpus, self.spans))
        return [(self.corpus, self.spans)]


class PairsDataConfig(StrictModel):
    """Labelled (question, positive passage) pairs with BM25 hard negatives, for few-shot fine-tuning.

    Exactly one source: a BEIR directory + split (``qrels/<split>.tsv``), or DPR's training JSON.

    :param beir_dir: BEIR directory with corpus.jsonl, queries.jsonl and qrels/.
    :param split: qrels split to train on.
    :param dpr_json: DPR training file (``question``, ``positive_ctxs``, ``hard_negative_ctxs``...).
    :param corpus: corpus to mine BM25 negatives from when ``dpr_json`` is given (DPR TSV or BEIR jsonl).
    :param bm25_negatives: BM25 candidates kept per question (non-positive top hits; one used per epoch).
    """

    kind: Literal["pairs"] = "pairs"
    beir_dir: Path | None = None
    split: str = "train"
    dpr_json: Path | None = None
    corpus: Path | None = None
    bm25_negatives: int = Field(10, ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> PairsDataConfig:
        if (self.beir_dir is None) == (self.dpr_json is None):
            raise ValueError("pairs data needs exactly one of beir_dir or dpr_json")
        return self


class ContrastiveTrainingConfig(EncoderTrainingConfig):
    """SPIDER pre-training and few-shot fine-tuning: one in-batch contrastive loss, two data sources.

    Encoder options are :class:`EncoderTrainingConfig`'s; here one shared tower (SPIDER; ``shared: false`` for
    DPR-style fine-tuning), ``cls`` pooling (SPIDER/DPR) and no normalisation by default.

    :param temperature: scores are divided by it; 1.0 is SPIDER/DPR's plain dot product.
    :param data: span examples (``kind: spider``) or labelled pairs (``kind: pairs``).
    """

    pooling: Literal["cls", "mean"] = "cls"
    normalize: bool = False
    temperature: float = Field(1.0, gt=0)
    data: SpiderDataConfig | PairsDataConfig = Field(discriminator="kind")


# ---------------------------------------------------------------------- the ART trainer's config
class TeacherConfig(StrictModel):
    """The frozen teacher: an LM's question likelihood (:class:`spart.teacher.QuestionLikelihoodScorer`, ART) or a
    second encoder's inner products (:class:`spart.teacher.EncoderScorer`, not in ART).

    :param model: HF directory, ``.gguf`` file or local hub id; ``None`` = the packaged SmolLM2-135M-Instruct. A
        sentence-transformers or spart encoder directory is an encoder teacher (``kind: auto``).
    :param kind: ``"lm"``, ``"encoder"`` or ``"auto"`` (``encoder`` when ``model`` is an encoder directory, see
        :func:`spart.teacher.is_encoder_model`). An encoder teacher uses ``device``, ``precision`` (``auto``,
        ``fp32``, ``bf16``) and ``batch_size``; the LM options and the score cache do not apply to it.
    :param cache: SQLite score cache; default ``<output_dir>/teacher-scores.sqlite``. Scores are keyed by the
        teacher's fingerprint, so one file can be shared by runs and ranks.
    :param use_cache: set ``false`` to score every pair afresh.
    :param base_weight: ``0`` (ART): the target is the LM's score alone. Above 0 the target is the per-question
        z-score interpolation with the frozen base retriever's score (:mod:`spart.teacher.mixing`; a deviation
        from ART for adapting an encoder that already ranks well).
    :param base_model: the frozen base retriever; ``None`` = the run's initial ``model``, loaded as it is deployed.
    """

    model: str | None = None
    kind: Literal["auto", "lm", "encoder"] = "auto"
    gguf_file: str | None = None
    model_kind: Literal["auto", "causal", "seq2seq"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str | None = None
    batch_size: int = Field(16, gt=0)
    max_passage_tokens: int = Field(256, gt=0)
    max_question_tokens: int = Field(64, gt=0)
    use_chat_template: bool | None = None
    cache: Path | None = None
    use_cache: bool = True
    base_weight: float = Field(0.0, ge=0, le=1)
    base_model: str | None = None


class ARTTrainingConfig(EncoderTrainingConfig):
    """ART training options (see :mod:`spart.training.art`).

    Encoder options are :class:`EncoderTrainingConfig`'s; here two towers (ART) and the model's own pooling
    and normalisation (else ART's CLS without normalisation) by default.

    :param questions: training questions (text lines, DPR QA csv/tsv, or BEIR queries.jsonl).
    :param evidence: the corpus to retrieve from (DPR TSV or BEIR corpus).
    :param max_questions / max_evidence: keep only the first N (small runs).
    :param top_k: retrieved passages per question (ART: 32).
    :param temperature: student temperature; ``None`` = sqrt(dim), or 0.05 for normalised embeddings.
    :param teacher_temperature: teacher scores are divided by it (ART: 1.0), or ``"auto"``: the temperature at
        which the teacher's distribution over the candidates of the first ``calibration_questions`` questions of
        the data order has the student's mean entropy at step 0 (computed once before the first step, kept in
        every checkpoint). Not in ART (see :mod:`spart.training.art`).
    :param calibration_questions: how many questions ``teacher_temperature: auto`` calibrates on (their teacher
        scores go through the teacher's cache, so training reuses them).
    :param reindex_every: re-embed the evidence every N steps (ART: 500); 0 never re-embeds.
    :param fixed_candidates: each question's K passages are its top K under the initial model (query and passage
        towers of step 0, eval mode), computed once before the first step, instead of the current query tower's
        search of the index (ART). Needs ``reindex_every: 0``: without re-indexing, the current query tower would
        search passage embeddings of another model. Not in ART (see :mod:`spart.training.art`).
    :param freeze_passage_tower: train the query tower only (query-side fine-tuning): the passage tower keeps its
        initial weights, so the index built before the first step always holds the current passage embeddings
        (never stale, never re-embedded) and the student scores each candidate with its index embedding instead
        of re-embedding it. Needs ``shared: false`` and ``reindex_every: 0``. Not in ART (see
        :mod:`spart.training.art`).
    :param index_factory: FAISS factory of each shard (``Flat``: exact search, as ART).
    :param encode_batch_size: batch size of evidence re-embedding.
    :param teacher: the teacher LM and its score cache.
    """

    grad_clip: float = Field(1.0, ge=0)
    shared: bool = False
    questions: Path
    evidence: Path
    max_questions: int | None = Field(None, gt=0)
    max_evidence: int | None = Field(None, gt=0)
    top_k: int = Field(32, gt=0)
    temperature: float | None = Field(None, gt=0)
    teacher_temperature: Annotated[float, Field(gt=0)] | Literal["auto"] = 1.0
    calibration_questions: int = Field(128, gt=0)
    reindex_every: int = Field(500, ge=0)
    fixed_candidates: bool = False
    freeze_passage_tower: bool = False
    index_factory: str = "Flat"
    encode_batch_size: int = Field(64, gt=0)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)

    @model_validator(mode="after")
    def _fixed_candidates_need_a_static_index(self) -> ARTTrainingConfig:
        if self.fixed_candidates and self.reindex_every:
            raise ValueError(
                f"fixed_candidates needs reindex_every: 0 (got {self.reindex_every}): the candidates are the initial "
                "model's top K, over the index that model built"
            )
        return self

    @model_validator(mode="after")
    def _a_frozen_passage_tower_is_separate_and_never_reindexed(self) -> ARTTrainingConfig:
        if self.freeze_passage_tower and self.shared:
            raise ValueError(
                "freeze_passage_tower needs shared: false: with one shared tower, training the query side trains "
                "the passage side too"
            )
        if self.freeze_passage_tower and self.reindex_every:
            raise ValueError(
                f"freeze_passage_tower needs reindex_every: 0 (got {self.reindex_every}): a frozen passage tower "
                "re-embeds the evidence exactly as it was, so re-indexing would only cost time"
            )
        return self


# ---------------------------------------------------------------------- loading
def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> ``(["a", "b"], parsed value)``; the value is parsed as YAML."""
    if "=" not in item:
        raise ValueError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ValueError(f"override {item!r}: value is not valid YAML ({error})") from error
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of ``data`` with each ``key=value`` override set (nested sections created as needed)."""
    result = json.loads(json.dumps(data, default=str))  # deep copy of plain YAML data
    for item in overrides or []:
        path, value = parse_override(item)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return result


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; a missing file or non-mapping content is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML: {error}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options at the top level, got {type(data).__name__}")
    return data


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Build ``cls`` from a YAML file (optional) and ``key=value`` overrides.

    Relative paths inside the file stay relative to the current directory (as on the command line).

    :raises FileNotFoundError: the file does not exist.
    :raises ValueError: bad YAML, a bad override, an unknown option or an invalid value; the message names it.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<config>'}: {e['msg']}" for e in error.errors())
        source = f" in {path}" if path is not None else ""
        raise ValueError(f"invalid {cls.__name__}{source}: {problems}") from None


def save_config(config: TrainingConfig, path: str | Path) -> None:
    """Write ``config`` as YAML (atomically), so a run records exactly what it was started with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config.model_dump(mode="json"), handle, sort_keys=False)
