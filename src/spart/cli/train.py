"""``spart train METHOD --config FILE [--set key=value ...] [--resume]``: run a trainer.

A method names a trainer module: ``spider`` and ``few-shot`` are the contrastive trainer
(:mod:`spart.training.contrastive`; the data section of the config picks span examples or labelled pairs),
and any other name ``foo-bar`` resolves to :mod:`spart.training.foo_bar`. A trainer module exposes
``CONFIG_CLASS`` (a :class:`spart.training.config.TrainingConfig` subclass) and
``run_training(config, resume) -> Path``; adding a trainer (e.g. ``spart.training.art``) needs no edit here.

Examples::

    spart train spider --config src/spart/training/configs/spider.yaml --set batch_size=64 --set lr=1e-5
    torchrun --nproc_per_node 8 -m spart train spider --config spider.yaml
    spart train spider --config spider.yaml --resume          # continue from output_dir/checkpoints
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

# Aliases for trainer modules whose name is not the method's.
TRAINERS = {"spider": "spart.training.contrastive", "few-shot": "spart.training.contrastive"}

# Shortcut flags: --lr 1e-5 is --set lr=1e-5.
SHORTCUTS = ("output_dir", "model", "lr", "batch_size", "max_steps", "seed", "precision", "grad_cache_chunk")


def trainer_module(method: str) -> ModuleType:
    """The module implementing ``method`` (see the module docstring)."""
    name = TRAINERS.get(method, f"spart.training.{method.replace('-', '_')}")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            raise ValueError(f"unknown training method {method!r} (known: {', '.join(sorted(TRAINERS))})") from None
        raise
    if not hasattr(module, "CONFIG_CLASS") or not hasattr(module, "run_training"):
        raise ValueError(f"{name} is not a trainer module (needs CONFIG_CLASS and run_training)")
    return module


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a retriever (spider, few-shot, ...)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", help=f"training method: {', '.join(sorted(TRAINERS))}, or a spart.training module")
    parser.add_argument("--config", "-c", help="YAML config file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config option (dotted keys for sections, YAML values); repeatable",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    for name in SHORTCUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=f"shortcut_{name}", metavar=name.upper(),
                            help=f"same as --set {name}=...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.training.config import load_config

    module = trainer_module(args.method)
    overrides = list(args.overrides)
    for name in SHORTCUTS:
        value = getattr(args, f"shortcut_{name}", None)
        if value is not None:
            overrides.append(f"{name}={value}")
    config = load_config(module.CONFIG_CLASS, args.config, overrides)
    if args.print_config:
        print(config.to_json())
        return 0
    final = module.run_training(config, resume=args.resume)
    print(f"final model: {final}", file=sys.stderr)
    return 0
