"""OpenVINO inference for the dual encoder's towers (fp32, CPU).

A tower, with the encoder's pooling and normalisation, is converted once per encoder fingerprint by
OpenVINO's PyTorch frontend (``openvino.convert_model`` on the torch module itself, not on the ONNX export:
one conversion fewer, and no dependency on the ``onnx`` extra), checked against the torch tower on a padded
batch, and saved as OpenVINO IR under ``$SPART_CACHE/openvino/v1/<fingerprint>/<tower>/`` (written in a
staging directory and swapped in whole, so a crash never leaves a half-written model under a final name).
It is compiled for the CPU with ``INFERENCE_PRECISION_HINT=f32``: OpenVINO would otherwise run bf16 where the
CPU has it, and this backend promises the fp32 embeddings (bf16, where native, is torch's job under
``precision="auto"``). Threads: torch's thread count, so every backend uses the same.

Selected with ``backend="openvino"`` (needs the ``openvino`` extra: ``pip install 'spart[openvino]'``), or by
``"auto"`` where it measures fastest; see :mod:`spart.encoders.backends`. ``backend="openvino-int8"`` (opt-in)
runs the same IR with 8-bit weights and activations, cached next to it under ``<tower>-int8-...``
(:mod:`spart.encoders.openvino_int8`).

Example::

    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path

    encoder = DualEncoder.load(packaged_minilm_path(), device="cpu", backend="openvino")
    vectors = encoder.encode_passages(["Paris is the capital of France."], ["Paris"])  # float32, unit length
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from spart._extras import require
from spart.atomic import replace_directory
from spart.encoders.export import (
    CHECK_ATOL,
    PooledTower,
    check_batch,
    fp32_tower,
    open_towers,
    tower_paths,
    weights_stamp,
)
from spart.onnx_runtime import quiet_export

if TYPE_CHECKING:
    from spart.encoders.dual_encoder import DualEncoder

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "v1"  # bump when the converted model changes (inputs, pooling in the graph...)
MODEL_FILE = "tower.xml"  # its weights sit next to it in tower.bin


def require_openvino():
    """The ``openvino`` module; :class:`spart._extras.MissingExtraError` naming the ``openvino`` extra."""
    return require("openvino", "openvino")


def openvino_root() -> Path:
    """``$SPART_CACHE/openvino`` (``~/.cache/spart/openvino`` without ``$SPART_CACHE``)."""
    from spart.evaluation.cache import cache_root

    return cache_root() / "openvino"


def compile_tower(path: str | Path, threads: int | None = None, *, activation_group: int | None = None) -> Any:
    """``path`` (IR or an in-memory model) compiled for the CPU in fp32 with ``threads`` (default: torch's); with
    ``activation_group``, the products with int8 weights take 8-bit activations quantised per token and group of
    that many channels at run time (``DYNAMIC_QUANTIZATION_GROUP_SIZE``; :mod:`spart.encoders.openvino_int8`)."""
    ov = require_openvino()
    config = {
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        "PERFORMANCE_HINT": "LATENCY",
    }
    if activation_group:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = int(activation_group)
    model = path if not isinstance(path, (str, Path)) else str(path)
    return ov.Core().compile_model(model, "CPU", config)


def save_ir(model: Any, folder: Path) -> None:
    """Save ``model`` as ``folder/tower.xml`` (+ ``tower.bin``), weights as they are (no fp16 compression), written
    in a staging directory and swapped in whole: a crash never leaves a half-written IR under ``folder``."""
    ov = require_openvino()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        ov.save_model(model, str(staging / MODEL_FILE), compress_to_fp16=False)
        replace_directory(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def export_tower(encoder: DualEncoder, role: str, folder: str | Path) -> Path:
    """Convert ``encoder``'s ``role`` tower (with pooling and normalisation) to OpenVINO IR in ``folder``.

    :param encoder: an fp32 encoder on the CPU.
    :param role: ``"query"`` or ``"passage"``.
    :param folder: the IR's directory (replaced whole); its parent is created.
    :returns: the ``tower.xml`` path.
    :raises ValueError: if the encoder is not fp32, or the converted model does not reproduce the torch tower.
    """
    ov = require_openvino()
    folder = Path(folder)
    tower = fp32_tower(encoder, role, "OpenVINO")
    wrapper = PooledTower(encoder, role).eval()
    ids, mask = check_batch(encoder.tokenizer, int(tower.config.vocab_size))
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            expected = wrapper(ids, mask).numpy()
        with torch.no_grad(), quiet_export():
            model = ov.convert_model(wrapper, example_input=(ids, mask))
        for port, name in zip(model.inputs, ("input_ids", "attention_mask")):
            port.get_tensor().set_names({name})
        model.reshape({name: ov.PartialShape([-1, -1]) for name in ("input_ids", "attention_mask")})
        got = compile_tower(model, threads=1)([ids.numpy(), mask.numpy()])[0]
        error = float(np.abs(got - expected).max())
        if error > CHECK_ATOL:
            raise ValueError(f"the OpenVINO conversion of the {role} tower differs from torch by {error:.3g}")
        save_ir(model, folder)
    finally:
        encoder.train(was_training)
    logger.info("converted the %s tower to OpenVINO IR in %s (max |diff| %.2g)", role, folder, error)
    return folder / MODEL_FILE


def export_int8_tower(encoder: DualEncoder, role: str, folder: str | Path, fp32_folder: str | Path) -> Path:
    """Write the 8-bit IR of ``encoder``'s ``role`` tower in ``folder``, from its fp32 IR in ``fp32_folder``
    (converted first when missing).

    :param encoder: an fp32 encoder on the CPU.
    :param role: ``"query"`` or ``"passage"``.
    :param folder: the 8-bit IR's directory (replaced whole); its parent is created.
    :param fp32_folder: the fp32 IR's directory (:func:`export_tower`'s).
    :returns: the ``tower.xml`` path.
    :raises ValueError: if the compiled tower fails :func:`check_int8_tower` (nothing is written then).
    """
    from spart.encoders.openvino_int8 import ACTIVATION_GROUP, compress_weights

    ov = require_openvino()
    folder, fp32_folder = Path(folder), Path(fp32_folder)
    if not (fp32_folder / MODEL_FILE).is_file():
        export_tower(encoder, role, fp32_folder)
    model = ov.Core().read_model(str(fp32_folder / MODEL_FILE))
    layers = compress_weights(model)
    if not layers:
        raise ValueError(f"the {role} tower has no linear layer to hold in int8")
    cosine = check_int8_tower(encoder, role, compile_tower(model, threads=1, activation_group=ACTIVATION_GROUP))
    save_ir(model, folder)
    logger.info("wrote the 8-bit %s tower (%d layers) in %s (min cosine %.5f)", role, layers, folder, cosine)
    return folder / MODEL_FILE


def check_int8_tower(encoder: DualEncoder, role: str, compiled: Any) -> float:
    """The smallest cosine between ``compiled``'s embeddings of
    :data:`~spart.encoders.openvino_int8.CHECK_SENTENCES` and ``encoder``'s torch fp32 ones.

    :param encoder: the fp32 encoder the tower was made from.
    :param role: ``"query"`` or ``"passage"``.
    :param compiled: the compiled 8-bit tower.
    :returns: the minimum cosine (at least :data:`~spart.encoders.openvino_int8.MIN_COSINE`).
    :raises ValueError: if the tower returns embeddings of the wrong shape or falls below the bound; the message
        names the OpenVINO version and ``backend="openvino"`` (what the plugin runs depends on the CPU).
    """
    from spart.encoders.openvino_int8 import CHECK_SENTENCES, MIN_COSINE, min_cosine

    version = require_openvino().__version__
    context = f' on this CPU (OpenVINO {version}); use backend="openvino" (the exact fp32 graph)'

    batch = encoder.tokenizer(list(CHECK_SENTENCES), padding=True, truncation=True, max_length=128, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            expected = PooledTower(encoder, role).eval()(ids, mask).numpy()
    finally:
        encoder.train(was_training)
    got = compiled([ids.numpy(), mask.numpy()])[0]
    try:
        cosine = min_cosine(got, expected)
    except ValueError as error:
        raise ValueError(f"the 8-bit {role} tower returned {error}{context}") from None
    if not cosine >= MIN_COSINE:  # NaN fails too
        message = f"the 8-bit {role} tower keeps a cosine of only {cosine:.5f} to fp32 (< {MIN_COSINE})"
        raise ValueError(message + context)
    return cosine


class OpenVinoTowers:
    """Compiled OpenVINO towers of one encoder (one model when the tower is shared).

    Built by :func:`load_openvino_towers`; ``embed(role, input_ids, attention_mask)`` returns the same float32
    embeddings as ``DualEncoder.embed`` on those inputs. Each thread gets its own infer requests (an infer
    request is not thread-safe; the compiled model is).
    """

    def __init__(self, compiled: dict[str, Any], paths: dict[str, Path], stamp: tuple) -> None:
        self.compiled = compiled
        self.paths = paths
        self.stamp = stamp
        self._local = threading.local()

    def embed(self, role: str, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        requests = self._local.__dict__.setdefault("requests", {})
        request = requests.get(role)
        if request is None:
            request = requests[role] = self.compiled[role].create_infer_request()
        feed = [np.asarray(input_ids, dtype=np.int64), np.asarray(attention_mask, dtype=np.int64)]
        return np.array(request.infer(feed)[0], dtype=np.float32)  # a copy: the request reuses its buffer


def tower_dirs(encoder: DualEncoder, root: Path | None = None, *, int8: bool = False) -> dict[str, Path]:
    """Where the towers of ``encoder`` are (or will be) converted: ``{role: folder}`` (one if shared); with
    ``int8``, the 8-bit IRs' folders (``<tower>-int8-w..a..``)."""
    from spart.encoders.openvino_int8 import VARIANT

    return tower_paths((root or openvino_root()) / EXPORT_FORMAT / encoder.fingerprint, encoder, f"-{VARIANT}" * int8)


