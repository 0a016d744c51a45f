"""What runs the dual encoder's ``encode_*``: torch, ONNX Runtime or OpenVINO, and the ``auto`` choice.

Backends (``DualEncoder(backend=...)`` and the embedders' ``backend`` init parameter):

- ``"torch"``: the torch forward pass (bf16 autocast where native, see :mod:`spart.encoders.precision`).
- ``"onnx"``: ONNX Runtime on the CPU, fp32 (:mod:`spart.encoders.onnx_backend`; the ``onnx`` extra).
- ``"openvino"``: OpenVINO on the CPU, fp32 (:mod:`spart.encoders.openvino_backend`; the ``openvino`` extra).
- ``"openvino-int8"`` (opt-in, never chosen by ``auto``): OpenVINO with int8 weights in groups and 8-bit
  activations per token and group (:mod:`spart.encoders.openvino_int8`); approximate, checked at export to keep
  cosine >= 0.999 to fp32.
- ``"auto"`` (default): torch on a GPU, where bf16 runs natively (precision resolved to bf16), and for an
  encoder that is being trained (any parameter requires grad: encodings must follow the live weights);
  otherwise whichever of torch fp32 and the installed runtimes ran a synthetic batch fastest on this machine
  (a runtime must beat torch by :data:`MIN_GAIN`). That micro-benchmark (a few seconds, plus each runtime's
  one-off export) runs once per machine, thread count, library versions and tower architecture, and its
  result is cached in ``$SPART_CACHE/encoder-backend/choice.json``. The embedders freeze their
  (inference-only) encoder, so ``auto`` applies to them.

Both runtimes take the same thing: a tower with the encoder's pooling and normalisation
(:class:`spart.encoders.export.PooledTower`), exported once per encoder fingerprint, checked against torch before
it is kept.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from spart import onnx_runtime
from spart.atomic import write_text_atomic
from spart.encoders.export import Towers, weights_stamp

if TYPE_CHECKING:
    from spart.encoders.dual_encoder import DualEncoder

logger = logging.getLogger(__name__)

RUNTIMES = ("onnx", "openvino")  # exact fp32 runtimes: the candidates of "auto"
QUANTISED = ("openvino-int8",)  # approximate runtimes: only when asked for by name
BACKENDS = ("auto", "torch", *RUNTIMES, *QUANTISED)
CHOICE_FILE = "choice.json"
# A measured speed-up smaller than this keeps torch (the measurement is noisy on a shared machine).
MIN_GAIN = 1.05


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of :data:`BACKENDS`; a ``ValueError`` naming the choices otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


# ---------------------------------------------------------------------------------------- runtimes
def runtime_available(runtime: str) -> bool:
    """Whether the extra of ``runtime`` (``"onnx"``: onnxruntime + onnx; ``"openvino"``, ``"openvino-int8"``) is
    installed."""
    if runtime == "onnx":
        return onnx_runtime.onnxruntime_available()
    return importlib.util.find_spec("openvino") is not None


def load_towers(encoder: DualEncoder, runtime: str, root: Path | None = None) -> Towers:
    """``runtime``'s towers for ``encoder`` (exported on first use, then reused from its cache)."""
    if runtime == "onnx":
        from spart.encoders.onnx_backend import load_onnx_towers

        return load_onnx_towers(encoder, root)
    if runtime in ("openvino", "openvino-int8"):
        from spart.encoders.openvino_backend import load_openvino_towers

        return load_openvino_towers(encoder, root, int8=runtime == "openvino-int8")
    raise ValueError(f"runtime must be one of {(*RUNTIMES, *QUANTISED)}, got {runtime!r}")


