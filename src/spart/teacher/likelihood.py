"""Question likelihood under a frozen LM: the UPR reranking score and the ART teacher signal.

``score = mean_t log p(q_t | q_<t, passage)`` over the question's tokens under teacher forcing (ART's teacher
averages over question tokens; UPR sums them, which ranks the passages of one question identically but is not
comparable across questions). The paper's teacher is T0-3B (seq2seq); the offline default here is the packaged
SmolLM2-135M-Instruct GGUF (a causal LM), much smaller and weaker.

Batching: every (question, passage) pair is tokenised once per distinct passage/question, pairs are sorted by
length and scored in chunks of ``batch_size`` so padding stays small. Causal LMs are right-padded with no
attention mask (``causal_layout="right"``): every pair starts at column 0, so its positions are its own, plain
causal attention never lets a real token see a pad, and the LM head (a 49k vocabulary) runs only at the
positions that predict question tokens, gathered from the base model's last hidden states. Where a model's
logits are more than its output embedding of those states (checked at warm-up), and for the ONNX graphs, the
batch is left-padded with an attention mask and explicit ``position_ids`` instead (``causal_layout="left"``):
the question then ends at the last column and only the last ``max_question_len + 1`` positions need logits.
Both layouts give every row its unpadded scores.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from spart.data.passages import Passage, as_passage
from spart.teacher.cache import CacheKey, ScoreCache
from spart.teacher.loading import (
    LM_PRECISIONS,
    ModelSource,
    apply_lm_precision,
    decoder_layers,
    describe_config,
    fingerprint_source,
    load_teacher,
    resolve_model_source,
)
from spart.teacher.prompts import PromptTemplate, default_template

logger = logging.getLogger(__name__)

PRECISIONS = LM_PRECISIONS
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


class QuestionLikelihoodScorer:
    """Scores how likely a frozen LM finds a question given a passage.

    Usage::

        scorer = QuestionLikelihoodScorer(cache=ScoreCache("teacher.sqlite"))   # packaged SmolLM2
        scorer.warm_up()
        scores = scorer.score("Who wrote Hamlet?", passages)         # np.ndarray, one per passage
        grid = scorer.score_topk(questions, topk_passages)          # (B, K) for ART's KL target

    :param model: HF directory, hub id (must be in the local cache: spart runs offline), or a ``.gguf`` file.
        ``None`` uses the packaged SmolLM2-135M-Instruct GGUF.
    :param gguf_file: GGUF file name inside the ``model`` directory (alternative to passing the file path).
    :param model_kind: ``"auto"`` (from the config's ``is_encoder_decoder``), ``"causal"`` or ``"seq2seq"``.
    :param prompt: the :class:`PromptTemplate`; default depends on the model kind and chat setting.
    :param passage_template: overrides ``prompt.passage`` (placeholders ``{title}``, ``{text}``).
    :param question_template: overrides ``prompt.question`` (placeholder ``{question}``).
    :param use_chat_template: causal LMs only: wrap the passage prompt as a user turn with the tokenizer's chat
        template and score the question as the assistant's reply. ``None`` = off (for SmolLM2 on pydocs the
        two were statistically indistinguishable; plain matches UPR/ART and is shorter; see docs/teacher.md).
    :param precision: ``"fp32"``; ``"bf16"`` (autocast: fp32 weights, bf16 matmuls, but a causal LM's last decoder
        layer and LM head in fp32); ``"bf16-weights"`` (weights cast to bf16 once; CPU autocast re-casts the fp32
        weights on every call); ``"auto"`` = ``"bf16"`` where bf16 is
        native (CUDA with bf16, a CPU with AVX512-BF16/AMX: 2.2x fp32 on the project's AMX CPU with the same
        top-1 passages, see docs/teacher.md), else ``"fp32"``. The log-softmax always runs in fp32.
    :param backend: what runs a causal teacher: ``"torch"`` (transformers; the only choice for seq2seq teachers
        and GPUs), ``"onnx"`` (ONNX Runtime fp32: the torch fp32 scores, faster on CPUs), ``"onnx-int8"`` (opt-in:
        int8 weights and activations, faster still but approximate: per-question Spearman 0.96-0.99 to fp32 on
        SmolLM2), or ``"auto"``: torch's bf16 autocast where bf16 is native and ``precision="auto"`` (the fastest
        here), otherwise, on the CPU, for a GGUF causal teacher with the ``onnx`` extra installed, ``"onnx"``;
        ``"torch"`` for everything else (HF directories, seq2seq, GPUs). docs/teacher.md has the measurements.
        The ONNX backends need ``pip install 'spart[onnx]'``; see :mod:`spart.teacher.onnx_backend`.
    :param device: ``"cpu"``, ``"cuda"``, ... ; ``None`` picks CUDA when available.
    :param batch_size: (question, passage) pairs per forward pass.
    :param max_passage_tokens: passage text is truncated to this many tokens (the instruction is kept).
    :param max_question_tokens: the question target is truncated to this many tokens.
    :param append_eos: score the end-of-sequence token after the question too (as T5's tokenizer does; the
        reference code does the same for GPT models).
    :param cache: optional :class:`ScoreCache`; hits skip the LM.
    :param progress_bar: show a tqdm bar over forward batches.

    After :meth:`warm_up`, ``causal_layout`` says how a causal teacher's batches are laid out: ``"right"``
    (right-padded, no attention mask, the LM head only at the question's positions; the default wherever the
    warm-up check finds it exact) or ``"left"`` (left-padded with a mask: ONNX backends and models whose logits
    are post-processed). Both give the unpadded scores; docs/teacher.md has the speeds.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        model_kind: str = "auto",
        prompt: PromptTemplate | None = None,
        passage_template: str | None = None,
        question_template: str | None = None,
        use_chat_template: bool | None = None,
        precision: str = "auto",
        device: str | None = None,
        batch_size: int = 16,
        max_passage_tokens: int = 384,
        max_question_tokens: int = 64,
        append_eos: bool = True,
        cache: ScoreCache | None = None,
        progress_bar: bool = False,
        backend: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if model_kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
        for name, value in (
            ("batch_size", batch_size),
            ("max_passage_tokens", max_passage_tokens),
            ("max_question_tokens", max_question_tokens),
        ):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if passage_template is not None or question_template is not None:
            PromptTemplate(passage_template or "{text}", question_template or "{question}")  # validate early
        self.passage_template = passage_template
        self.question_template = question_template
        self.model_name = model
        self.gguf_file = gguf_file
        self.model_kind = model_kind
        self._prompt_arg = prompt
        self.use_chat_template = bool(use_chat_template)
        self.precision = precision
        self.backend = backend
        self.device = device
        self.batch_size = batch_size
        self.max_passage_tokens = max_passage_tokens
        self.max_question_tokens = max_question_tokens
        self.append_eos = append_eos
        self.cache = cache
        self.progress_bar = progress_bar
        self.model = None
        self.tokenizer = None
        self.prompt: PromptTemplate | None = prompt
        self.fingerprint: str | None = None
        self.uses_bf16 = False
        self.resolved_precision: str | None = None
        self.resolved_backend: str | None = None
        self._onnx = None
        self.causal_layout: str | None = None
        self.stats = {"pairs": 0, "cache_hits": 0, "scored": 0}

    # ------------------------------------------------------------------ loading
    def warm_up(self) -> None:
        """Load the LM and tokenizer (once) and compute the teacher fingerprint used as cache key."""
        if self.model is not None:
            return
        import torch

        from spart.encoders.precision import bf16_supported

        source: ModelSource = resolve_model_source(self.model_name, self.gguf_file)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, kind = load_teacher(source, self.model_kind, device)
        if kind == "seq2seq" and self.use_chat_template:
            raise ValueError("use_chat_template applies to causal LMs only")
        if self.use_chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"tokenizer of {source.location} has no chat template")
        self.device, self.model_kind = device, kind
        self.model, self.tokenizer = model, tokenizer
        base = self._prompt_arg or default_template(kind, self.use_chat_template)
        self.prompt = PromptTemplate(
            self.passage_template if self.passage_template is not None else base.passage,
            self.question_template if self.question_template is not None else base.question,
        )
        native_bf16 = bf16_supported(torch.device(device))
        self.resolved_backend = self._resolve_backend(source, native_bf16)
        resolved = self.precision
        if self.resolved_backend != "torch":
            resolved = "fp32" if self.resolved_backend == "onnx" else "int8"
        elif resolved == "auto":
            # bf16 autocast where it is native (CUDA, or a CPU with AVX512-BF16/AMX): 2.2x fp32 on an AMX CPU with
            # the same top-1 (docs/teacher.md); bf16 *weights* were not faster there, so auto never picks them.
            resolved = "bf16" if native_bf16 else "fp32"
        # the autocast flag; the ONNX backends set their own precision
        self.uses_bf16 = self.resolved_backend == "torch" and apply_lm_precision(model, resolved, native_bf16, device)
        self.resolved_precision = resolved
        self._pad_id = self._pick_pad_id()
        self._eos_id = tokenizer.eos_token_id
        forward_params = inspect.signature(model.forward).parameters
        self._supports_logits_to_keep = "logits_to_keep" in forward_params
        self._supports_position_ids = "position_ids" in forward_params
        self.fingerprint = self._compute_fingerprint(source)
        if self.resolved_backend != "torch":
            from spart.teacher.onnx_backend import export_key, load_onnx_teacher

            key = export_key(fingerprint_source(source), describe_config(model), self.resolved_backend)
            self._onnx = load_onnx_teacher(model, self.resolved_backend, key, self._check_batch())
        if self.uses_bf16 and kind == "causal":
            self._last_layer_in_fp32()
        self.causal_layout = self._pick_causal_layout()

    def _last_layer_in_fp32(self) -> None:
        """Run a causal LM's last decoder layer with autocast off (fp32 weights, fp32 residual stream).

        Its output goes straight through the final norm into the LM head, so its bf16 rounding moves the scores most:
        on SmolLM2 this raised the minimum per-question Spearman to fp32 from 0.9895 to 0.9955 at the cost of about
        1/30 of the body's work in fp32 (docs/teacher.md, *The last decoder layer in fp32*). A model whose decoder
        layers are not one ``ModuleList`` of ``num_hidden_layers`` modules keeps every layer under autocast.
        """
        import torch

        layers = decoder_layers(self.model)
        if layers is None:
            logger.info("teacher %s: no single stack of decoder layers found; every layer stays under autocast", self)
            return
        contexts: list[Any] = []

        def enter(module, args, kwargs):
            contexts.append(torch.autocast(self._device_type, enabled=False))
            contexts[-1].__enter__()

        def leave(module, args, kwargs, output):
            contexts.pop().__exit__(None, None, None)

        last = layers[-1]
        last.register_forward_pre_hook(enter, with_kwargs=True)
        last.register_forward_hook(leave, with_kwargs=True, always_call=True)

    def _pick_causal_layout(self) -> str | None:
        """``"right"`` where this causal LM scores a padded batch right-padded as it does left-padded, else ``"left"``.

        The right-padded layout (see :meth:`_forward_causal`) computes the LM head from the base model's hidden
        states, so it is exact only for models whose logits are their output embedding of the last hidden state:
        checked here on a two-pair batch against the left-padded full forward. A model that post-processes its
        logits (soft-capping, a logit scale) fails the check and keeps the left-padded layout. ONNX backends run
        the exported left-padded graph.
        """
        if self.model_kind != "causal":
            return None
        if (
            self._onnx is not None
            or self.model.get_output_embeddings() is None
            or self.model.base_model is self.model  # no separate base model to take hidden states from
        ):
            return "left"
        import torch

        prompts, targets = self._check_pairs()
        with self._scoring_mode():
            left = self._forward_left(self._causal_batch(prompts, targets))
            try:
                right = self._forward_right(prompts, targets)
            except (AttributeError, TypeError, ValueError, RuntimeError) as error:  # an unusual model interface
                logger.info("teacher %s: the right-padded layout failed (%s); using left padding", self, error)
                return "left"
        half = self.uses_bf16 or next(self.model.parameters()).dtype != torch.float32
        tolerance = 0.1 if half else 1e-3  # bf16 kernels round masked and causal attention differently
        if not np.allclose(left, right, atol=tolerance, rtol=0):
            logger.info("teacher %s: right-padded scores differ from the full forward; using left padding", self)
            return "left"
        return "right"

    def _resolve_backend(self, source: ModelSource, native_bf16: bool) -> str:
        """The backend for this teacher (see the class docstring); errors name what an ONNX backend needs."""
        from spart.onnx_runtime import onnxruntime_available, require_onnxruntime

        on_cpu = self.device == "cpu"
        if self.backend == "auto":
            eligible = (
                self.model_kind == "causal"
                and on_cpu
                and source.gguf_file is not None
                and self.precision in ("auto", "fp32")
                and onnxruntime_available()
            )
            if not eligible or (self.precision == "auto" and native_bf16):
                return "torch"
            return "onnx"  # the fp32 scores, faster; int8 stays opt-in (it changes the ranking a little)
        if self.backend != "torch":
            if self.model_kind != "causal":
                raise ValueError(f"teacher backend {self.backend!r} scores causal LMs only; use backend 'torch'")
            if not on_cpu:
                raise ValueError(
                    f"teacher backend {self.backend!r} runs on the CPU; use backend 'torch' on {self.device}"
                )
            if self.precision not in ("auto", "fp32"):
                raise ValueError(
                    f"teacher backend {self.backend!r} sets its own precision; "
                    f"precision {self.precision!r} needs backend 'torch'"
                )
            require_onnxruntime()
        return self.backend

    def _check_pairs(self) -> tuple[list[list[int]], list[list[int]]]:
        """Two prompts and two questions of different lengths (token ids), to check a fast path on."""
        prompts = self.tokenizer(
            ["Passage: Hamlet is a tragedy written by William Shakespeare around 1600.\n", "Passage: Paris.\n"]
        )["input_ids"]
        targets = self.tokenizer(
            ["Question: who wrote hamlet?", "Question: capital of France?"], add_special_tokens=False
        )["input_ids"]
        return [list(p) for p in prompts], [list(t) for t in targets]

    def _check_batch(self) -> dict[str, Any]:
        """The check pairs as a left-padded batch, to check an ONNX export on."""
        return self._causal_batch(*self._check_pairs())

    def _pick_pad_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0  # unreachable; keeps type checkers quiet

    def _compute_fingerprint(self, source: ModelSource) -> str:
        payload = {
            "weights": fingerprint_source(source),
            "config": describe_config(self.model),
            "kind": self.model_kind,
            "prompt": self.prompt.to_dict(),
            "chat": self.use_chat_template,
            "precision": self.resolved_precision,
            "max_passage_tokens": self.max_passage_tokens,
            "max_question_tokens": self.max_question_tokens,
            "append_eos": self.append_eos,
            "score": "mean-logprob-v1",
        }
        if self.resolved_backend != "torch":  # torch keeps its earlier keys, so existing score caches stay valid
            payload["backend"] = self.resolved_backend
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def _require_warm(self) -> None:
        if self.model is None:
            raise RuntimeError("QuestionLikelihoodScorer is not warmed up: call warm_up() first")

    # ------------------------------------------------------------------ public scoring API
    def score(self, question: str, passages: Sequence[Any]) -> np.ndarray:
        """Mean log-probability of ``question`` given each passage; shape ``(len(passages),)``, float32."""
        return self.score_pairs([question] * len(passages), passages)

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        """Scores for a batch of questions, each with its own K retrieved passages: shape ``(B, K)``.

        All B*K pairs go through one length-sorted, chunked pass (the ART training step).
        """
        if len(questions) != len(passages):
            raise ValueError(f"{len(questions)} questions but {len(passages)} passage lists")
        if not questions:
            return np.zeros((0, 0), dtype=np.float32)
        k = len(passages[0])
        if any(len(row) != k for row in passages):
            raise ValueError("score_topk needs the same number of passages for every question")
        flat_q = [q for q in questions for _ in range(k)]
        flat_p = [p for row in passages for p in row]
        return self.score_pairs(flat_q, flat_p).reshape(len(questions), k)

    def score_pairs(self, questions: Sequence[str], passages: Sequence[Any]) -> np.ndarray:
        """Score aligned (question, passage) pairs; shape ``(n,)``. Cached pairs skip the LM."""
        if len(questions) != len(passages):
            raise ValueError(f"{len(questions)} questions but {len(passages)} passages")
        for q in questions:
            if not isinstance(q, str) or not q.strip():
                raise ValueError(f"question must be a non-empty string, got {q!r}")
        normalised = [as_passage(p) for p in passages]
        if not normalised:
            return np.zeros(0, dtype=np.float32)
        self._require_warm()
        keys: list[CacheKey] = [(q, p.id, p.text_hash) for q, p in zip(questions, normalised)]
        unique: dict[CacheKey, Passage] = {}
        for key, passage in zip(keys, normalised):
            unique.setdefault(key, passage)
        known: dict[CacheKey, float] = {}
        if self.cache is not None:
            known = self.cache.get_many(self.fingerprint, list(unique))
        missing = [key for key in unique if key not in known]
        if missing:
            fresh = self._score_uncached([k[0] for k in missing], [unique[k] for k in missing])
            new = dict(zip(missing, fresh.tolist()))
            if self.cache is not None:
                self.cache.put_many(self.fingerprint, new.items())
            known.update(new)
        self.stats["pairs"] += len(keys)
        self.stats["scored"] += len(missing)
        self.stats["cache_hits"] += len(unique) - len(missing)
        return np.asarray([known[key] for key in keys], dtype=np.float32)

    # ------------------------------------------------------------------ tokenisation
    def _truncate_texts(self, texts: list[str]) -> list[str]:
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        out = []
        for text, tokens in zip(texts, ids):
            if len(tokens) > self.max_passage_tokens:
                text = self.tokenizer.decode(tokens[: self.max_passage_tokens], skip_special_tokens=True)
            out.append(text)
        return out

    def _prompt_strings(self, passages: list[Passage]) -> list[str]:
        texts = self._truncate_texts([p.text for p in passages])
        prompts = [self.prompt.render_passage(p.title, t) for p, t in zip(passages, texts)]
        if self.use_chat_template:
            prompts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        return prompts

    def _encode_prompts(self, passages: list[Passage]) -> list[list[int]]:
        prompts = self._prompt_strings(passages)
        # The chat template already wrote any BOS / special tokens into the string.
        add_special = not self.use_chat_template
        if self.model_kind == "causal":
            return self.tokenizer(prompts, add_special_tokens=add_special)["input_ids"]
        # seq2seq: the encoder input keeps the tokenizer's specials (T5 appends </s>).
        return self.tokenizer(prompts, add_special_tokens=True)["input_ids"]

    def _encode_questions(self, questions: list[str]) -> list[list[int]]:
        rendered = [self.prompt.render_question(q) for q in questions]
        ids = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        out = []
        for tokens in ids:
            tokens = list(tokens[: self.max_question_tokens])
            if self.append_eos and self._eos_id is not None:
                tokens.append(int(self._eos_id))
            if not tokens:
                raise ValueError("a question tokenised to zero tokens")
            out.append(tokens)
        return out

    # ------------------------------------------------------------------ forward passes
    def _score_uncached(self, questions: list[str], passages: list[Passage]) -> np.ndarray:
        q_index: dict[str, int] = {}
        p_index: dict[tuple[str, str], int] = {}
        unique_q: list[str] = []
        unique_p: list[Passage] = []
        pair_ids = []
        for q, p in zip(questions, passages):
            if q not in q_index:
                q_index[q] = len(unique_q)
                unique_q.append(q)
            pkey = (p.id, p.text_hash)
            if pkey not in p_index:
                p_index[pkey] = len(unique_p)
                unique_p.append(p)
            pair_ids.append((q_index[q], p_index[pkey]))
        q_tokens = self._encode_questions(unique_q)
        p_tokens = self._encode_prompts(unique_p)

        lengths = np.asarray([len(p_tokens[pi]) + len(q_tokens[qi]) for qi, pi in pair_ids])
        order = np.argsort(-lengths, kind="stable")  # longest first: an out-of-memory shows up at once
        scores = np.empty(len(pair_ids), dtype=np.float64)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.progress_bar:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="teacher", unit="batch")
        forward = self._forward_causal if self.model_kind == "causal" else self._forward_seq2seq
        with self._scoring_mode():
            for batch in batches:
                prompts = [p_tokens[pair_ids[i][1]] for i in batch]
                targets = [q_tokens[pair_ids[i][0]] for i in batch]
                scores[batch] = forward(prompts, targets)
        return scores

    @property
    def _device_type(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"

    @contextlib.contextmanager
    def _scoring_mode(self):
        """Inference mode, under bf16 autocast where the resolved precision asks for it: every forward pass."""
        import torch

        with torch.inference_mode(), torch.autocast(self._device_type, dtype=torch.bfloat16, enabled=self.uses_bf16):
            yield

    def _causal_batch(self, prompts: list[list[int]], targets: list[list[int]]) -> dict[str, Any]:
        """Left-padded ``input_ids``/``attention_mask``/``position_ids`` and the question's ``labels``/``target_mask``
        (CPU tensors): every question ends at the last column, so its tokens are the last ``t_max`` columns."""
        import torch

        seqs = [p + t for p, t in zip(prompts, targets)]
        width = max(len(s) for s in seqs)
        t_max = max(len(t) for t in targets)
        input_ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):  # left padding: every question ends at the last column
            input_ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        target_mask = torch.zeros((len(seqs), t_max), dtype=torch.bool)
        for row, t in enumerate(targets):
            target_mask[row, t_max - len(t) :] = True
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": position_ids,
            "labels": input_ids[:, width - t_max :],
            "target_mask": target_mask,
        }

    def _forward_causal(self, prompts: list[list[int]], targets: list[list[int]]) -> np.ndarray:
        if self.causal_layout == "right":
            return self._forward_right(prompts, targets)
        return self._forward_left(self._causal_batch(prompts, targets))

    def _forward_left(self, batch: dict[str, Any]) -> np.ndarray:
        """Left-padded batch with an attention mask; the LM head over the last ``t_max + 1`` columns."""
        if self._onnx is not None:
            return self._onnx.score(batch)
        t_max = batch["labels"].shape[1]
        kwargs: dict[str, Any] = {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": batch["attention_mask"].to(self.device),
        }
        if self._supports_position_ids:
            kwargs["position_ids"] = batch["position_ids"].to(self.device)
        if self._supports_logits_to_keep:
            kwargs["logits_to_keep"] = t_max + 1
        logits = self.model(**kwargs).logits[:, -(t_max + 1) : -1]  # position j predicts token j + 1
        return self._mean_logprob(logits, batch["labels"].to(self.device), batch["target_mask"].to(self.device))

    def _forward_right(self, prompts: list[list[int]], targets: list[list[int]]) -> np.ndarray:
        """Right-padded batch with no attention mask; the LM head only at the positions that predict the question.

        Every pair starts at column 0, so the default positions are its own and plain causal attention never
        lets a real token see a pad (pads come after it): no mask is built and the attention kernel takes its
        causal path. The base model's last hidden states are gathered at each pair's prediction positions and
        only those go through the output embedding, in its weights' precision (fp32 under bf16 autocast, where
        :meth:`_forward_left` rounds the logits to bf16). Same scores as :meth:`_forward_left` (checked at warm-up).
        """
        import torch

        width = max(len(p) + len(t) for p, t in zip(prompts, targets))
        t_max = max(len(t) for t in targets)
        rows = len(prompts)
        input_ids = torch.full((rows, width), self._pad_id, dtype=torch.long)
        where = torch.zeros((rows, t_max), dtype=torch.long)  # column whose output predicts target token j
        labels = torch.full((rows, t_max), self._pad_id, dtype=torch.long)
        target_mask = torch.zeros((rows, t_max), dtype=torch.bool)
        for row, (p, t) in enumerate(zip(prompts, targets)):
            input_ids[row, : len(p) + len(t)] = torch.tensor(p + t)
            where[row, : len(t)] = torch.arange(len(p) - 1, len(p) + len(t) - 1)
            labels[row, : len(t)] = torch.tensor(t)
            target_mask[row, : len(t)] = True
        hidden = self.model.base_model(input_ids=input_ids.to(self.device)).last_hidden_state
        where = where.to(self.device).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        head = self.model.get_output_embeddings()
        # The LM head in its weights' precision even under autocast: bf16 logits (8-bit mantissa) would round a
        # logit of ~20 by up to 0.06 nats. Over the question positions only, fp32 cost about 4 % on Qwen2.5's
        # 152k-word head and nothing measurable on SmolLM2's (docs/teacher.md).
        with torch.autocast(hidden.device.type, enabled=False):
            logits = head(hidden.gather(1, where).to(head.weight.dtype))
        return self._mean_logprob(logits, labels.to(self.device), target_mask.to(self.device))

    def _forward_seq2seq(self, prompts: list[list[int]], targets: list[list[int]]) -> np.ndarray:
        import torch

        width = max(len(p) for p in prompts)
        t_max = max(len(t) for t in targets)
        input_ids = torch.full((len(prompts), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        labels = torch.full((len(prompts), t_max), self._pad_id, dtype=torch.long)
        target_mask = torch.zeros((len(prompts), t_max), dtype=torch.bool)
        for row, (p, t) in enumerate(zip(prompts, targets)):  # right padding: the encoder is bidirectional + masked
            input_ids[row, : len(p)] = torch.tensor(p)
            mask[row, : len(p)] = 1
            labels[row, : len(t)] = torch.tensor(t)
            target_mask[row, : len(t)] = True
        start = self.model.config.decoder_start_token_id
        if start is None:
            start = self._pad_id
        decoder_input_ids = torch.cat([torch.full((len(prompts), 1), start, dtype=torch.long), labels[:, :-1]], dim=1)
        logits = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            decoder_input_ids=decoder_input_ids.to(self.device),
        ).logits
        return self._mean_logprob(logits, labels.to(self.device), target_mask.to(self.device))

    @staticmethod
    def _mean_logprob(logits, labels, target_mask) -> np.ndarray:
        # fp32 log-softmax even under autocast: bf16's 8-bit mantissa would blur the score differences.
        logits = logits.float()
        gold = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
        gold = gold.masked_fill(~target_mask, 0.0)
        return (gold.sum(-1) / target_mask.sum(-1)).double().cpu().numpy()

    def __repr__(self) -> str:
        return (
            f"QuestionLikelihoodScorer(model={self.model_name!r}, kind={self.model_kind!r}, "
            f"precision={self.precision!r}, backend={self.backend!r}, batch_size={self.batch_size})"
        )
