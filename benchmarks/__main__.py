"""python -m benchmarks [all|epoch|accuracy|app|startup|insight|runs|live ...|sweep] [--quick] [--json P] [--data DIR]

``sweep`` (termnist sweep vs an Optuna + PyTorch script, ~15 min on full MNIST) runs only when named.

Prints one table per section, then every target with its verdict. ``--json PATH`` writes the
tables, the targets and every raw measurement. ``--quick`` runs each section on the bundled
sample with tiny counts (seconds; for the smoke test -- its figures mean nothing).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks import SCHEMA_VERSION
from benchmarks.common import Options, SectionResult, Table, find_full_mnist, machine_info, machine_table

SECTIONS = ("epoch", "accuracy", "app", "startup", "insight", "runs", "live")
EXTRA_SECTIONS = ("sweep",)     # long: only when named, not in "all"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sections", nargs="*", default=["all"], metavar="SECTION",
                   help=f"all (default) or any of: {', '.join(SECTIONS)}")
    p.add_argument("--quick", action="store_true", help="bundled sample, tiny counts (smoke test)")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    p.add_argument("--data", metavar="DIR", help="full MNIST directory (default: $TERMNIST_DATA or "
                                                "../shared/data/mnist)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wanted = list(SECTIONS) if "all" in args.sections else args.sections
    wanted += [s for s in args.sections if s in EXTRA_SECTIONS and s not in wanted]
    unknown = [s for s in wanted if s not in SECTIONS + EXTRA_SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; choose from all, {', '.join(SECTIONS + EXTRA_SECTIONS)}",
              file=sys.stderr)
        return 2
    data_dir = None
    notes = []
    if not args.quick:
        data_dir = find_full_mnist(args.data)
        if data_dir is None:
            if args.data:
                print(f"--data {args.data}: no MNIST IDX files there", file=sys.stderr)
                return 2
            notes.append("full MNIST not found ($TERMNIST_DATA, ../shared/data/mnist): measuring on the "
                         "bundled sample, so the figures are not comparable with the targets")
    opts = Options(quick=args.quick, data_dir=data_dir, torch=not args.no_torch, verbose=not args.quiet)
    os.environ["TERMNIST_CONFIG_DIR"] = str(opts.workdir / "config")   # never the user's settings
    os.environ["TERMNIST_STATE_DIR"] = str(opts.workdir / "state")     # nor their recovery slot

    t_start = time.perf_counter()
    info = machine_info()
    results: list[SectionResult] = []
    failures: list[str] = []
    print(machine_table(info).render(), flush=True)
    for n in notes:
        print(f"  note: {n}", flush=True)
    try:
        for name in wanted:
            module = importlib.import_module(f"benchmarks.{name}")
            load_before = os.getloadavg()
            t0 = time.perf_counter()
            try:
                res = module.run(opts)
            except Exception as exc:  # noqa: BLE001 - report, go on with the next section
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                res = SectionResult(name, name, tables=[Table(f"{name}: FAILED", ["error"], [[str(exc)]])])
            res.seconds = time.perf_counter() - t0
            if opts.quick:   # tiny counts on the sample: no verdicts
                for tg in res.targets:
                    tg.met, tg.reason = None, "--quick: sample, tiny counts"
            res.load_before, res.load_after = load_before, os.getloadavg()
            results.append(res)
            print(flush=True)
            for table in res.tables:
                print(table.render(), flush=True)
                print(flush=True)
            print(f"  ({name}: {res.seconds:.0f} s; load average {res.load_before[0]:.2f} -> "
                  f"{res.load_after[0]:.2f})", flush=True)
    finally:
        opts.cleanup()

    targets = Table("Targets", ["section", "target", "measured", "goal", "verdict", "why"])
    for res in results:
        for tg in res.targets:
            targets.add(tg.section, tg.name, tg.measured, tg.target, tg.verdict, tg.reason)
    total = time.perf_counter() - t_start
    targets.notes.append(f"total {total:.0f} s; every figure is a median of runs alternating with its "
                         "reference in this run (see each table's notes)")
    print()
    print(targets.render(), flush=True)

    if args.json:
        payload = {
            "schema": SCHEMA_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": sys.argv[1:] if argv is None else list(argv),
            "quick": args.quick,
            "data_dir": str(data_dir) if data_dir else None,
            "machine": info,
            "notes": notes,
            "sections": {r.name: r.to_json() for r in results},
            "failures": failures,
            "total_seconds": total,
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=_default))
        print(f"wrote {path}")
    return 1 if failures else 0


def _default(obj):
    try:
        return obj.item()
    except AttributeError:
        return str(obj)


if __name__ == "__main__":
    sys.exit(main())
