"""The PyTorch CPU reference, as a worker process driven over stdin/stdout (JSON lines).

``python -m benchmarks.torch_ref --data DIR`` (or ``--sample``) loads MNIST once into an
in-memory float32 tensor scaled to [0, 1], then answers requests:

  {"op": "setup", "key": "a", "sizes": [784, 128, 64, 10], "activation": "relu",
   "loss": "cross-entropy", "optimizer": "momentum", "lr": 0.05, "momentum": 0.9,
   "batch_size": 64, "init": "he" | "xavier" | "normal", "init_std": 1.0, "seed": 0}
      -> {"ok": true, "torch": "2.13.0+cpu"}                      a model named "a"
  {"op": "epoch", "key": "a", "threads": 1}                       torch.set_num_threads(1), then
      -> {"ok": true, "seconds": 0.91, "loss": 0.23}              one epoch, randperm batches
  {"op": "drop", "key": "a"}
  {"op": "quit"}

The model mirrors engine.mlp: Linear layers with the engine's init scheme (He normal for
relu, Xavier uniform for sigmoid/tanh, or N(0, init_std^2)) and zero biases; softmax
cross-entropy (batch mean) or Nielsen's quadratic cost on sigmoid outputs; torch.optim.SGD
with the same (PyTorch-style) momentum. torch runs in its own process so that its OpenMP/MKL
threads never share a process with NumPy's OpenBLAS, and the parent never imports torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


def _build(req, torch, nn):
    sizes = req["sizes"]
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
           "leaky_relu": lambda: nn.LeakyReLU(0.01)}[req["activation"]]
    layers = []
    gen = torch.Generator().manual_seed(int(req.get("seed", 0)))
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            init = req["init"]
            if init == "normal":
                lin.weight.normal_(0.0, float(req.get("init_std") or 0.01), generator=gen)
            elif init == "xavier":
                limit = math.sqrt(6.0 / (n_in + n_out))
                lin.weight.uniform_(-limit, limit, generator=gen)
            else:  # he
                lin.weight.normal_(0.0, math.sqrt(2.0 / n_in), generator=gen)
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", help="MNIST directory (default: the bundled sample)")
    args = p.parse_args(argv)

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    from engine.datasets import SAMPLE_DIR, load_dataset

    ds = load_dataset("mnist", data_dir=args.data or SAMPLE_DIR)
    x_all = torch.from_numpy((ds.x_train.reshape(len(ds.x_train), -1) / np.float32(ds.max_value))
                             .astype(np.float32))
    y_all = torch.from_numpy(ds.y_train.astype(np.int64))
    n = len(y_all)
    models: dict = {}

    def reply(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"ok": True, "ready": True, "torch": torch.__version__, "n_train": n})
    for line in sys.stdin:
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "quit":
                break
            if op == "setup":
                torch.manual_seed(int(req.get("seed", 0)))
                model = _build(req, torch, nn)
                momentum = float(req.get("momentum", 0.0)) if req["optimizer"] in ("momentum", "nesterov") else 0.0
                opt = torch.optim.SGD(model.parameters(), lr=float(req["lr"]), momentum=momentum,
                                      nesterov=req["optimizer"] == "nesterov")
                models[req["key"]] = dict(model=model, opt=opt, bs=int(req["batch_size"]), loss=req["loss"],
                                          gen=torch.Generator().manual_seed(int(req.get("seed", 0))))
                reply({"ok": True, "torch": torch.__version__})
            elif op == "drop":
                models.pop(req["key"], None)
                reply({"ok": True})
            elif op == "epoch":
                state = models[req["key"]]
                torch.set_num_threads(int(req["threads"]))
                model, opt, bs, gen = state["model"], state["opt"], state["bs"], state["gen"]
                mse = state["loss"] == "mse"
                t0 = time.perf_counter()
                order = torch.randperm(n, generator=gen)
                total = torch.zeros(())
                for start in range(0, n, bs):
                    idx = order[start:start + bs]
                    xb, yb = x_all[idx], y_all[idx]
                    out = model(xb)
                    if mse:
                        target = F.one_hot(yb, out.shape[1]).to(out.dtype)
                        loss = 0.5 * (torch.sigmoid(out) - target).pow(2).sum(dim=1).mean()
                    else:
                        loss = F.cross_entropy(out, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach()
                seconds = time.perf_counter() - t0
                steps = -(-n // bs)
                reply({"ok": True, "seconds": seconds, "loss": float(total) / steps,
                       "threads": torch.get_num_threads()})
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
