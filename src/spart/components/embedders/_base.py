"""The machinery and documentation of the four dense embedders: load a `DualEncoder`, embed one query or many
documents.

`SpiderTextEmbedder`, `SpiderDocumentEmbedder`, `ARTTextEmbedder` and `ARTDocumentEmbedder` are thin
subclasses that only choose the method's preset (``method_defaults``: `SPIDER_DEFAULTS`, one shared tower;
`ART_DEFAULTS`, separate query and passage towers). Their init parameters are documented here, once:
:class:`DualEncoderEmbedderBase` (all four) and :class:`DocumentEmbedderBase` (the document embedders).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from haystack import Document, component, default_from_dict, default_to_dict

from spart.encoders.backends import check_backend
from spart.encoders.config import POOLING_MODES, DualEncoderConfig
from spart.validation import check_positive_int

if TYPE_CHECKING:
    from spart.encoders.dual_encoder import DualEncoder

PRECISIONS = ("auto", "fp32", "bf16")  # checked again (and resolved) by spart.encoders.precision at load

# One loaded encoder per distinct load request, shared by every embedder in the process that asks for it (a
# text and a document embedder in one pipeline load the model once). Weak values: the model is freed when
# the last embedder holding it is.
_ENCODERS: weakref.WeakValueDictionary[tuple, DualEncoder] = weakref.WeakValueDictionary()
_ENCODERS_LOCK = threading.Lock()


def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 directory: the dense model used when none is given.

    No trained SPIDER or ART model ships with spart yet, so ``model=None`` means this general-purpose
    sentence-transformers model (mean pooling, normalised; those settings come from its own files).
    """
    from spart.encoders.loading import packaged_minilm_path

    return str(packaged_minilm_path())


def _location_key(location: str) -> tuple:
    """Identifies a model location *and its current contents*: a directory is keyed by its resolved path plus
    the size and modification time of every file in it, so re-saving a model (e.g. a training checkpoint
    written to the same path) is never served from an encoder loaded before; a hub id is keyed by itself."""
    path = Path(location).expanduser()
    if not path.is_dir():
        return (location,)
    stamp = []
    for root, _, files in os.walk(path):
        for name in sorted(files):
            stat = (Path(root) / name).stat()
            stamp.append((os.path.relpath(Path(root) / name, path), stat.st_size, stat.st_mtime_ns))
    return (str(path.resolve()), tuple(sorted(stamp)))


