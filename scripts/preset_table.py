"""Train every preset on the full MNIST (and the 8x8 digits) and print the README's table.

    python scripts/preset_table.py [--data ../shared/data/mnist] [--only default,nielsen]

Each row: preset, network, epochs, training seconds (sum of epoch times, excluding
evaluation), wall seconds, test accuracy, and the figure its tutorial reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from threadpoolctl import threadpool_limits  # noqa: E402

from engine import events as ev  # noqa: E402
from engine.datasets import load_dataset  # noqa: E402
from engine.errors import TermnistError  # noqa: E402
from engine.presets import PRESETS  # noqa: E402
from engine.training import TrainingSession  # noqa: E402


def run_preset(name: str, data_dir: str | None) -> dict:
    preset = PRESETS[name]
    cfg = preset.config
    ds = load_dataset(cfg.dataset, data_dir=data_dir if cfg.dataset == "mnist" else None)
    t0 = time.perf_counter()
    train_s = 0.0
    finished = None
    for e in TrainingSession(cfg, ds).run():
        if isinstance(e, ev.EpochEnded):
            train_s += e.seconds
        elif isinstance(e, ev.Finished):
            finished = e
    assert finished is not None
    sizes = "-".join(str(s) for s in (ds.n_features, *cfg.hidden, ds.n_classes))
    return {"preset": name, "net": f"{sizes} {cfg.activation} {cfg.loss}", "epochs": finished.epochs_done,
            "train_s": train_s, "wall_s": time.perf_counter() - t0, "test_acc": finished.test_acc,
            "target": preset.target, "sample": ds.is_sample}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--only", default=",".join(PRESETS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print("| preset | network | epochs | train s | wall s | test accuracy | tutorial / target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with threadpool_limits(args.threads, user_api="blas"):
        for name in args.only.split(","):
            try:
                r = run_preset(name, args.data)
            except TermnistError as exc:
                print(f"| {name} | skipped: {exc} | | | | | |", flush=True)
                continue
            ok = "met" if r["test_acc"] >= r["target"] else "NOT met"
            print(f"| `{r['preset']}` | {r['net']} | {r['epochs']} | {r['train_s']:.1f} | {r['wall_s']:.1f}"
                  f" | {r['test_acc']:.2%} | {r['target']:.1%} ({ok}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
