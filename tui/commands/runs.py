"""``termnist runs``: the run history (engine.runs) on the command line.

    termnist runs [--json] [--sort COL] [--asc] [--filter TEXT] [--status S] [--limit N]
    termnist runs show ID [--json]
    termnist runs compare ID ID... [--json]
    termnist runs export ID [--format csv|json] [-o FILE]
    termnist runs rm ID... [--checkpoint]

An id prefix that is unique works. Exit status: 0, 1 (unknown id, unusable store: one
line), 2 (usage). Never imports NumPy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

SORT_HELP = "started (default), ended, status, dataset, epochs_done, best_val_acc, test_acc, seconds, star, ..."


def register(sub: Any) -> None:
    p = sub.add_parser("runs", help="the run history: list, show, compare, export, rm",
                       description="The run history: every run of the app and of `termnist train`.")
    p.add_argument("--json", action="store_true", help="one JSON object a line per run")
    p.add_argument("--sort", default="started", metavar="COL", help=SORT_HELP)
    p.add_argument("--asc", action="store_true", help="ascending (default: descending, newest first)")
    p.add_argument("--filter", metavar="TEXT",
                   help="only runs whose id, status, dataset, settings or note contain TEXT")
    p.add_argument("--status", help="only runs with this status (running, completed, stopped, ...)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N runs")
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="runs_command", metavar="ACTION")
    s = actions.add_parser("show", help="settings, per-epoch table and live changes of a run")
    s.add_argument("id", metavar="ID")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=run_show)
    c = actions.add_parser("compare", help="differing settings and per-epoch figures side by side")
    c.add_argument("ids", nargs="+", metavar="ID")
    c.add_argument("--json", action="store_true", help="one JSON object")
    c.set_defaults(func=run_compare)
    e = actions.add_parser("export", help="the per-epoch figures of a run as CSV or JSON")
    e.add_argument("id", metavar="ID")
    e.add_argument("--format", choices=("csv", "json"), default="csv")
    e.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    e.set_defaults(func=run_export)
    r = actions.add_parser("rm", help="delete runs from the history")
    r.add_argument("ids", nargs="+", metavar="ID")
    r.add_argument("--checkpoint", action="store_true", help="also delete their checkpoint files")
    r.set_defaults(func=run_rm)


def _store(write: bool = False):
    """The store, or None when no run was ever recorded. StoreError -> one line, exit 1."""
    from engine.runs import RunStore, default_path

    path = default_path()
    if not path.exists() and not write:
        return None
    return RunStore(path, readonly=not write and not _writable(path), retry_seconds=10.0)


def _writable(path: Any) -> bool:
    from engine.runs import store

    return store.writable(path)


def _fail(text: str) -> int:
    print(f"termnist: error: {text}", file=sys.stderr)
    return 1


def _guard(fn: Any, args: argparse.Namespace) -> int:
    from engine.runs import StoreError, UnknownRunError
    from tui.commands import UsageError

    try:
        return int(fn(args) or 0)
    except (StoreError, UnknownRunError) as exc:
        return _fail(str(exc))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = []
    for row in [header, *rows]:
        cells = [str(x).rjust(w) if i in right else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _brief(settings: dict[str, Any]) -> str:
    hidden = settings.get("hidden")
    layers = "-".join(str(h) for h in hidden) if isinstance(hidden, list) else str(hidden)
    lr = settings.get("lr", "?")
    lr_text = f"{lr:.4g}" if isinstance(lr, float) else str(lr)     # a sweep's lr: 0.0303, not 0.0302852515...
    return (f"{layers or 'linear'} {settings.get('activation', '?')} {settings.get('optimizer', '?')}"
            f" lr={lr_text} batch={settings.get('batch_size', '?')}")


def run_list(args: argparse.Namespace) -> int:
    return _guard(_list, args)


def _list(args: argparse.Namespace) -> int:
    from engine.runs import SORT_COLUMNS

    if args.sort not in SORT_COLUMNS:
        from tui.commands import UsageError

        raise UsageError(f"--sort: {args.sort!r} is not one of {', '.join(SORT_COLUMNS)}")
    store = _store()
    if store is None:
        if not args.json:
            from engine.runs import default_path

            print(f"no runs recorded yet (the history will be in {default_path()})")
        return 0
    with store:
        runs = store.list(sort=args.sort, descending=not args.asc, text=args.filter, status=args.status,
                          limit=args.limit)
    if args.json:
        for r in runs:
            print(json.dumps(r.to_json()))
        return 0
    if not runs:
        print("no runs match" if (args.filter or args.status) else f"no runs recorded yet ({store.path})")
        return 0
    rows = [[("*" if r.star else "") + r.id, _when(r.started), r.status,
             r.dataset + (" (sample)" if r.sample else ""),
             f"{r.epochs_done}/{r.settings.get('epochs', '?')}", _pct(r.best_val_acc), _pct(r.test_acc),
             _num(r.seconds, ".1f"), _brief(r.settings) + (f"  # {r.note}" if r.note else "")] for r in runs]
    print(_table(["id", "started", "status", "dataset", "epochs", "best val", "test", "seconds", "settings"],
                 rows, right={4, 5, 6, 7}))
    return 0


def run_show(args: argparse.Namespace) -> int:
    return _guard(_show, args)


def _open_existing():
    from engine.runs import UnknownRunError, default_path

    store = _store()
    if store is None:
        raise UnknownRunError(f"no runs recorded yet ({default_path()})")
    return store


def _show(args: argparse.Namespace) -> int:
    with _open_existing() as store:
        run = store.get(args.id)
    if args.json:
        print(json.dumps(run.to_full_json()))
        return 0
    m = run.machine
    info = [("run", run.id + ("  (starred)" if run.star else "")), ("status", run.status),
            ("started", _when(run.started)), ("ended", _when(run.ended)),
            ("source", run.source or "-"),
            ("dataset", f"{run.dataset_title or run.dataset}" + (" (bundled sample)" if run.sample else "")
             + (f", {run.data_dir}" if run.data_dir else "")),
            ("epochs", f"{run.epochs_done}"), ("best val", _pct(run.best_val_acc)),
            ("test", f"{_pct(run.test_acc)} (loss {_num(run.test_loss)})"),
            ("seconds", _num(run.seconds, ".1f")), ("checkpoint", run.checkpoint or "-"),
            ("termnist", run.version or "-"),
            ("machine", f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, BLAS {m.get('blas') or '?'},"
                        f" {m.get('threads') or '?'} thread(s), host {run.host}")]
    if run.message:
        info.append(("message", run.message))
    if run.note:
        info.append(("note", run.note))
    for k, v in info:
        print(f"{k + ':':<12}{v}")
    print("settings:   " + " ".join(f"{k}={v}" for k, v in run.settings.items()))
    print()
    if run.epochs:
        print(_table(["epoch", "train loss", "train acc", "val loss", "val acc", "seconds", "lr"],
                     [[str(e["epoch"]), _num(e["train_loss"]), _pct(e["train_acc"]), _num(e["val_loss"]),
                       _pct(e["val_acc"]), _num(e["seconds"], ".2f"), _num(e["lr"], "g")] for e in run.epochs],
                     right=set(range(7))))
    else:
        print("no epoch finished")
    if run.changes:
        print()
        print("live changes:")
        print(_table(["epoch", "step", "setting", "from", "to"],
                     [[str(c["epoch"]), str(c["step"]), c["field"], json.dumps(c["old"]), json.dumps(c["new"])]
                      for c in run.changes]))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    return _guard(_compare, args)


def _compare(args: argparse.Namespace) -> int:
    if len(args.ids) < 2:
        from tui.commands import UsageError

        raise UsageError("runs compare: give two run ids or more")
    with _open_existing() as store:
        result = store.compare(args.ids)
    ids = result["ids"]
    if args.json:
        print(json.dumps({"ids": ids, "settings": result["settings"], "epochs": result["epochs"]}))
        return 0
    if result["settings"]:
        print(_table(["setting", *ids], [[k, *(json.dumps(v) for v in vs)] for k, vs in result["settings"].items()]))
    else:
        print("same settings")
    print()
    header = ["epoch"]
    for rid in ids:
        header += [f"{rid[:8]} train loss", "val loss", "val acc"]
    rows = []
    for e in result["epochs"]:
        row = [str(e["epoch"])]
        for fig in e["runs"]:
            row += ([_num(fig["train_loss"]), _num(fig["val_loss"]), _pct(fig["val_acc"])] if fig
                    else ["-", "-", "-"])
        rows.append(row)
    print(_table(header, rows, right=set(range(len(header)))))
    print()
    print(_table(["", *ids], [["test acc", *(_pct(r.test_acc) for r in result["runs"])],
                              ["status", *(r.status for r in result["runs"])]]))
    return 0


def run_export(args: argparse.Namespace) -> int:
    return _guard(_export, args)


def _export(args: argparse.Namespace) -> int:
    with _open_existing() as store:
        text = store.export(args.id, args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            return _fail(f"{args.output}: {exc.strerror or exc}")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    return _guard(_rm, args)


def _rm(args: argparse.Namespace) -> int:
    from engine.runs import RunStore, default_path

    if not default_path().exists():
        return _fail(f"no runs recorded yet ({default_path()})")
    with RunStore(default_path(), retry_seconds=10.0) as store:
        deleted = store.delete(args.ids, delete_checkpoints=args.checkpoint)
    for rid in deleted:
        print(f"deleted run {rid}")
    return 0
