"""Adapting a retriever to a corpus without labels: the label-free audit (``spart audit``) and the one-command
recipe (``spart adapt``: generate questions -> audit -> train (pairs or ART) -> select -> tune the hybrid ->
report).

Names are imported lazily so ``import spart.adaptation`` does not import torch or Haystack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TeacherSpec": "spart.adaptation.audit",
        "AuditReport": "spart.adaptation.audit",
        "run_audit": "spart.adaptation.audit",
    },
)

if TYPE_CHECKING:
    from spart.adaptation.audit import AuditReport, TeacherSpec, run_audit
