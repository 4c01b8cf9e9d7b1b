"""``termnist download`` and ``termnist datasets`` (stdlib, tui.data_status; engine imported lazily).

download [NAME] [--to DIR] [--mirror URL ...] [--verify [DIR]] [--timeout S]
    Fetch and verify a dataset (into the user cache, or DIR). A progress line (bytes, rate,
    ETA) goes to stderr, one line per mirror that fails and why. With --verify, only check the
    files already there. Exit 0 when everything verified, 1 otherwise, 130 when interrupted
    (the partial file is kept; the same command resumes).
datasets [--data DIR]
    A table of every dataset: where it was found (or not), sizes, verified or not.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, TextIO

from tui.data_status import DOWNLOADABLE, DownloadMeter, format_progress, human_bytes


def register(sub: Any) -> None:
    """Add the ``download`` and ``datasets`` subcommands to an argparse subparsers object."""
    p = sub.add_parser("download", help="fetch and verify MNIST, Fashion-MNIST or KMNIST",
                       description="Fetch a dataset's four IDX files, verify their checksums "
                                   "and keep them in the user cache (or --to DIR).")
    p.add_argument("name", nargs="?", default="mnist", choices=DOWNLOADABLE, metavar="NAME",
                   help=f"{', '.join(DOWNLOADABLE)} (default: %(default)s)")
    p.add_argument("--to", metavar="DIR", help="put the files directly in DIR "
                                               "(then use --data DIR)")
    p.add_argument("--mirror", metavar="URL", action="append", default=[],
                   help="try this mirror first (repeatable; also $TERMNIST_MIRROR)")
    p.add_argument("--verify", metavar="DIR", nargs="?", const="", default=None,
                   help="only verify the files already in DIR (default: the download place)")
    p.add_argument("--timeout", metavar="S", type=float, default=30.0,
                   help="network timeout in seconds (default: %(default)s)")
    p.set_defaults(func=run_download)

    p = sub.add_parser("datasets", help="list datasets and where they were found",
                       description="Show every dataset: where termnist finds it, its size, "
                                   "and whether its checksums verify.")
    p.add_argument("--data", metavar="DIR", help="look only in DIR (as `termnist --data DIR`)")
    p.set_defaults(func=run_datasets)


def _error(text: str, code: int = 1) -> int:
    print(f"termnist: error: {text}", file=sys.stderr, flush=True)
    return code


# --- download -------------------------------------------------------------------------------

class ProgressLine:
    """Renders download progress on ``stream``: a line rewritten in place on a terminal (at
    most 10 times a second); elsewhere a plain line at most every 5 s. Log lines are printed
    on their own line."""

    def __init__(self, stream: TextIO, clock=time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = 0.1 if self.tty else 5.0
        self._meter = DownloadMeter("", (), interval=self.interval, clock=clock)  # rate, pacing
        self._shown = False

    def __call__(self, filename: str, done: int, total: int | None) -> None:
        info = self._meter.update(filename, done, total)
        if info is None:
            return
        line = format_progress(filename, done, total, info.rate)
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the in-place progress line, if one is showing."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def log(self, line: str) -> None:
        self.clear()
        self.stream.write(line + "\n")
        self.stream.flush()


def run_download(args: argparse.Namespace) -> int:
    import math

    from engine.datasets import DATASETS, verify_dir
    from engine.download import DownloadCancelled, download, target_dir
    from engine.errors import TermnistError
    from tui.commands import UsageError

    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise UsageError(f"--timeout: expected a number of seconds above 0, got {args.timeout:g}")

    title = DATASETS[args.name].title
    if args.verify and args.to is not None:
        raise UsageError(f"--to {args.to}: does not apply to --verify {args.verify} (verify one directory: "
                         "--verify DIR, or --to DIR --verify)")
    if args.verify is not None and args.mirror:
        raise UsageError("--mirror: does not apply to --verify, which downloads nothing")
    if args.verify is not None:
        try:
            where = args.verify or target_dir(args.name, args.to)
            results = verify_dir(args.name, where)
        except TermnistError as e:
            hint = "" if args.verify else f" (nothing downloaded there yet: `termnist download {args.name}`)"
            return _error(f"{e}{hint}")
        for r in results:
            print(f"{r.status:<10} {r.file}: {r.detail}")
        bad = [r for r in results if not r.ok]
        if bad:
            return _error(f"{len(bad)} of {len(results)} {title} files in {where} not verified")
        print(f"{title}: all {len(results)} files in {where} verified")
        return 0

    out = ProgressLine(sys.stderr)
    cancel = threading.Event()
    try:
        where = download(args.name, to=args.to, mirrors=args.mirror, progress=out,
                         cancel=cancel, timeout=args.timeout, log=out.log)
    except KeyboardInterrupt:
        out.log("termnist: download interrupted; the partial file is kept: run the same "
                "command to resume")
        return 130
    except DownloadCancelled as e:
        out.log(f"termnist: {e}")
        return 130
    except TermnistError as e:
        out.clear()
        return _error(str(e))
    print(f"{title} is ready in {where}")
    if args.to is not None:
        print(f"use it with: termnist --data {where}")
    return 0


# --- datasets -------------------------------------------------------------------------------

def _row(name: str, data_dir: str | None) -> tuple[list[str], list[str]]:
    """Table cells for one dataset, and notes to print under the table."""
    from engine.datasets import DATASETS, SAMPLE_DIR, find_idx_files, locate_dataset, verify_dir
    from engine.errors import TermnistError
    from engine.idx import read_idx_header

    results = locate_dataset(name, data_dir)
    hit = results[-1] if results[-1].found else None
    notes: list[str] = []
    if hit is None:
        why = results[-1].detail if name == "digits" else (
            f"not found: `termnist download {name}`" if name in DOWNLOADABLE else "not found")
        if name != "digits":
            notes.append(f"{name}: looked in " + "; ".join(str(r) for r in results))
        return [name, "missing", "-", "-", "-", "-", why], notes
    if hit.kind == "sklearn" or hit.path is None:
        return [name, "found", "-", "-", "-", "n/a", "scikit-learn load_digits()"], notes
    where = "bundled sample" if hit.kind == "sample" else hit.place
    if name == "mnist" and hit.kind == "sample":
        notes.append("mnist: the full set was not found, so the bundled sample is used "
                     "(`termnist download mnist` fetches it); looked in "
                     + "; ".join(str(r) for r in results[:-1]))
    if hit.kind == "npz":
        size = human_bytes(hit.path.stat().st_size)
        return [name, "found", "?", "?", size, "not checked", where], notes
    files = find_idx_files(hit.path)
    try:
        counts = [str(read_idx_header(files[f]).shape[0]) for f in
                  ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")]
    except TermnistError as e:
        notes.append(f"{name}: {e}")
        counts = ["?", "?"]
    size = human_bytes(sum(p.stat().st_size for p in files.values()))
    check_name = "mnist-sample" if hit.kind == "sample" else name
    if not DATASETS[check_name].files and check_name != "mnist-sample":
        verified = "n/a"
    else:
        try:
            checks = verify_dir(check_name, hit.path if hit.kind != "sample" else SAMPLE_DIR)
        except TermnistError as e:
            checks, verified = [], "no"
            notes.append(f"{name}: {e}")
        if checks:
            statuses = {r.status for r in checks}
            verified = ("yes" if statuses == {"ok"} else "unverified" if statuses <= {"ok", "unverified"}
                        else "NO")
            notes += [f"{name}: {r.file}: {r.detail}" for r in checks if not r.ok]
    return [name, "found", *counts, size, verified, where], notes


def run_datasets(args: argparse.Namespace) -> int:
    from engine.datasets import available_datasets, check_data_path
    from engine.errors import TermnistError

    if args.data is not None:
        try:
            check_data_path(args.data)
        except TermnistError as e:
            return _error(str(e))
    names = list(available_datasets()) + (["idx"] if args.data else [])
    rows = [["NAME", "STATUS", "TRAIN", "TEST", "SIZE", "VERIFIED", "WHERE"]]
    notes: list[str] = []
    try:
        for name in names:
            row, more = _row(name, args.data)
            rows.append(row)
            notes += more
    except TermnistError as e:
        return _error(str(e))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if notes:
        print()
        for n in notes:
            print(n)
    print("\nMNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0).")
    return 0
