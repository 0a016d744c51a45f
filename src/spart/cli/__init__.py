"""The ``spart`` command line.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``, which
adds its parser and sets ``func`` (called with the parsed namespace, returns an exit code). Modules are
discovered, so adding a command never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from spart._extras import MissingExtraError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spart", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The command line runs offline: Haystack's usage telemetry would only try (and retry) the network. An
    # explicit HAYSTACK_TELEMETRY_ENABLED in the environment still wins.
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, MissingExtraError) as error:
        # Bad input or a missing extra is reported as one line that names the problem, not a traceback.
        print(f"spart {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