def _runtime_version(runtime: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = {"onnx": "onnxruntime"}.get(runtime, "openvino")
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


class BackendState:
    """An encoder's resolved backend and its runtime towers; resolved on first use, again when weights change.

    Pickling or copying an encoder drops this state (sessions cannot be copied); the copy resolves afresh.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.backend: str | None = None
        self.towers: Towers | None = None

    def resolve(self, encoder: DualEncoder) -> tuple[str, Towers | None]:
        """``(backend, towers)``: ``towers`` is set when the backend is a runtime (not ``"torch"``)."""
        with self._lock:
            stale = self.towers is not None and self.towers.stamp != weights_stamp(encoder)
            if self.backend is None or stale:
                if stale:
                    logger.info("the encoder's weights changed since the export; resolving the backend again")
                self.towers = None
                self.backend = resolve_backend(encoder)
                if self.backend != "torch":
                    self.towers = load_towers(encoder, self.backend)
            return self.backend, self.towers

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


# ---------------------------------------------------------------------------------------- auto choice
def choice_root() -> Path:
    """``$SPART_CACHE/encoder-backend`` (``~/.cache/spart/encoder-backend`` without ``$SPART_CACHE``)."""
    from spart.evaluation.cache import cache_root

    return cache_root() / "encoder-backend"


def resolve_backend(encoder: DualEncoder) -> str:
    """The backend ``encoder`` encodes with: its ``backend`` unless that is ``"auto"`` (see the module doc)."""
    if encoder.backend != "auto":
        return encoder.backend
    if encoder.device.type != "cpu" or encoder.precision != "fp32":
        return "torch"
    if any(p.requires_grad for p in encoder.parameters()):
        return "torch"
    candidates = [runtime for runtime in RUNTIMES if runtime_available(runtime)]
    if not candidates:
        return "torch"
    return measured_choice(encoder, candidates)


def machine_key(encoder: DualEncoder, candidates: list[str]) -> str:
    """What the speed of a backend depends on: CPU, threads, library versions and the tower architecture."""
    config = encoder.query_model.config
    arch = [
        getattr(config, k, None)
        for k in ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    ]
    parts = [
        _cpu_model(),
        torch.backends.cpu.get_cpu_capability(),
        f"threads={torch.get_num_threads()}",
        f"torch={torch.__version__}",
        *(f"{runtime}={_runtime_version(runtime)}" for runtime in candidates),
        "arch=" + ",".join(map(str, arch)),
    ]
    return " | ".join(parts)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_CHOICE_LOCK = threading.Lock()


def measured_choice(encoder: DualEncoder, candidates: list[str], root: Path | None = None, *, repeats: int = 5) -> str:
    """The fastest fp32 backend for this encoder's architecture on this machine: ``"torch"`` or a runtime.

    Measured once (a synthetic batch of 16 x 128 tokens, all backends alternating, best of ``repeats``) and
    cached in ``<root>/choice.json`` under :func:`machine_key`. A runtime must be at least :data:`MIN_GAIN`
    times faster than torch to be chosen; a runtime whose export fails is left out (with a warning).
    """
    root = root or choice_root()
    file = root / CHOICE_FILE
    key = machine_key(encoder, candidates)
    with _CHOICE_LOCK:
        choices = _read_choices(file)
        if key in choices:
            return choices[key]["backend"]
        towers: dict[str, Towers] = {}
        for runtime in candidates:
            try:
                towers[runtime] = load_towers(encoder, runtime)
            except Exception as error:  # noqa: BLE001 - a runtime that cannot export this tower is not a candidate
                logger.warning("backend 'auto': %s is left out, its export failed: %s", runtime, error)
        seconds = _race(encoder, towers, repeats)
        fastest = min(towers, key=seconds.__getitem__, default="torch")
        backend = fastest if fastest != "torch" and seconds["torch"] >= MIN_GAIN * seconds[fastest] else "torch"
        choices = _read_choices(file)  # another process may have written meanwhile
        choices[key] = {"backend": backend, "seconds": seconds}
        file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, json.dumps(choices, indent=2, sort_keys=True) + "\n")
        logger.info(
            "backend 'auto' chose %s (%s per batch)",
            backend,
            ", ".join(f"{name} {s:.3f} s" for name, s in seconds.items()),
        )
        return backend


def _read_choices(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _race(encoder: DualEncoder, towers: dict[str, Towers], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds per backend (``"torch"`` and each of ``towers``) on one synthetic batch."""
    vocab = int(encoder.query_model.config.vocab_size)
    ids = torch.randint(min(1000, vocab // 2), vocab, (16, 128), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    ids_np, mask_np = ids.numpy(), mask.numpy()
    runs: dict[str, Callable[[], Any]] = {"torch": lambda: encoder.embed(inputs, "passage")}
    for name, runtime in towers.items():
        runs[name] = lambda runtime=runtime: runtime.embed("passage", ids_np, mask_np)
    best = {name: float("inf") for name in runs}
    with torch.inference_mode():
        for run in runs.values():  # warm-up: lazy initialisation, kernel selection
            run()
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    return best
