"""What both trainers log: ``metrics.csv`` row by row, and a step progress bar."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spart.atomic import atomic_write


class MetricsLog:
    """``metrics.csv``, appended one row per logged step.

    On resume, rows after the resumed step are dropped: the interrupted run wrote them after its last
    checkpoint, and the resumed run produces them again, so the file never holds a step twice.
    """

    def __init__(self, path: Path, fields: Sequence[str], resumed_step: int) -> None:
        self.path = Path(path)
        self.fields = list(fields)
        rows = []
        if self.path.is_file() and resumed_step > 0:
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resumed_step]
        with atomic_write(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: Mapping[str, Any]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.fields).writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def step_progress(total: int, initial: int, enabled: bool, desc: str = "training"):
    """A tqdm bar over optimisation steps, starting at ``initial`` after a resume."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)
