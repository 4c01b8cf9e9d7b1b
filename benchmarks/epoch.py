"""Epoch speed: the engine (through TrainingSession, and a raw loop) vs PyTorch vs the GEMM bound.

For each configuration and each BLAS thread count (1, 2) the engine session, the raw
loop and the PyTorch worker take turns epoch by epoch (engine, raw, torch; the order
rotates each round) after one warm-up epoch each, so load from other processes hits all
three alike; each figure is the median of its epochs. The lower bound is
3 x forward FLOPs per epoch / the sgemm rate measured just before, at the configuration's
own GEMM shapes (forward x@W, dW = x.T@delta, dx = delta@W.T of every layer, at its batch
size) with the same thread count.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import (
    PYTHON, REPO, CpuMeter, Options, SectionResult, Table, blas_threads, data_label, fmt_ratio,
    fmt_s, load_data, median, pause_between,
)


@dataclass(frozen=True)
class EpochConfig:
    key: str
    label: str
    overrides: dict


def configs(quick: bool) -> list[EpochConfig]:
    """The issue's four configurations (--quick: the first only). Nielsen's is the `nielsen`
    preset's network, optimizer and init, without its validation split."""
    base = dict(activation="relu", loss="cross-entropy", optimizer="momentum", lr=0.05, momentum=0.9,
                init="auto", schedule="constant", weight_decay=0.0, augment="none")
    out = [
        EpochConfig("128-64/b64", "784-128-64-10 relu CE momentum, batch 64",
                    {**base, "hidden": (128, 64), "batch_size": 64}),
        EpochConfig("128-64/b256", "784-128-64-10 relu CE momentum, batch 256",
                    {**base, "hidden": (128, 64), "batch_size": 256}),
        EpochConfig("nielsen 30/b10", "784-30-10 sigmoid MSE sgd lr 3, N(0,1) init, batch 10",
                    dict(hidden=(30,), activation="sigmoid", loss="mse", optimizer="sgd", init="normal",
                         init_std=1.0, lr=3.0, batch_size=10, schedule="constant", weight_decay=0.0,
                         augment="none")),
        EpochConfig("512-256/b128", "784-512-256-10 relu CE momentum, batch 128",
                    {**base, "hidden": (512, 256), "batch_size": 128}),
    ]
    return out[:1] if quick else out


def make_config(ec: EpochConfig, epochs: int):
    from engine.training import TrainConfig

    return TrainConfig(val_size=0, epochs=epochs, seed=0, **ec.overrides)


# ------------------------------------------------------------------------------ GEMM bound
def _time_call(fn, min_block: float = 0.02, blocks: int = 7) -> float:
    """Best seconds per call over ``blocks`` blocks of enough calls to last ``min_block``."""
    for _ in range(2):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(min_block / one))
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return min(times)


def gemm_rate(sizes: tuple[int, ...], batch: int, threads: int, quick: bool = False) -> dict[str, float]:
    """sgemm FLOP/s over the training GEMMs of one step (3 per layer, exact layouts), and the
    seconds of the GEMMs the engine actually runs per step (no dx for the first layer)."""
    rng = np.random.default_rng(0)
    flops = 0.0
    seconds = 0.0
    engine_seconds = 0.0
    with blas_threads(threads):
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            x = rng.random((batch, n_in), dtype=np.float32)
            w = rng.random((n_in, n_out), dtype=np.float32)
            z = np.empty((batch, n_out), np.float32)
            d = rng.random((batch, n_out), dtype=np.float32)
            dw = np.empty((n_in, n_out), np.float32)
            dx = np.empty((batch, n_in), np.float32)
            kw: dict[str, Any] = dict(min_block=0.005, blocks=3) if quick else {}
            # (the lambdas are timed here and then dropped: defaults bind this layer's arrays)
            t_fwd = _time_call(lambda x=x, w=w, z=z: np.matmul(x, w, out=z), **kw)
            t_dw = _time_call(lambda x=x, d=d, dw=dw: np.matmul(x.T, d, out=dw), **kw)
            t_dx = _time_call(lambda d=d, w=w, dx=dx: np.matmul(d, w.T, out=dx), **kw)
            seconds += t_fwd + t_dw + t_dx
            engine_seconds += t_fwd + t_dw + (t_dx if i > 0 else 0.0)
            flops += 3 * 2.0 * batch * n_in * n_out
    return {"flops_per_step": flops, "gemm_seconds_per_step": seconds, "rate": flops / seconds,
            "engine_gemm_seconds_per_step": engine_seconds}


