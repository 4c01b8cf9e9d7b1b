"""python -m benchmarks.app_pairs [PAIRS] [--data DIR]: the app's cost alone, quickly.

Only the first measurement of ``python -m benchmarks app``: the same 3-epoch run headless and
in the app under the Pilot at 120x40, alternately, PAIRS times after a warm-up pair; prints
each pair and the ratio of the medians. Run it in two checkouts one after the other (and
again in the other order) to compare two versions of the app on a noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.app import headless_run, pilot_run, short_config


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.app_pairs", description=__doc__)
    p.add_argument("pairs", nargs="?", type=int, default=3)
    p.add_argument("--data", default="../shared/data/mnist", help="full MNIST directory")
    args = p.parse_args()
    from engine.datasets import load_dataset

    ds = load_dataset("mnist", data_dir=args.data)
    cfg = short_config(False)
    work = Path(tempfile.mkdtemp(prefix="termnist-pairs-"))
    pairs: list[tuple[float, float]] = []
    for i in range(args.pairs + 1):
        h = headless_run(cfg, ds)
        a = pilot_run(cfg, ds, (120, 40), work)["seconds"]
        if i:                                   # the first pair warms up (imports, Textual)
            pairs.append((h, a))
            print(f"pair {i}: headless {h:.2f} s, app {a:.2f} s, {a / h:.3f}x", flush=True)
    h_med = statistics.median(h for h, _ in pairs)
    a_med = statistics.median(a for _, a in pairs)
    print(f"app / headless: {a_med / h_med:.3f}x (medians {a_med:.2f} / {h_med:.2f} s of {len(pairs)} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
