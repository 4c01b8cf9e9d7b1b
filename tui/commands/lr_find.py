"""``termnist lr-find``: the learning-rate range test (engine.lr_find) with a chart.

Human output: the chart (loss against lr, log x axis, the suggestion marked) and one line
with the suggested lr. ``--json``: one object a line: ``point`` per step, then ``done``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from tui.commands.race import add_config_flags


def register(sub: Any) -> None:
    p = sub.add_parser("lr-find", help="find a learning rate (LR range test)",
                       description="A short run whose lr grows exponentially (1e-6 to 10 by default) until "
                                   "the loss explodes; plots loss against lr and suggests one "
                                   "(the smoothed loss's minimum / 10). Uses the settings' optimizer.")
    add_config_flags(p, skip=("--lr", "--epochs"))
    p.add_argument("--start-lr", type=float, default=1e-6, help="first lr (default: %(default)g)")
    p.add_argument("--end-lr", type=float, default=10.0, help="last lr (default: %(default)g)")
    p.add_argument("--steps", type=int, default=100, help="steps from start to end (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=run_lr_find)


def run_lr_find(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError
    from engine.lr_find import LRFinder
    from tui.commands import UsageError
    from tui.commands.race import load_for, note_printer
    from tui.commands.train import build_config, config_usage_error

    config = build_config(args)

    emit = note_printer(args.json)
    loaded = load_for(args, config, emit)
    if loaded is None:
        return 1
    dataset, config = loaded
    try:
        finder = LRFinder(config, dataset, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    except ConfigError as exc:
        flag = {"start_lr": "--start-lr", "end_lr": "--end-lr", "steps": "--steps"}.get(exc.field)
        if flag is not None:
            raise UsageError(f"{flag}: {exc.reason}") from None
        raise config_usage_error(exc, config) from None
    if not args.json:
        print(f"LR range test: {config.optimizer}, hidden {'-'.join(map(str, config.hidden)) or 'none'},"
              f" batch {config.batch_size}, lr {args.start_lr:g} to {args.end_lr:g} in {args.steps} steps"
              f" on {dataset.title}", file=sys.stderr, flush=True)
    try:
        for point in finder.run():
            if args.json:
                print(json.dumps({"event": "point", **point.__dict__}), flush=True)
    except KeyboardInterrupt:
        print("termnist: interrupted", file=sys.stderr)
        return 130
    result = finder.result
    assert result is not None
    if args.json:
        print(json.dumps({"event": "done", **result.to_json()}), flush=True)
    else:
        if result.lrs:
            from tui.lr_plot import render_text
            from tui.terminal import unicode_ok

            cols = shutil.get_terminal_size((80, 24)).columns
            print(render_text(result.lrs, result.losses, result.suggestion, width=min(max(cols, 40), 120),
                              height=18, colour=sys.stdout.isatty(), ascii_only=not unicode_ok(),
                              x_range=(args.start_lr, args.end_lr)))
        ended = {"exploded": f"the loss exploded at lr {result.lrs[-1]:.3g}" if result.lrs else "the loss exploded",
                 "end": f"reached lr {args.end_lr:g}", "stopped": "stopped"}[result.stopped]
        print(f"{len(result.lrs)} steps; {ended}")
        if result.steepest_lr is not None:
            print(f"steepest descent at lr {result.steepest_lr:.3g}")
        print(result.message)
    return 0 if result.suggestion is not None else 1
