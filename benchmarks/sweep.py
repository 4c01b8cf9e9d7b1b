"""Sweeps (engine.sweep): the same search by ``termnist sweep`` and by a plain Optuna + PyTorch
CPU script (benchmarks/sweep_torch.py), in one run.

1. 16 trials x 3 epochs, 784-128-64-10 (ReLU, SGD momentum 0.9, constant lr), lr log-uniform
   0.001..0.5 and batch size 32/64/128, TPE seeded, no pruning, one thread each: the wall
   time of each whole command (start-up and data loading included). Target: termnist <= 0.7x.
2. The same with median pruning on (both).
3. termnist with 1 vs 2 local workers (no pruning): wall time and trials per minute -- what
   the default ``--workers`` is chosen from.

``python -m benchmarks sweep`` (full MNIST), ``--quick`` (sample, 4 trials x 1 epoch), or
standalone with smaller settings: ``python -m benchmarks.sweep --trials 8 --epochs 2 [--sample]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, REPO, Options, SectionResult, Table, child_env, find_full_mnist

TARGET_RATIO = 0.7
SPACE = ("lr=0.001:0.5:log", "batch_size=32,64,128")


def _termnist(opts: Options, data: Path, trials: int, epochs: int, val: int, pruner: str, workers: int,
              tag: str) -> dict[str, Any]:
    cmd = [PYTHON, "-m", "tui.cli", "sweep", *[a for p in SPACE for a in ("--param", p)],
           "--layers", "128,64", "--optimizer", "momentum", "--momentum", "0.9", "--schedule", "constant",
           "--activation", "relu", "--trials", str(trials), "--epochs", str(epochs), "--pruner", pruner,
           "--sampler", "tpe", "--seed", "0", "--workers", str(workers), "--val-size", str(val),
           "--data", str(data), "--storage", str(opts.workdir / f"{tag}.journal"), "--name", tag, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=child_env(opts), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"termnist sweep failed ({proc.returncode}): {proc.stderr[-800:]}")
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    done = next(ln for ln in lines if ln["event"] == "done")
    return {"wall_s": wall, "n_complete": done["n_complete"], "n_pruned": done["n_pruned"],
            "best_value": done["best_value"], "trials": [ln for ln in lines if ln["event"] == "trial"]}


def _script(opts: Options, data: Path, trials: int, epochs: int, val: int, pruner: str) -> dict[str, Any]:
    cmd = [PYTHON, str(REPO / "benchmarks" / "sweep_torch.py"), "--data", str(data), "--trials", str(trials),
           "--epochs", str(epochs), "--pruner", pruner, "--val-size", str(val)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=child_env(opts), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the Optuna + PyTorch script failed ({proc.returncode}): {proc.stderr[-800:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def measure(opts: Options, trials: int, epochs: int, data: Path, val: int, torch: bool) -> SectionResult:
    res = SectionResult("sweep", "Sweeps")
    rows: dict[str, Any] = {}
    t = Table(f"Sweeps: {trials} trials x {epochs} epochs, 784-128-64-10, lr log + batch size, TPE seed 0 ({data})",
              ["run", "pruner", "workers", "wall s", "complete", "pruned", "best val acc", "trials/min"])
    for pruner in ("none", "median"):
        opts.log(f"sweep: termnist, pruner {pruner}")
        rows[f"termnist-{pruner}"] = r = _termnist(opts, data, trials, epochs, val, pruner, 1, f"bench-{pruner}-1")
        t.add("termnist sweep", pruner, 1, f"{r['wall_s']:.1f}", r["n_complete"], r["n_pruned"],
              f"{r['best_value']:.4f}", f"{trials / r['wall_s'] * 60:.1f}")
        if torch:
            opts.log(f"sweep: Optuna + PyTorch script, pruner {pruner}")
            rows[f"script-{pruner}"] = s = _script(opts, data, trials, epochs, val, pruner)
            t.add("Optuna+PyTorch script", pruner, 1, f"{s['wall_s']:.1f}", s["n_complete"], s["n_pruned"],
                  f"{s['best_value']:.4f}", f"{trials / s['wall_s'] * 60:.1f}")
    opts.log("sweep: termnist, 2 workers, no pruning")
    rows["termnist-none-2"] = r2 = _termnist(opts, data, trials, epochs, val, "none", 2, "bench-none-2")
    t.add("termnist sweep", "none", 2, f"{r2['wall_s']:.1f}", r2["n_complete"], r2["n_pruned"],
          f"{r2['best_value']:.4f}", f"{trials / r2['wall_s'] * 60:.1f}")
    one = rows["termnist-none"]["wall_s"]
    t.notes.append(f"2 workers vs 1: {one / r2['wall_s']:.2f}x the throughput (wall {r2['wall_s']:.1f}s vs {one:.1f}s)")
    t.notes.append("wall time of each whole command: interpreter start, imports, data loading, every trial's test"
                   " evaluation and (termnist) the run store's records included; one BLAS/torch thread per trial")
    res.tables.append(t)
    if torch:
        for pruner in ("none", "median"):
            ratio = rows[f"termnist-{pruner}"]["wall_s"] / rows[f"script-{pruner}"]["wall_s"]
            rows[f"ratio-{pruner}"] = ratio
            res.target(f"termnist sweep wall / Optuna+PyTorch script (pruner {pruner})", f"{ratio:.2f}x",
                       f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO if pruner == "none" else None,
                       "" if pruner == "none" else "reported; the target is for the unpruned sweep")
    res.data = {"trials": trials, "epochs": epochs, "data": str(data), "val_size": val, "runs": rows}
    return res


def run(opts: Options) -> SectionResult:
    if opts.quick or opts.data_dir is None:
        from engine.datasets import SAMPLE_DIR

        return measure(opts, 4 if opts.quick else 16, 1 if opts.quick else 3, Path(SAMPLE_DIR), 2000, opts.torch
                       and _has_torch())
    return measure(opts, 16, 3, opts.data_dir, 10000, opts.torch and _has_torch())


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--sample", action="store_true", help="the bundled sample (val 2,000)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    opts = Options()
    try:
        if args.sample:
            from engine.datasets import SAMPLE_DIR

            data, val = Path(SAMPLE_DIR), 2000
        else:
            found = find_full_mnist(args.data)
            if found is None:
                print("full MNIST not found: pass --data DIR or --sample", file=sys.stderr)
                return 2
            data, val = found, 10000
        res = measure(opts, args.trials, args.epochs, data, val, not args.no_torch and _has_torch())
    finally:
        opts.cleanup()
    for table in res.tables:
        print(table.render())
    for tg in res.targets:
        print(f"{tg.name}: {tg.measured} (goal {tg.target}) {tg.verdict} {tg.reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_json(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
