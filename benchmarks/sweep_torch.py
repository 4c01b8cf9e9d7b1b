"""The reference of ``python -m benchmarks sweep``: the same sweep as a plain script, with
Optuna and PyTorch CPU, the way one would write it by hand.

    python benchmarks/sweep_torch.py --data DIR --trials 16 --epochs 3 [--pruner median] [--val-size N]

Same search space (lr log-uniform 0.001..0.5, batch size 32/64/128), same sampler settings
(TPE seeded, multivariate, constant liar, 10 start-up trials), same network 784-128-64-10
(ReLU, He init, cross-entropy, SGD momentum 0.9 PyTorch-style, constant lr), same split (the
last ``--val-size`` training images validate), test accuracy at the end of each trial, one
thread (``torch.set_num_threads(1)``). Data: the four IDX files read with gzip + NumPy.
Prints one JSON line: {"seconds", "n_complete", "n_pruned", "best_value", "trials": [...]}.
Independent of termnist on purpose (imports nothing from it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(f"{stem} in {directory}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--pruner", default="none", choices=("none", "median"))
    p.add_argument("--val-size", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()

    import optuna
    import torch
    from torch import nn

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = Path(args.data)
    x = read_idx(find(d, "train-images-idx3-ubyte"))
    y = read_idx(find(d, "train-labels-idx1-ubyte"))
    xt = read_idx(find(d, "t10k-images-idx3-ubyte"))
    yt = read_idx(find(d, "t10k-labels-idx1-ubyte"))
    n_val = args.val_size
    to_x = lambda a: torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / 255.0)  # noqa: E731
    x_tr, y_tr = to_x(x[:-n_val]), torch.from_numpy(y[:-n_val].astype(np.int64))
    x_val, y_val = to_x(x[-n_val:]), torch.from_numpy(y[-n_val:].astype(np.int64))
    x_te, y_te = to_x(xt), torch.from_numpy(yt.astype(np.int64))

    def accuracy(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> float:
        with torch.no_grad():
            correct = 0
            for i in range(0, len(xs), 2000):
                correct += int((model(xs[i:i + 2000]).argmax(1) == ys[i:i + 2000]).sum())
        return correct / len(xs)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 0.001, 0.5, log=True)
        bs = trial.suggest_categorical("batch_size", [32, 64, 128])
        torch.manual_seed(args.seed)
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(args.seed)
        acc = 0.0
        for epoch in range(1, args.epochs + 1):
            order = torch.randperm(len(x_tr), generator=gen)
            for i in range(0, len(order), bs):
                idx = order[i:i + bs]
                opt.zero_grad()
                loss = loss_fn(model(x_tr[idx]), y_tr[idx])
                loss.backward()
                opt.step()
            acc = accuracy(model, x_val, y_val)
            if not np.isfinite(acc):
                raise optuna.TrialPruned()
            if epoch < args.epochs:
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        trial.set_user_attr("test_acc", accuracy(model, x_te, y_te))
        return acc

    sampler = optuna.samplers.TPESampler(seed=args.seed, multivariate=True, constant_liar=True, n_startup_trials=10)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if args.pruner == "median"
              else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=args.trials)
    states = [t.state.name for t in study.trials]
    print(json.dumps({"seconds": time.perf_counter() - t0, "n_complete": states.count("COMPLETE"),
                      "n_pruned": states.count("PRUNED"), "best_value": study.best_value,
                      "trials": [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value}
                                 for t in study.trials]}))


if __name__ == "__main__":
    main()