def forward_flops(sizes: tuple[int, ...]) -> float:
    """Multiply-adds x 2 of one image's forward pass (biases and activations ignored)."""
    return float(sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:])))


# ------------------------------------------------------------------------------ the runners
class SessionRunner:
    """The engine as users run it: TrainingSession.run(), one epoch per call (wall clock)."""

    def __init__(self, cfg, ds) -> None:
        from engine.training import TrainingSession

        self.session = TrainingSession(cfg, ds, progress_every=20)
        self._gen = self.session.run()
        self.event_seconds: list[float] = []

    def epoch(self) -> float:
        from engine import events as ev

        t0 = time.perf_counter()
        for event in self._gen:
            if isinstance(event, ev.EpochEnded):
                self.event_seconds.append(event.seconds)
                return time.perf_counter() - t0
            if isinstance(event, (ev.Failed, ev.Diverged)):
                raise RuntimeError(f"engine run failed: {event}")
        raise RuntimeError("the session ended before the expected epoch")

    def close(self) -> None:
        self.session.stop()
        getattr(self._gen, "close", lambda: None)()    # typed an Iterator; it is a generator


class RawRunner:
    """The engine's math alone: loss_and_grads + optimizer.step on pre-scaled float32 data."""

    _features: dict[int, np.ndarray] = {}

    def __init__(self, cfg, ds) -> None:
        from engine.mlp import MLP
        from engine.optim import make_optimizer

        key = id(ds)
        if key not in self._features:
            flat = ds.x_train.reshape(len(ds.x_train), -1)
            self._features[key] = (flat / np.float32(ds.max_value)).astype(np.float32)
        self.x = self._features[key]
        self.y = ds.y_train.astype(np.intp)
        self.rng = np.random.default_rng(cfg.seed)
        self.model = MLP((ds.n_features, *cfg.hidden, ds.n_classes), activation=cfg.activation,
                         loss=cfg.loss, init=cfg.init,
                         init_std=cfg.init_std if cfg.init == "normal" else None, rng=self.rng)
        self.opt = make_optimizer(cfg.optimizer, self.model.params, lr=cfg.lr, momentum=cfg.momentum)
        self.bs = cfg.batch_size
        self.lr = cfg.lr
        self.xb = np.empty((self.bs, self.x.shape[1]), np.float32)
        self.yb = np.empty(self.bs, np.intp)

    def epoch(self) -> float:
        n, bs = len(self.y), self.bs
        t0 = time.perf_counter()
        order = self.rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            m = len(idx)
            np.take(self.x, idx, axis=0, out=self.xb[:m])
            np.take(self.y, idx, out=self.yb[:m])
            self.model.loss_and_grads(self.xb[:m], self.yb[:m])
            self.opt.step(self.model.grads, lr=self.lr)
        return time.perf_counter() - t0

    def close(self) -> None:
        pass


class TorchWorker:
    """The PyTorch reference in a subprocess (see benchmarks.torch_ref)."""

    def __init__(self, opts: Options) -> None:
        cmd = [PYTHON, "-m", "benchmarks.torch_ref"]
        if opts.data_dir is not None:
            cmd += ["--data", str(opts.data_dir)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=REPO, bufsize=1)
        hello = self._read()
        self.version = hello.get("torch")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torch worker exited")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"torch worker: {reply.get('error')}")
        return reply

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def setup(self, key: str, cfg, sizes: tuple[int, ...]) -> None:
        from engine.init import resolve_init

        self.request(op="setup", key=key, sizes=list(sizes), activation=cfg.activation, loss=cfg.loss,
                     optimizer=cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, batch_size=cfg.batch_size,
                     init=resolve_init(cfg.init, cfg.activation), init_std=cfg.init_std, seed=cfg.seed)

    def epoch(self, key: str, threads: int) -> float:
        return float(self.request(op="epoch", key=key, threads=threads)["seconds"])

    def drop(self, key: str) -> None:
        self.request(op="drop", key=key)

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


class _TorchAtThreads:
    """One PyTorch model in the worker, trained with ``threads`` threads."""

    def __init__(self, worker: TorchWorker, key: str, cfg, sizes, threads: int) -> None:
        self.worker, self.key, self.threads = worker, key, threads
        worker.setup(key, cfg, sizes)

    def epoch(self) -> float:
        return self.worker.epoch(self.key, self.threads)

    def close(self) -> None:
        self.worker.drop(self.key)


