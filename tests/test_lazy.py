"""Package re-exports are lazy: importing a package does not import its heavy modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = [
    "spart.components",
    "spart.encoders",
    "spart.evaluation",
    "spart.pipelines",
    "spart.teacher",
    "spart.training",
    "spart.demo",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_is_light_and_names_resolve(package):
    code = (
        "import importlib, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "heavy = [m for m in ('torch', 'faiss', 'transformers', 'haystack') if m in sys.modules]\n"
        "assert not heavy, f'import pulled in {heavy}'\n"
        "assert set(pkg.__all__) <= set(dir(pkg))\n"
        "print(sorted(pkg.__all__)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_names_import_their_module_on_first_use():
    from spart import components, encoders

    assert components.HybridScoreFuser.__name__ == "HybridScoreFuser"
    assert encoders.DualEncoder.__module__ == "spart.encoders.dual_encoder"
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        components.Nope  # noqa: B018
