"""Crash-safe replacement of whole directories (models, stores): the previous copy stays usable until the end."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_directory(staging: Path, target: Path) -> None:
    """Swap the fully written ``staging`` directory into ``target``.

    An existing ``target`` is renamed aside first and removed only after the swap, so at every instant either
    the old or the new copy sits at ``target`` (or, for the two renames' instant, aside under a known name).
    """
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