class _AtThreads:
    """Runs an engine runner's epochs under a BLAS thread limit (set per epoch)."""

    def __init__(self, runner: Any, threads: int) -> None:
        self.runner, self.threads = runner, threads

    def epoch(self) -> float:
        with blas_threads(self.threads):
            return self.runner.epoch()

    def close(self) -> None:
        with blas_threads(self.threads):
            self.runner.close()


# ------------------------------------------------------------------------------ the section
def measure_config(opts: Options, ds, ec: EpochConfig, thread_counts: tuple[int, ...],
                   torch: TorchWorker | None, warmup: int, rounds: int, budget: float = 120.0
                   ) -> list[dict[str, Any]]:
    """Every runner of one configuration -- engine, raw loop and torch at each thread count --
    takes one epoch in turn (the order rotates each round), so they share the same load."""
    cfg = make_config(ec, epochs=warmup + rounds)
    sizes = (ds.n_features, *cfg.hidden, ds.n_classes)
    n = len(ds.y_train)
    steps = -(-n // cfg.batch_size)
    gemm = {t: gemm_rate(sizes, cfg.batch_size, t, quick=opts.quick) for t in thread_counts}
    runners: dict[tuple[str, int], Any] = {}
    try:
        for t in thread_counts:
            with blas_threads(t):
                runners[("engine", t)] = _AtThreads(SessionRunner(cfg, ds), t)
                runners[("raw", t)] = _AtThreads(RawRunner(cfg, ds), t)
            if torch is not None:
                runners[("torch", t)] = _TorchAtThreads(torch, f"{ec.key}/{t}", cfg, sizes, t)
        keys = list(runners)
        times: dict[tuple[str, int], list[float]] = {k: [] for k in keys}
        other: dict[tuple[str, int], list[float]] = {k: [] for k in keys}
        pids = [torch.proc.pid] if torch is not None else []
        t_start = time.perf_counter()
        for r in range(warmup + rounds):
            if r >= warmup + 2 and time.perf_counter() - t_start > budget:
                break          # a heavily loaded machine: keep the section's runtime bounded
            order = keys[r % len(keys):] + keys[: r % len(keys)]
            for k in order:
                pause_between(0.1 if not opts.quick else 0.0)
                with CpuMeter(pids) as meter:
                    sec = runners[k].epoch()
                if r >= warmup:
                    times[k].append(sec)
                    if meter.other_cpus is not None:
                        other[k].append(meter.other_cpus)
    finally:
        for runner in runners.values():
            try:
                runner.close()
            except Exception:  # noqa: BLE001 - cleanup only
                pass
    rows = []
    for t in thread_counts:
        eng, raw = median(times[("engine", t)]), median(times[("raw", t)])
        tor_times = times.get(("torch", t), [])
        tor = median(tor_times) if tor_times else None
        bound = 3 * forward_flops(sizes) * n / gemm[t]["rate"]
        floor = gemm[t]["engine_gemm_seconds_per_step"] * n / cfg.batch_size
        session = runners[("engine", t)].runner
        rows.append({
            "config": ec.key, "label": ec.label, "threads": t, "batch_size": cfg.batch_size,
            "n_train": n, "steps": steps, "epochs_measured": len(times[("engine", t)]), "warmup_epochs": warmup,
            "engine_s": eng, "engine_best_s": min(times[("engine", t)]), "engine_epochs_s": times[("engine", t)],
            "engine_event_seconds": session.event_seconds[warmup:],
            "raw_s": raw, "raw_epochs_s": times[("raw", t)],
            "torch_s": tor, "torch_best_s": min(tor_times) if tor_times else None, "torch_epochs_s": tor_times,
            "other_cpus": median(other[("engine", t)]) if other[("engine", t)] else None,
            "other_cpus_torch": median(other[("torch", t)]) if other.get(("torch", t)) else None,
            "gemm_rate_gflops": gemm[t]["rate"] / 1e9, "gemm_seconds_per_step": gemm[t]["gemm_seconds_per_step"],
            "forward_flops_per_image": forward_flops(sizes),
            "bound_s": bound, "floor_s": floor,
            "engine_vs_torch": eng / tor if tor else None,
            "engine_vs_bound": eng / bound,
            "engine_vs_floor": eng / floor,
            "engine_vs_raw": eng / raw,
        })
    return rows


def run(opts: Options) -> SectionResult:
    res = SectionResult("epoch", "Epoch speed")
    ds = load_data(opts)
    warmup, rounds = (1, 1) if opts.quick else (1, 4)
    thread_counts = (1,) if opts.quick else (1, 2)
    torch_note = ""
    worker: TorchWorker | None = None
    if opts.quick:
        torch_note = "PyTorch skipped in --quick"
    elif not opts.torch:
        torch_note = "PyTorch skipped (--no-torch)"
    elif importlib.util.find_spec("torch") is None:
        torch_note = "PyTorch not installed: `pip install torch==2.13.0` (CPU build) for the reference column"
    else:
        try:
            worker = TorchWorker(opts)
        except Exception as exc:  # noqa: BLE001
            torch_note = f"PyTorch worker failed to start: {exc}"
            worker = None
    rows = []
    try:
        for ec in configs(opts.quick):
            opts.log(f"epoch: {ec.key}, BLAS/torch threads {thread_counts}")
            rows += measure_config(opts, ds, ec, thread_counts, worker, warmup, rounds)
    finally:
        if worker is not None:
            worker.close()
        RawRunner._features.clear()      # the float32 copy of the training set (188 MB on MNIST)
    res.data["rows"] = rows
    res.data["torch_version"] = worker.version if worker else None
    res.data["torch_note"] = torch_note

    n = len(ds.y_train)
    t = Table(f"Epoch speed: seconds per epoch of {n:,} images, {data_label(opts)}",
              ["config", "thr", "engine s", "raw loop s", "torch s", "bound s", "floor s", "GEMM GF/s",
               "eng/torch", "eng/bound", "eng/floor", "eng/raw", "other CPU"])
    for r in rows:
        t.add(r["config"], r["threads"], fmt_s(r["engine_s"]), fmt_s(r["raw_s"]),
              fmt_s(r["torch_s"]) if r["torch_s"] else "-", fmt_s(r["bound_s"]), fmt_s(r["floor_s"]),
              f"{r['gemm_rate_gflops']:.0f}", fmt_ratio(r["engine_vs_torch"]),
              fmt_ratio(r["engine_vs_bound"]), fmt_ratio(r["engine_vs_floor"]), fmt_ratio(r["engine_vs_raw"]),
              f"{r['other_cpus']:.2f}" if r["other_cpus"] is not None else "-")
    t.notes.append(f"median of {rounds} epochs after {warmup} warm-up; engine = TrainingSession.run() wall "
                   "time per epoch (what users run), raw loop = MLP.loss_and_grads + SGD.step on "
                   "pre-scaled float32, torch = same net/init/optimizer in a worker process, "
                   "torch.set_num_threads = BLAS threads; per configuration the engine, raw and torch epochs at 1 and "
                   "2 threads all take turns (rotating order), so every ratio is within the same load")
    t.notes.append("bound = 3 x forward FLOPs x images / sgemm rate at the config's GEMM shapes "
                   "(best of 7 timing blocks, measured just before, same threads); floor = measured time "
                   "of exactly the GEMMs the engine runs (no dx for layer 1), so eng/bound < 1 is possible")
    t.notes.append("other CPU = CPUs' worth of time other processes used during the engine's epochs "
                   "(median; /proc/stat; 2 cores here): above ~0.3, 2-thread figures are contended")
    if torch_note:
        t.notes.append(torch_note)
    for ec in configs(opts.quick):
        t.notes.append(f"{ec.key}: {ec.label}")
    res.tables.append(t)

    # targets
    for r in rows:
        where = f"{r['config']}, {r['threads']} thread(s)"
        if r["torch_s"]:
            res.target(f"engine <= 1.0x PyTorch: {where}", fmt_ratio(r["engine_vs_torch"]), "<= 1.00x",
                       r["engine_vs_torch"] <= 1.0,
                       "" if r["engine_vs_torch"] <= 1.0 else
                       f"engine {fmt_s(r['engine_s'])} s vs torch {fmt_s(r['torch_s'])} s{_load_note(r)}")
        else:
            res.target(f"engine <= 1.0x PyTorch: {where}", "-", "<= 1.00x", None, torch_note)
        if r["config"].startswith(("128-64", "512-256")):
            ok = r["engine_vs_bound"] <= 3.0
            res.target(f"engine within 3x of GEMM bound: {where}", fmt_ratio(r["engine_vs_bound"]), "<= 3.00x", ok,
                       "" if ok else f"engine {fmt_s(r['engine_s'])} s vs bound {fmt_s(r['bound_s'])} s{_load_note(r)}")

    threads_table, advice = blas_advice(rows)
    if threads_table is not None:
        res.tables.append(threads_table)
    res.data["blas_advice"] = advice
    return res


def _load_note(r: dict[str, Any]) -> str:
    oc = r.get("other_cpus")
    if oc is not None and oc >= 0.3:
        return f"; other processes used {oc:.1f} CPU meanwhile (best epoch {fmt_s(r['engine_best_s'])} s)"
    return ""


def blas_advice(rows: list[dict[str, Any]]) -> tuple[Table | None, dict[str, Any]]:
    """1 vs 2 BLAS threads per configuration, from the figures just measured."""
    by = {(r["config"], r["threads"]): r for r in rows}
    configs_ = sorted({r["config"] for r in rows}, key=[r["config"] for r in rows].index)
    if not any((c, 2) in by for c in configs_):
        return None, {"recommendation": "not measured (needs 1 and 2 threads)"}
    t = Table("BLAS threads: engine seconds per epoch, 1 vs 2 OpenBLAS threads (same run)",
              ["config", "1 thr median", "2 thr median", "2 thr best", "speed-up median", "speed-up best",
               "2 thr spread", "other CPU 1/2 thr"])
    speedups, best_speedups = {}, {}
    for c in configs_:
        one, two = by.get((c, 1)), by.get((c, 2))
        if not one or not two:
            continue
        sp = one["engine_s"] / two["engine_s"]
        speedups[c] = sp
        best_speedups[c] = one["engine_best_s"] / two["engine_best_s"]
        spread = max(two["engine_epochs_s"]) / min(two["engine_epochs_s"])
        oc = "/".join(f"{x['other_cpus']:.2f}" if x["other_cpus"] is not None else "-" for x in (one, two))
        t.add(c, fmt_s(one["engine_s"]), fmt_s(two["engine_s"]), fmt_s(two["engine_best_s"]), fmt_ratio(sp),
              fmt_ratio(best_speedups[c]), fmt_ratio(spread), oc)
    calm = {c for c in speedups
            if all((by[(c, k)]["other_cpus"] or 0.0) < 0.3 for k in (1, 2))}
    helped = [c for c in speedups if best_speedups[c] >= 1.15]
    hurt = [c for c in speedups if speedups[c] < 0.9]
    parts = []
    if helped:
        parts.append("2 threads were faster for "
                     + ", ".join(f"{c} ({best_speedups[c]:.2f}x best epoch)" for c in helped))
    flat = [c for c in speedups if c not in helped and c not in hurt]
    if flat:
        parts.append("no gain for " + ", ".join(flat))
    if hurt:
        parts.append("slower for " + ", ".join(
            f"{c} ({speedups[c]:.2f}x median{'' if c in calm else ', other processes busy'})" for c in hurt))
    if helped and not hurt and len(calm) == len(speedups) and len(helped) == len(speedups):
        rec = ("2 threads helped every configuration on a quiet machine: a default of 2 for headless "
               "`termnist train` is defensible; keep 1 in the app (its UI thread needs the other core)")
    else:
        gain = max(best_speedups.values())
        busy_losses = [speedups[c] for c in hurt if c not in calm]
        rec = (f"keep 1 BLAS thread as the default for `termnist train` and in the app: 2 threads gain at "
               f"most {gain:.2f}x here")
        if busy_losses:
            rec += f" and fell to {min(busy_losses):.2f}x where other processes wanted a core"
        rec += "; `--threads 2` stays available for big batches on an idle machine"
    advice_text = "; ".join(parts) + ". " + rec if parts else rec
    t.notes.append("speed-up > 1 means 2 threads are faster. " + advice_text)
    t.notes.append("best = fastest single epoch (what an idle machine gives); spread = slowest / "
                   "fastest 2-thread epoch")
    return t, {"speedup_2_vs_1": speedups, "speedup_2_vs_1_best": best_speedups, "recommendation": rec,
               "summary": advice_text, "quiet_configs": sorted(calm)}
