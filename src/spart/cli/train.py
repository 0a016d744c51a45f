"""``spart train METHOD --config FILE [--set key=value ...] [--resume]``: run a trainer.

The methods are the rows of :mod:`spart.training.registry` (``spider``, ``few-shot``, ``art``); each names
its config class, dataset factory, encoder factory and trainer. ``spider`` and ``few-shot`` are the
contrastive trainer, and the data section of the config picks span examples or labelled pairs.

Examples::

    spart train spider --config src/spart/training/configs/spider.yaml --set batch_size=64 --set lr=1e-5
    torchrun --nproc_per_node 8 -m spart train spider --config spider.yaml
    spart train spider --config spider.yaml --resume          # continue from output_dir/checkpoints
"""

from __future__ import annotations

import argparse
import sys

from spart.training.registry import METHODS, get_method

# Shortcut flags: --lr 1e-5 is --set lr=1e-5.
SHORTCUTS = ("output_dir", "model", "lr", "batch_size", "max_steps", "seed", "precision", "grad_cache_chunk")


def register(subparsers: argparse._SubParsersAction) -> None:
    methods = "\n".join(f"  {m.name:<10} {m.summary}" for m in METHODS.values())
    parser = subparsers.add_parser(
        "train",
        help=f"train a retriever ({', '.join(METHODS)})",
        description=__doc__.split("\n\n")[0],
        epilog=f"methods:\n{methods}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("method", help=f"training method: {', '.join(METHODS)}")
    parser.add_argument("--config", "-c", help="YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config option (dotted keys for sections, YAML values); repeatable",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    for name in SHORTCUTS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"shortcut_{name}",
            metavar=name.upper(),
            help=f"same as --set {name}=...",
        )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.training.config import load_config
    from spart.training.registry import run_training

    method = get_method(args.method)
    overrides = list(args.overrides)
    for name in SHORTCUTS:
        value = getattr(args, f"shortcut_{name}", None)
        if value is not None:
            overrides.append(f"{name}={value}")
    config = load_config(method.config_class(), args.config, overrides)
    if args.print_config:
        print(config.to_json())
        return 0
    final = run_training(method, config, resume=args.resume)
    print(f"final model: {final}", file=sys.stderr)
    return 0
