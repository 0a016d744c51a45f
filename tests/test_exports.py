"""Every exported name of every package imports the way a user writes it (``from spart.x import Name``) and is
the kind of object its name declares: a class (``CapWords``), a constant (``UPPER_CASE``) or a function
(``lower_case``), never a module. Each package runs in a fresh interpreter, twice: first as a user's first
import, then after all of the package's submodules were imported (a submodule named like an export would
shadow it from then on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import spart

SRC = Path(spart.__file__).resolve().parent


def _packages() -> list[str]:
    found = []
    for init in sorted(SRC.rglob("__init__.py")):
        if "__all__" in init.read_text(encoding="utf-8"):
            parts = init.parent.relative_to(SRC.parent).parts
            found.append(".".join(parts))
    return found


PACKAGES = _packages()

# Runs in the fresh interpreter: prints {name: problem} for every export that is not what its name declares.
_CHECK = r"""
import importlib, inspect, json, pkgutil, sys, types

package = sys.argv[1]

def kind_problem(name, obj):
    if isinstance(obj, types.ModuleType):
        return f"is the module {obj.__name__}"
    if name.isupper():
        return None if not (inspect.isclass(obj) or inspect.isroutine(obj)) else f"is {obj!r}, not a constant"
    if name[0].isupper():
        expected = inspect.isclass(obj)
    else:
        expected = inspect.isfunction(obj)
    if not expected:
        declared = "class" if name[0].isupper() else "function"
        return f"is {type(obj).__name__} {obj!r}, not the {declared} its name declares"
    if obj.__name__ != name:
        return f"is {obj.__module__}.{obj.__name__}, an alias"
    if getattr(importlib.import_module(obj.__module__), name, None) is not obj:
        return f"is not {obj.__module__}.{name}"
    return None

def check():
    problems = {}
    names = importlib.import_module(package).__all__
    for name in names:
        namespace = {}
        try:
            exec(f"from {package} import {name}", namespace)
        except Exception as error:
            problems[name] = f"import failed: {type(error).__name__}: {error}"
            continue
        problem = kind_problem(name, namespace[name])
        if problem:
            problems[name] = problem
    return names, problems

names, first = check()
pkg = sys.modules[package]
for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
    importlib.import_module(info.name)
_, after = check()
print(json.dumps({"names": names, "first": first, "after_submodules": after}))
"""


def test_packages_are_found():
    assert {"spart.evaluation", "spart.components", "spart.data", "spart.training"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_imports_as_what_its_name_declares(package):
    out = subprocess.run([sys.executable, "-c", _CHECK, package], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["names"], f"{package}.__all__ is empty"
    assert report["first"] == {}, f"from {package} import ... in a fresh interpreter: {report['first']}"
    assert report["after_submodules"] == {}, f"after importing {package}'s submodules: {report['after_submodules']}"


def test_has_answer_is_the_function():
    code = (
        "import spart.evaluation.answers\n"
        "from spart.evaluation import has_answer\n"
        "assert callable(has_answer) and has_answer.__name__ == 'has_answer', has_answer\n"
        "assert has_answer(['Nixon'], 'Richard Nixon') is True\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]


def test_lazy_exports_refuse_a_name_that_is_also_a_submodule(tmp_path, monkeypatch):
    package = tmp_path / "shadowpkg"
    package.mkdir()
    (package / "thing.py").write_text("def thing():\n    return 1\n", encoding="utf-8")
    (package / "__init__.py").write_text(
        "from spart._lazy import lazy_exports\n"
        "__all__, __getattr__, __dir__ = lazy_exports(__name__, {'thing': '.thing'})\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r"shadowpkg: exported name\(s\) \['thing'\] are also submodules"):
        __import__("shadowpkg")
    monkeypatch.delitem(sys.modules, "shadowpkg", raising=False)