def _check_location(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a model directory or hub id (a non-empty string) or None, got {value!r}")
    return value


class DualEncoderEmbedderBase:
    """Init parameters, serialisation and model loading shared by the text and document embedders.

    Subclasses set ``method_defaults`` (the method's `DualEncoderConfig`). Settings found in the model's
    own files (``spart.json``, sentence-transformers pooling/normalise) take precedence over those defaults;
    the explicit overrides below (``pooling``, ``normalize``, max lengths) win over both.

    ``model=None`` loads the packaged all-MiniLM-L6-v2 (resolved at ``warm_up``): no trained SPIDER or ART
    model ships with spart yet, so until one is passed this is a general-purpose sentence-transformers encoder
    (its own mean pooling and normalisation apply, not the method's [CLS] pooling).
    """

    method_defaults: ClassVar[DualEncoderConfig]

    def __init__(
        self,
        model: str | None = None,
        passage_model: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        query_max_length: int | None = None,
        passage_max_length: int | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        backend: str = "auto",
    ) -> None:
        """Check and store the settings; the model is loaded by :meth:`warm_up`.

        :param model: model directory or hub id: a spart/sentence-transformers directory, a DPR encoder
            directory or a plain Hugging Face BERT-family directory. ``None``: the packaged MiniLM (see above).
        :param passage_model: optional second directory for the passage tower (e.g. a DPR context encoder).
        :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
        :param precision: ``"auto"`` (bf16 where the hardware runs it natively), ``"fp32"`` or ``"bf16"``. In
            bf16 the (inference-only) weights are held in bf16 and the forward pass runs under bf16 autocast.
        :param query_max_length: token budget of a query (``None``: the model's or method's default, 64).
        :param passage_max_length: token budget of ``title [SEP] text`` (``None``: default, 240).
        :param pooling: ``"cls"`` or ``"mean"`` to override the model's pooling; ``None`` keeps it.
        :param normalize: ``True``/``False`` to override L2 normalisation; ``None`` keeps the model's setting.
        :param backend: ``"auto"`` (default: torch where bf16 is native or on a GPU, else the fastest of torch
            fp32 and the installed runtimes on this machine, measured once and cached), ``"torch"``, ``"onnx"``
            (ONNX Runtime, fp32 on the CPU; needs ``pip install 'spart[onnx]'``), ``"openvino"`` (OpenVINO,
            fp32 on the CPU; needs ``pip install 'spart[openvino]'``) or ``"openvino-int8"`` (OpenVINO with 8-bit
            weights and activations; opt-in, checked at export to keep cosine >= 0.999 to fp32). A runtime's
            towers are exported once per model under ``$SPART_CACHE/onnx`` or ``$SPART_CACHE/openvino``.
        :raises ValueError: for a setting of the wrong type or out of range.
        """
        self.model = _check_location(model, "model")
        self.passage_model = _check_location(passage_model, "passage_model")
        if self.passage_model is not None and self.model is None:
            raise ValueError("passage_model needs model (the query tower) to be given too")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {device!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if pooling is not None and pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES} or None, got {pooling!r}")
        if normalize is not None and not isinstance(normalize, bool):
            raise ValueError(f"normalize must be True, False or None, got {normalize!r}")
        # Validates the max lengths (integers >= 4) the same way the encoder will.
        self.method_defaults.with_overrides(query_max_length=query_max_length, passage_max_length=passage_max_length)
        self.backend = check_backend(backend)
        self.device = device
        self.precision = precision
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        self.pooling = pooling
        self.normalize = normalize
        self._encoder: DualEncoder | None = None

    # ------------------------------------------------------------------ serialisation
    def _init_parameters(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "passage_model": self.passage_model,
            "device": self.device,
            "precision": self.precision,
            "query_max_length": self.query_max_length,
            "passage_max_length": self.passage_max_length,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "backend": self.backend,
        }

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component to a dictionary (``model=None`` stays ``None``, not the resolved path).

        :returns: a dictionary with ``type`` and ``init_parameters``.
        """
        return default_to_dict(self, **self._init_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialise the component from a dictionary made by :meth:`to_dict`.

        :param data: the dictionary.
        :returns: the component (not yet warmed up).
        """
        return default_from_dict(cls, data)

    # ------------------------------------------------------------------ loading
    @property
    def resolved_model(self) -> str:
        """The model location that :meth:`warm_up` loads (the packaged MiniLM when ``model`` is None)."""
        return self.model if self.model is not None else default_model_path()

    def warm_up(self) -> None:
        """Load the dual encoder (once; embedders asking for the same model in one process share it).

        The encoder is inference-only here: its weights are frozen and its backend is resolved now (with
        ``backend="auto"``, ``"onnx"`` or ``"openvino"`` this may export the towers once, or reuse the cached export).
        """
        if self._encoder is not None:
            return
        location = self.resolved_model
        overrides = {
            "query_max_length": self.query_max_length,
            "passage_max_length": self.passage_max_length,
            "pooling": self.pooling,
            "normalize": self.normalize,
        }
        key = (
            _location_key(location),
            None if self.passage_model is None else _location_key(self.passage_model),
            self.method_defaults,
            self.device,
            self.precision,
            self.backend,
            tuple(sorted(overrides.items())),
        )
        with _ENCODERS_LOCK:
            encoder = _ENCODERS.get(key)
            if encoder is None:
                from spart.encoders.dual_encoder import DualEncoder

                encoder = DualEncoder.load(
                    location,
                    self.passage_model,
                    defaults=self.method_defaults,
                    device=self.device,
                    precision=self.precision,
                    backend=self.backend,
                    **overrides,
                )
                encoder.requires_grad_(False)
                if encoder.precision == "bf16":
                    _cast_weights_to_bf16(encoder)
                encoder.inference_backend  # noqa: B018 - resolves the backend (may export the towers) at warm-up
                _ENCODERS[key] = encoder
        self._encoder = encoder

    @property
    def encoder(self) -> DualEncoder:
        """The loaded `DualEncoder` (loads it on first access)."""
        if self._encoder is None:
            self.warm_up()
        assert self._encoder is not None
        return self._encoder

    @property
    def embedding_dim(self) -> int:
        """Dimension of the embeddings (loads the model on first access)."""
        return self.encoder.embedding_dim


def _cast_weights_to_bf16(encoder: DualEncoder) -> None:
    """Keep an inference-only encoder's weights in bf16 (the forward pass still runs under bf16 autocast).

    Autocast alone keeps fp32 weights and casts them and the activations at every op; holding the weights in
    bf16 removes those casts. On the packaged MiniLM this took passage embedding from about 1.4x to about 2x
    the throughput of fp32 sentence-transformers on a bf16-capable CPU, with cosine >= 0.9999 to the fp32
    embeddings (benchmarks/bench_embedding.py, docs/benchmarks.md). The encoder's fingerprint is computed
    from these weights, so it differs from the same model loaded in fp32 (its embeddings differ too).
    """
    import torch

    encoder.to(torch.bfloat16)


class TextEmbedderBase(DualEncoderEmbedderBase):
    """Embeds one query string with the query tower. Subclasses are the `@component` classes."""

    @component.output_types(embedding=list[float])
    def run(self, text: str, expansion: str | None = None) -> dict[str, Any]:
        """Embed a query, optionally expanded by generated text.

        :param text: the query; must be a non-empty string.
        :param expansion: optional text about the query written by an LM (e.g. by
            :class:`~spart.components.expanders.AnswerQueryExpander`, GAR / HyDE style): the embedding is then
            the mean of the query's embedding and the passage tower's embedding of the expansion
            (:meth:`~spart.encoders.dual_encoder.DualEncoder.encode_expanded_queries`). ``None`` or blank: the
            plain query embedding.
        :returns: ``{"embedding": list[float]}``.
        :raises ValueError: if ``text`` is None, not a string, or blank, or ``expansion`` is not a string.
        """
        if not isinstance(text, str):
            raise ValueError(
                f"{type(self).__name__} expects the query as a string, got {type(text).__name__}; "
                "to embed documents use the matching DocumentEmbedder"
            )
        if not text.strip():
            raise ValueError(f"{type(self).__name__} got an empty query text")
        if expansion is not None and not isinstance(expansion, str):
            raise ValueError(f"{type(self).__name__} expects the expansion as a string, got {type(expansion).__name__}")
        if expansion is not None and expansion.strip():
            vector = self.encoder.encode_expanded_queries([text], [expansion], batch_size=1)[0]
        else:
            vector = self.encoder.encode_queries([text], batch_size=1)[0]
        return {"embedding": vector.tolist()}


class DocumentEmbedderBase(DualEncoderEmbedderBase):
    """Embeds documents with the passage tower, as ``meta[title_field] [SEP] content``. Subclasses are the
    `@component` classes."""

    def __init__(
        self,
        model: str | None = None,
        passage_model: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        query_max_length: int | None = None,
        passage_max_length: int | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        batch_size: int = 32,
        progress_bar: bool = True,
        title_field: str | None = "title",
        backend: str = "auto",
    ) -> None:
        """Check and store the settings; the model is loaded by :meth:`warm_up`.

        :param model: as in :class:`DualEncoderEmbedderBase`, as are ``passage_model``, ``device``,
            ``precision``, ``query_max_length``, ``passage_max_length``, ``pooling``, ``normalize`` and ``backend``.
        :param batch_size: passages per forward pass (batches are length-sorted, so padding stays small).
        :param progress_bar: show a tqdm progress bar while embedding.
        :param title_field: the ``Document.meta`` field prepended to the content as the passage title
            (``title [SEP] content``); ``None`` embeds the content alone.
        :raises ValueError: for a setting of the wrong type or out of range.
        """
        super().__init__(
            model=model,
            passage_model=passage_model,
            device=device,
            precision=precision,
            query_max_length=query_max_length,
            passage_max_length=passage_max_length,
            pooling=pooling,
            normalize=normalize,
            backend=backend,
        )
        check_positive_int(batch_size, "batch_size")
        if title_field is not None and (not isinstance(title_field, str) or not title_field):
            raise ValueError(f"title_field must be a meta field name or None, got {title_field!r}")
        self.batch_size = batch_size
        self.progress_bar = bool(progress_bar)
        self.title_field = title_field

    def _init_parameters(self) -> dict[str, Any]:
        params = super()._init_parameters()
        params.update(batch_size=self.batch_size, progress_bar=self.progress_bar, title_field=self.title_field)
        return params

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Embed documents; the input documents are not modified.

        :param documents: documents with non-empty ``content``; ``meta[title_field]``, when present, is
            prepended as the passage title.
        :returns: ``{"documents": [...]}``: new `Document` objects equal to the input but with ``embedding``
            set, in input order.
        :raises ValueError: if ``documents`` is not a list of `Document`, or a document has no text content.
        """
        name = type(self).__name__
        if not isinstance(documents, (list, tuple)) or any(not isinstance(d, Document) for d in documents):
            raise ValueError(
                f"{name} expects a list of Documents; to embed a single query string use the matching TextEmbedder"
            )
        if not documents:
            return {"documents": []}
        texts, titles = [], []
        for doc in documents:
            if not isinstance(doc.content, str) or not doc.content.strip():
                raise ValueError(f"{name}: document {doc.id!r} has no text content to embed")
            texts.append(doc.content)
            title = doc.meta.get(self.title_field) if self.title_field else None
            titles.append(None if title is None else str(title))
        vectors = self.encoder.encode_passages(
            texts, titles, batch_size=self.batch_size, show_progress=self.progress_bar
        )
        return {
            "documents": [
                replace(doc, embedding=vec.tolist(), meta=dict(doc.meta)) for doc, vec in zip(documents, vectors)
            ]
        }