def load_openvino_towers(encoder: DualEncoder, root: Path | None = None, *, int8: bool = False) -> OpenVinoTowers:
    """Compiled OpenVINO towers for ``encoder``, converting the ones not yet in the cache.

    :param encoder: an fp32 encoder on the CPU.
    :param root: the IR cache (default ``$SPART_CACHE/openvino``).
    :param int8: the 8-bit towers (``backend="openvino-int8"``) instead of fp32.
    :returns: the compiled towers.
    """
    require_openvino()
    stamp = weights_stamp(encoder)
    from spart.encoders.openvino_int8 import ACTIVATION_GROUP

    folders, fp32 = tower_dirs(encoder, root, int8=int8), tower_dirs(encoder, root)

    def export(encoder: DualEncoder, role: str, folder: Path) -> Path:
        return export_int8_tower(encoder, role, folder, fp32[role]) if int8 else export_tower(encoder, role, folder)

    def open_(path: Path) -> Any:
        return compile_tower(path, activation_group=ACTIVATION_GROUP if int8 else None)

    compiled = open_towers(encoder, folders, lambda folder: folder / MODEL_FILE, export, open_)
    if int8:  # what the plugin runs depends on the CPU: check the compiled towers here, not only at export
        checked: set[int] = set()
        for role, tower in compiled.items():
            if id(tower) not in checked:
                checked.add(id(tower))
                check_int8_tower(encoder, role, tower)
    return OpenVinoTowers(
        compiled,
        {role: folder / MODEL_FILE for role, folder in folders.items()},
        stamp,
    )
