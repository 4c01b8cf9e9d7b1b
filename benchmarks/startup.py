"""Memory and start-up: MNIST load time, `termnist --help`, launch to first screen, peak RSS.

Each figure alternates with its reference in the same loop (medians):
  load_dataset (gzipped IDX)   vs  gzip-decompressing the same four files
  termnist --help              vs  `python -c pass` and `python -c "import numpy"`
  first screen of termnist     vs  first screen of a minimal Textual app (benchmarks._hello_app)
  peak RSS of `termnist train` vs  a process that only loads the dataset
Peak RSS is each child's VmHWM (/proc), sampled while it runs (see common.read_hwm: wait4's
ru_maxrss would include this process's own pages, copied at fork).
"""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON, REPO, Options, PeakSampler, SectionResult, Table, child_env, data_label, fmt_bytes, fmt_ms,
    fmt_ratio, median,
)
from benchmarks.terminal import PtyProgram

RSS_TARGET = 400 * 1024**2


def _data_dir(opts: Options) -> str:
    from engine.datasets import SAMPLE_DIR

    return str(opts.data_dir or SAMPLE_DIR)


def run_child(argv: list[str], opts: Options, timeout: float = 600, sample_rss: bool = False
              ) -> tuple[float, int, int | None, str]:
    """(seconds, exit status, peak RSS bytes, stderr tail) of one child process.

    Peak RSS: VmHWM polled every 20 ms (Popen returns after the exec, so every sample is of
    the new program), not wait4's ru_maxrss, which counts this (large) process's pages too.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
                            env=child_env(opts))
    sampler = PeakSampler(proc.pid) if sample_rss else None
    assert proc.stderr is not None
    err = proc.stderr.read()          # until the child closes it (exits)
    if sampler is not None:
        sampler.sample()
    proc.wait(timeout=timeout)
    seconds = time.perf_counter() - t0
    peak = sampler.stop() if sampler is not None else None
    return seconds, proc.returncode, peak, err.decode(errors="replace")[-300:]


def termnist_cmd() -> list[str]:
    script = Path(PYTHON).with_name("termnist")
    return [str(script)] if script.exists() else [PYTHON, "-m", "tui.cli"]


# ------------------------------------------------------------------------------ pieces
def dataset_load(opts: Options, reps: int) -> dict[str, Any]:
    from engine.datasets import find_idx_files, load_dataset

    d = _data_dir(opts)
    files = list(find_idx_files(d).values())
    load, gz = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        load_dataset("mnist", data_dir=d)
        load.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for f in files:
            data = Path(f).read_bytes()
            if data[:2] == b"\x1f\x8b":
                gzip.decompress(data)
        gz.append(time.perf_counter() - t0)
    return {"load_s": median(load), "gunzip_s": median(gz), "load_runs": load, "gunzip_runs": gz}


def help_time(opts: Options, reps: int) -> dict[str, Any]:
    cmds = {"termnist --help": termnist_cmd() + ["--help"], "python -c pass": [PYTHON, "-c", "pass"],
            "python -c 'import numpy'": [PYTHON, "-c", "import numpy"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(reps + 1):
        for k, argv in cmds.items():
            s, status, _, err = run_child(argv, opts)
            if status != 0:
                raise RuntimeError(f"{k} failed ({status}): {err}")
            times[k].append(s)
    return {k: {"median_s": median(v[1:]), "runs": v[1:]} for k, v in times.items()}


FIRST_FRAME = ("F3: next panel", "Help")   # the panel bar (first row) and the footer (last row)


def first_screen(opts: Options, reps: int) -> dict[str, Any]:
    from benchmarks.app import wait_ready

    env = child_env(opts, TERMNIST_CONFIG_DIR=str(opts.workdir / "first-screen" / "config"))
    app_argv = termnist_cmd() + ["--data", _data_dir(opts)]
    hello_argv = [PYTHON, "-m", "benchmarks._hello_app"]
    frames, ready, hello = [], [], []
    for _ in range(reps):
        with PtyProgram(app_argv, 80, 24, env, cwd=REPO) as p:
            hits = [h for m in FIRST_FRAME if (h := p.wait_for(m, timeout=60)) is not None]
            frames.append(max(h[0] for h in hits) - p.t_launch if len(hits) == len(FIRST_FRAME) else float("nan"))
            r = wait_ready(p)
            ready.append(r if r is not None else float("nan"))
        with PtyProgram(hello_argv, 80, 24, env, cwd=REPO) as p:
            hits = [h for m in ("hello panel bar", "Help") if (h := p.wait_for(m, timeout=60)) is not None]
            hello.append(max(h[0] for h in hits) - p.t_launch if len(hits) == 2 else float("nan"))
    return {"first_frame_s": median(frames), "ready_s": median(ready), "hello_s": median(hello),
            "first_frame_runs": frames, "ready_runs": ready, "hello_runs": hello}


def memory(opts: Options, epochs: int) -> dict[str, Any]:
    d = _data_dir(opts)
    train = termnist_cmd() + ["train", "--data", d, "--preset", "default", "--epochs", str(epochs)]
    if not opts.full_data:
        train += ["--val-size", "1000"]
    s, status, rss, err = run_child(train, opts, sample_rss=True)
    out: dict[str, Any] = {"train_s": s, "train_status": status, "train_rss": rss}
    if status != 0:
        out["train_error"] = err
    ref = [PYTHON, "-c", f"from engine.datasets import load_dataset; load_dataset('mnist', {d!r})"]
    _, _, rss_ref, _ = run_child(ref, opts, sample_rss=True)
    out["load_only_rss"] = rss_ref
    out["app"] = app_memory(opts, epochs)
    return out


def app_memory(opts: Options, epochs: int) -> dict[str, Any]:
    """Peak RSS of the real app training the default preset for ``epochs`` epochs."""
    from benchmarks.app import launch_app, wait_ready
    from engine.presets import get_preset

    cfg = get_preset("default").replace(epochs=epochs)
    if not opts.full_data:
        cfg = cfg.replace(val_size=1000)
    p = launch_app(opts, "memory-app", cfg, 120, 40)
    try:
        if wait_ready(p) is None:
            return {"error": "the app did not show the dataset"}
        time.sleep(0.3)
        _, mark = p.send("f5")
        done = p.wait_for("completed after", since=mark, timeout=600)
        time.sleep(0.5)   # the final predictions and log lines
        out: dict[str, Any] = {"completed": done is not None}
    finally:
        p.stop()
    out["app_rss"] = p.peak_rss
    out["trainer_rss"] = p.children_peak_rss         # the app's training process
    out["rss"] = (p.peak_rss + (p.children_peak_rss or 0)) if p.peak_rss else None
    return out


# ------------------------------------------------------------------------------ the section
def run(opts: Options) -> SectionResult:
    res = SectionResult("startup", "Memory and start-up")
    reps = 2 if opts.quick else 5
    opts.log("startup: dataset load")
    load = dataset_load(opts, reps)
    opts.log("startup: termnist --help")
    helps = help_time(opts, 1 if opts.quick else 5)
    opts.log("startup: first screen")
    screen = first_screen(opts, 1 if opts.quick else 3)
    opts.log("startup: peak RSS of headless training and of the app")
    mem = memory(opts, 1 if opts.quick else 2)
    res.data = {"load": load, "help": helps, "first_screen": screen, "memory": mem}

    t = Table(f"Memory and start-up ({data_label(opts)})", ["figure", "value", "reference", "ref value", "ratio"])
    t.add("load MNIST (gzipped IDX)", fmt_ms(load["load_s"]), "gunzip the 4 files", fmt_ms(load["gunzip_s"]),
          fmt_ratio(load["load_s"] / load["gunzip_s"]))
    h = helps["termnist --help"]["median_s"]
    t.add("termnist --help", fmt_ms(h), "python -c pass", fmt_ms(helps["python -c pass"]["median_s"]),
          fmt_ratio(h / helps["python -c pass"]["median_s"]))
    t.add("", "", "python -c 'import numpy'", fmt_ms(helps["python -c 'import numpy'"]["median_s"]),
          fmt_ratio(h / helps["python -c 'import numpy'"]["median_s"]))
    t.add("launch -> first full frame (80x24)", fmt_ms(screen["first_frame_s"]), "minimal Textual app",
          fmt_ms(screen["hello_s"]), fmt_ratio(screen["first_frame_s"] / screen["hello_s"]))
    t.add("launch -> dataset shown (ready to train)", fmt_ms(screen["ready_s"]), "", "", "")
    t.add(f"peak RSS termnist train (default, {1 if opts.quick else 2} ep)", fmt_bytes(mem["train_rss"]),
          "process loading MNIST only", fmt_bytes(mem["load_only_rss"]),
          fmt_ratio(mem["train_rss"] / mem["load_only_rss"]))
    app_rss = mem["app"].get("rss")
    parts = ""
    if mem["app"].get("trainer_rss"):
        parts = f" ({fmt_bytes(mem['app']['app_rss'])} + {fmt_bytes(mem['app']['trainer_rss'])})"
    t.add(f"peak RSS app + training process (default, {1 if opts.quick else 2} ep, 120x40)",
          fmt_bytes(app_rss) + parts, "termnist train", fmt_bytes(mem["train_rss"]),
          fmt_ratio(app_rss / mem["train_rss"]) if app_rss else "-")
    t.notes.append(f"medians: load {reps} runs, --help 5 runs after 1 warm-up, first screen "
                   f"{len(screen['first_frame_runs'])} launches; first frame = the panel bar and the "
                   "footer both written to the pty")
    if mem.get("train_error"):
        t.notes.append(f"termnist train failed: {mem['train_error']}")
    res.tables.append(t)
    ok = mem["train_rss"] < RSS_TARGET
    res.target("headless training peak RSS < 400 MB", fmt_bytes(mem["train_rss"]), "< 400 MiB", ok)
    if app_rss:
        ok = app_rss < RSS_TARGET
        res.target("app + training process peak RSS < 400 MB (full MNIST, training)", fmt_bytes(app_rss),
                   "< 400 MiB",
                   ok if opts.full_data else None, "" if opts.full_data else "sample only")
    return res
