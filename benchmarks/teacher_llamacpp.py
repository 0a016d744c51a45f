"""llama.cpp scoring of a GGUF causal teacher, for ``bench_teacher.py backends`` only (not a spart backend).

Measured, not shipped: on the project's AVX-512 CPU it did not beat the transformers path (docs/teacher.md,
*llama.cpp*), so it stays here as a benchmark configuration rather than a backend with a compile-from-source
extra. Needs ``llama-cpp-python`` (built from source by pip; about 3.5 minutes on 2 cores with the CMake flags
in docs/teacher.md).

The scorer tokenises with the Hugging Face tokenizer as for every backend; this module feeds those token ids
to llama.cpp's batch API and reads back logits only at the positions that predict a question token: the same
quantity as ``QuestionLikelihoodScorer._forward_causal`` (mean log-probability of the question's tokens given
the passage prompt; log-softmax in float64 in numpy). What differs: llama.cpp runs the GGUF's own quantised
weights (Q4_1, Q4_K, ...) with integer dot products that quantise the activations to 8 bits per block of 32,
where transformers dequantises the same weights to fp32 and multiplies in fp32.

Batching: every (question, passage) pair of a scorer batch is its own llama.cpp sequence in one ``llama_decode``
call (``kv_unified=False``: each sequence attends only to its own cache slots). The context is sized for the
longest pair seen, grown when a longer one comes, and cleared after every batch.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np


def llamacpp_available() -> bool:
    """Whether ``llama-cpp-python`` is installed (without importing it: the import loads the shared library)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class LlamaCppTeacher:
    """A GGUF causal LM in llama.cpp that scores token-id pairs: ``score(prompts, targets)``.

    Usage::

        teacher = LlamaCppTeacher("smollm2.gguf", threads=2)
        scores = teacher.score([[1, 5, 9], [1, 7]], [[11, 2], [12, 13, 2]])   # mean log p(target | prompt)

    :param gguf_path: the ``.gguf`` file.
    :param threads: CPU threads (default: torch's thread count, so every backend uses the same).
    :param max_sequences: pairs per ``llama_decode`` call (the scorer's batch size is capped by it).
    """

    def __init__(self, gguf_path: str | os.PathLike, *, threads: int | None = None, max_sequences: int = 16) -> None:
        path = Path(gguf_path)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        if not isinstance(max_sequences, int) or max_sequences <= 0:
            raise ValueError(f"max_sequences must be a positive integer, got {max_sequences!r}")
        import llama_cpp

        try:  # llama.cpp logs every context creation to stderr; keep errors only
            from llama_cpp._logger import set_verbose

            set_verbose(False)
        except ImportError:
            pass
        self._ll = llama_cpp
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.path = path
        self.threads = int(threads)
        self.max_sequences = max_sequences
        ll = self._ll
        ll.llama_backend_init()
        params = ll.llama_model_default_params()
        params.n_gpu_layers = 0
        params.use_mmap = True
        self._model = ll.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise ValueError(f"llama.cpp could not load {path}")
        vocab = ll.llama_model_get_vocab(self._model)
        self.n_vocab = int(ll.llama_vocab_n_tokens(vocab))
        self._ctx = None
        self._batch = None
        self._per_sequence = 0  # context slots per sequence of the current context
        self._rows = 0  # sequences per decode call of the current context

    # ------------------------------------------------------------------ context
    def _ensure_context(self, longest: int, rows: int) -> None:
        """A context whose every sequence holds ``longest`` tokens and whose batch holds ``rows`` such sequences."""
        rows = min(max(rows, 1), self.max_sequences)
        if self._ctx is not None and longest <= self._per_sequence and rows <= self._rows:
            return
        per_sequence = max(_round_up(longest, 256), self._per_sequence)
        rows = max(rows, self._rows)
        self._free_context()
        ll = self._ll
        params = ll.llama_context_default_params()
        params.n_ctx = per_sequence * rows
        params.n_batch = per_sequence * rows
        params.n_ubatch = per_sequence * rows
        params.n_seq_max = rows
        params.kv_unified = False
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.embeddings = False
        params.no_perf = True
        ctx = ll.llama_init_from_model(self._model, params)
        if not ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {per_sequence} x {rows} tokens")
        self._ctx = ctx
        self._batch = ll.llama_batch_init(per_sequence * rows, 0, 1)
        self._per_sequence, self._rows = per_sequence, rows

    def _free_context(self) -> None:
        if self._batch is not None:
            self._ll.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self._ll.llama_free(self._ctx)
            self._ctx = None

    def close(self) -> None:
        """Free the context and the model (the object is unusable afterwards)."""
        self._free_context()
        if getattr(self, "_model", None):
            self._ll.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ scoring
    def score(self, prompts: list[list[int]], targets: list[list[int]]) -> np.ndarray:
        """Mean log-probability of each ``targets[i]`` after ``prompts[i]`` (token ids); float64, one per pair."""
        if len(prompts) != len(targets):
            raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
        out = np.empty(len(prompts), dtype=np.float64)
        for start in range(0, len(prompts), self.max_sequences):
            stop = start + self.max_sequences
            out[start:stop] = self._score_chunk(prompts[start:stop], targets[start:stop])
        return out

    def _score_chunk(self, prompts: list[list[int]], targets: list[list[int]]) -> np.ndarray:
        ll = self._ll
        if any(not p for p in prompts) or any(not t for t in targets):
            raise ValueError("every prompt and every target needs at least one token")
        lengths = [len(p) + len(t) for p, t in zip(prompts, targets)]
        self._ensure_context(max(lengths), len(prompts))
        batch = self._batch
        n = 0
        labels: list[int] = []
        for row, (p, t) in enumerate(zip(prompts, targets)):
            seq = list(p) + list(t)
            first_output = len(p) - 1  # position j predicts token j + 1
            for pos, token in enumerate(seq):
                batch.token[n] = token
                batch.pos[n] = pos
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = row
                wanted = first_output <= pos < len(seq) - 1
                batch.logits[n] = 1 if wanted else 0
                n += 1
            labels.extend(t)
        batch.n_tokens = n
        code = ll.llama_decode(self._ctx, batch)
        try:
            if code != 0:
                raise RuntimeError(f"llama_decode failed with code {code} on a batch of {len(prompts)} pairs")
            n_out = len(labels)
            pointer = ll.llama_get_logits(self._ctx)
            logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (n_out, self.n_vocab))
            top = logits.max(axis=1, keepdims=True)
            logz = np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64)) + top[:, 0]
            gold = logits[np.arange(n_out), np.asarray(labels)] - logz
        finally:
            ll.llama_memory_clear(ll.llama_get_memory(self._ctx), True)
        bounds = np.cumsum([0] + [len(t) for t in targets])
        return np.asarray([gold[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float64)


def llamacpp_scorer(model: str | None, batch_size: int = 16):
    """A warmed-up ``QuestionLikelihoodScorer`` (torch fp32 for tokenising and the check) whose causal forward
    pass runs in llama.cpp; raises if llama.cpp's scores on the check batch are off by more than 0.5 nats."""
    from spart.teacher import QuestionLikelihoodScorer
    from spart.teacher.loading import resolve_model_source

    class LlamaCppScorer(QuestionLikelihoodScorer):
        def _forward_causal(self, prompts, targets):
            return self.llamacpp.score(prompts, targets)

    scorer = LlamaCppScorer(model, precision="fp32", device="cpu", batch_size=batch_size, backend="torch")
    scorer.warm_up()
    source = resolve_model_source(model)
    if source.gguf_file is None:
        raise ValueError("the llama.cpp configuration needs a .gguf teacher")
    scorer.llamacpp = LlamaCppTeacher(Path(source.location) / source.gguf_file, max_sequences=batch_size)
    import torch

    tok = scorer.tokenizer
    passages = ["Passage: Hamlet is a tragedy by William Shakespeare.\n", "Passage: Paris.\n"]
    questions = ["Question: who wrote hamlet?", "Question: capital of France?"]
    prompts = [list(p) for p in tok(passages)["input_ids"]]
    targets = [list(t) for t in tok(questions, add_special_tokens=False)["input_ids"]]
    with torch.inference_mode():
        expected = QuestionLikelihoodScorer._forward_causal(scorer, prompts, targets)
    error = float(np.abs(scorer.llamacpp.score(prompts, targets) - expected).max())
    if error > 0.5:
        raise ValueError(f"llama.cpp's scores differ from torch by {error:.3g} nats on the check batch")
    scorer.resolved_backend = "llama.cpp (benchmark only)"
    return scorer
