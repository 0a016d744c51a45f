"""What the encoder backend tests share: texts, titles, an fp32 CPU loader and the skip for a missing runtime."""

from __future__ import annotations

import pytest

from spart.encoders import DualEncoder

TEXTS = [
    "Hamlet is a tragedy written by William Shakespeare.",
    "Paris",
    "The mitochondrion is the powerhouse of the cell, producing most of its chemical energy supply.",
    "A gyroscope is a device used for measuring or maintaining orientation and angular velocity.",
]
TITLES = ["Hamlet", "", "Mitochondrion", None]


def load(location, backend, **kwargs) -> DualEncoder:
    return DualEncoder.load(location, device="cpu", precision="fp32", backend=backend, **kwargs)


def skip_without(runtime: str) -> None:
    """Skips the test when ``runtime``'s extra (``onnx`` or ``openvino``) is not installed."""
    from spart.encoders.backends import runtime_available

    if not runtime_available(runtime):
        pytest.skip(f"the {runtime} extra is not installed (pip install 'spart[{runtime}]')")
