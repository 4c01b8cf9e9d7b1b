"""The app's costs: training inside the app vs headless, chart redraws, key-press latency,
and bytes written to the terminal per second (what an SSH link carries).

* Overhead (pilot): the same short run (128-64, batch 128, 3 epochs) headless through
  TrainingSession and inside the app at 120x40 (every panel on screen: chart, log,
  preview), driven by ``App.run_test()``; the app is handed the already loaded dataset.
  Timed from the F5 key to the end of the training worker. Runs alternate; medians.
* Overhead (real terminal): the same run in the real `termnist` in a pty at 120x40, from
  F5 to the "completed" log line on screen, against headless runs in the same loop.
* Responsive + light over SSH: the real `termnist --data DIR` in a pty (80x24 and 120x40),
  training the default preset (epochs raised so it outlasts the measurement); bytes read
  from the master side over a window of training, then F2 (switch the chart) pressed N
  times, each timed until the new chart title arrives on the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON, REPO, CpuMeter, Options, SectionResult, Table, blas_threads, child_env, data_label,
    fmt_bytes, fmt_ms, fmt_ratio, fmt_s, load_data, median, percentile, proc_cpu_s, thread_cpu_s,
)
from benchmarks.terminal import PtyProgram, bytes_by_row

SHORT_RUN: dict[str, Any] = dict(hidden=(128, 64), batch_size=128, epochs=3)
BYTES_TARGET = 50 * 1024          # bytes per second
LATENCY_TARGET = 0.100            # p95 seconds
OVERHEAD_TARGET = 1.10


def short_config(quick: bool):
    from engine.training import TrainConfig

    cfg = TrainConfig(**SHORT_RUN)
    if quick:
        cfg = cfg.replace(hidden=(32,), epochs=1, val_size=1000)
    return cfg


# ------------------------------------------------------------------------------ headless
def headless_run(cfg, ds) -> float:
    from engine import events as ev
    from engine.training import TrainingSession

    with blas_threads(1):
        t0 = time.perf_counter()
        session = TrainingSession(cfg, ds, progress_every=20)
        for event in session.run():
            if isinstance(event, ev.Finished):
                break
        return time.perf_counter() - t0


# ------------------------------------------------------------------------------ pilot
async def _press(app, key: str) -> None:
    """Send a key as the driver would (Pilot.press waits for an idle CPU, which never comes
    while a training thread runs)."""
    from textual import events

    event = events.Key(key, None)
    event.set_sender(app)
    app._driver.send_message(event)  # noqa: SLF001 - what Pilot does, minus the idle wait


async def _pilot_run(cfg, ds, size: tuple[int, int], workdir: Path, preview_limit: int,
                     max_seconds: float, trainer: str) -> dict[str, Any]:
    from tui.app import TermnistApp

    app = TermnistApp(config_dir=workdir / "pilot-config", load_dataset_fn=lambda name, d: ds,
                      remember=False, preview_limit=preview_limit, trainer=trainer)
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 60
        while app.dataset is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        t_ready = time.perf_counter()
        prepare_s = None
        child = None
        if trainer == "process":
            # the app starts its training process and hands it the dataset when the dataset
            # loads (a user reads the screen meanwhile); F5 comes once that is done
            while time.perf_counter() < deadline and not (
                    app.trainer.trainer_process is not None and app.trainer.trainer_process.holds(ds)):
                await asyncio.sleep(0.005)
            prepare_s = time.perf_counter() - t_ready
            child = app.trainer.trainer_process.pid if app.trainer.trainer_process is not None else None
        await pilot.pause()
        app.form.set_config(cfg)
        await pilot.pause()
        redraws0 = app.chart.redraws
        ui_thread = threading.get_native_id()
        ui0 = thread_cpu_s(ui_thread)
        child0 = proc_cpu_s(child) if child else None
        with CpuMeter() as meter:           # this process and its children (the trainer)
            t0 = time.perf_counter()
            await _press(app, "f5")
            timed_out = False
            while not _run_finished(app):
                if time.perf_counter() - t0 > max_seconds:
                    timed_out = True
                    app.trainer.stop()           # ends after the current batch
                    stop_deadline = time.perf_counter() + 60
                    while app.training and time.perf_counter() < stop_deadline:
                        await asyncio.sleep(0.01)
                    break
                await asyncio.sleep(0.005)
            seconds = max_seconds if timed_out else time.perf_counter() - t0
        ui1 = thread_cpu_s(ui_thread)
        child1 = proc_cpu_s(child) if child else None
        redraws = app.chart.redraws - redraws0
        while app.training:                 # the worker's teardown, then the app is idle again
            await asyncio.sleep(0.01)
        await pilot.pause(0.05)
        model = app.model
        same = getattr(model, "config", None) == cfg
        out = {"seconds": seconds, "timed_out": timed_out, "redraws": redraws, "redraws_per_s": redraws / seconds,
               "ui_cpu_s": (ui1 - ui0) if ui0 is not None and ui1 is not None else None,
               "trainer_cpu_s": (child1 - child0) if child0 is not None and child1 is not None else None,
               "prepare_s": prepare_s, "trainer": trainer,
               "separate_process": type(app.model).__name__ == "ProcessSession",
               "other_cpus": meter.other_cpus,
               "test_acc": app.view.last_test_acc, "same_config": same, "errors": list(app.errors_seen),
               "log_tail": app.epoch_log.lines[-2:]}
    return out


def _run_finished(app) -> bool:
    """The log says the first run ended ("run 1 completed after ..."): what a user sees, and
    what the pty measurement waits for on screen."""
    return app.trainer.run_count > 0 and any(line.startswith("* run 1 ") and " epoch(s) in " in line
                                     for line in app.epoch_log.lines[-8:])


def pilot_run(cfg, ds, size: tuple[int, int], workdir: Path, blas: int | None = None,
              preview_limit: int = 10_000, max_seconds: float = 600.0,
              trainer: str = "process") -> dict[str, Any]:
    """One app run under the pilot; ``blas`` overrides the app's 1-thread BLAS limit for
    training; ``trainer="thread"`` trains in a thread of the app (the design before the
    training process). A run longer than ``max_seconds`` is stopped and reported as
    ``timed_out`` (seconds = the cap)."""
    patch: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if blas is not None:
        patch = _patched_threadpool_limits(blas)
    with patch:
        return asyncio.run(_pilot_run(cfg, ds, size, workdir, preview_limit, max_seconds, trainer))


# ------------------------------------------------------------------------------ GIL diagnostic
def _python_busy(seconds: float, duty: float = 0.25, period: float = 0.02) -> None:
    """Run pure Python ``duty`` of the time (in bursts), like a UI thread rendering."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        x = 0
        while time.perf_counter() - t0 < duty * period:
            x += 1
        time.sleep((1 - duty) * period)


def gil_diagnostic(cfg, ds, rounds: int) -> dict[str, list[float]]:
    """Headless run alone, beside a Python thread busy 25% of the time, and beside the same
    load in another process: the thread's cost is the GIL (the process's is only CPU)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out: dict[str, list[float]] = {"alone": [], "thread": [], "process": []}
    for _ in range(rounds):
        out["alone"].append(headless_run(cfg, ds))
        est = max(out["alone"][-1] * 1.6, 0.5)
        th = threading.Thread(target=_python_busy, args=(est,), daemon=True)
        th.start()
        out["thread"].append(headless_run(cfg, ds))
        th.join()
        pr = ctx.Process(target=_python_busy, args=(est + 1.0,), daemon=True)
        pr.start()
        time.sleep(0.8)       # let the spawned interpreter start
        out["process"].append(headless_run(cfg, ds))
        pr.join()
    return out


@contextlib.contextmanager
def _patched_threadpool_limits(n: int):
    from benchmarks._app_launcher import patch_blas

    undo = patch_blas(n)
    try:
        yield
    finally:
        undo()


# ------------------------------------------------------------------------------ real terminal
def write_settings(config_dir: Path, cfg) -> None:
    """Pre-fill the app's form (its remembered settings) with ``cfg``."""
    from tui.forms import config_to_values

    config_dir.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "form": config_to_values(cfg), "base": cfg.to_dict(),
            "ui": {"chart": "loss", "shading": "ascii"}}
    (config_dir / "settings.json").write_text(json.dumps(data))


def app_argv(opts: Options, launcher: bool = False, args: tuple[str, ...] = ()) -> list[str]:
    """The real `termnist --data DIR [args]`; through benchmarks._app_launcher for what-if
    overrides."""
    from engine.datasets import SAMPLE_DIR

    data = str(opts.data_dir or SAMPLE_DIR)
    if launcher:
        return [PYTHON, "-m", "benchmarks._app_launcher", "--data", data, *args]
    return [PYTHON, "-m", "tui.cli", "--data", data, *args]


READY_TEXTS = ("train images)", "bundled MNIST sample")


def wait_ready(p: PtyProgram, timeout: float = 60.0) -> float | None:
    """Seconds from launch until the status bar shows the loaded dataset."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for text in READY_TEXTS:
            hit = p.find(text)
            if hit:
                return hit[0] - p.t_launch
        if p.exited.is_set():
            return None
        time.sleep(0.01)
    return None


def launch_app(opts: Options, name: str, cfg, cols: int, rows: int,
               overrides: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> PtyProgram:
    """The real app in a pty, its form pre-filled with ``cfg``; ``overrides``: the
    TERMNIST_BENCH_* knobs of benchmarks._app_launcher (what-if experiments)."""
    cfg_dir = opts.workdir / name / "config"
    write_settings(cfg_dir, cfg)
    extra = {"TERMNIST_CONFIG_DIR": str(cfg_dir), "TERMNIST_STATE_DIR": str(opts.workdir / name / "state")}
    extra.update(overrides or {})
    return PtyProgram(app_argv(opts, launcher=bool(overrides), args=args), cols, rows,
                      child_env(opts, **extra), cwd=REPO).start()


def pty_short_run(opts: Options, cfg, cols: int = 120, rows: int = 40, name: str = "pty-short"
                  ) -> dict[str, Any]:
    """The short run in the real app: seconds from F5 until "completed after" is on screen.
    ``name``: its own settings and state directory (nothing carries over between runs)."""
    p = launch_app(opts, name, cfg, cols, rows)
    try:
        if wait_ready(p) is None:
            return {"error": "the app did not show the dataset"}
        time.sleep(1.0)          # a person reads the screen; the app prepares its training process
        t0, mark = p.send("f5")
        hit = p.wait_for("completed after", since=mark, timeout=120)
        if hit is None:
            return {"error": "no 'completed' line", "tail": p.text_since(max(0, p.text_len - 400))}
        return {"seconds": hit[0] - t0}
    finally:
        p.stop()


def pty_session(opts: Options, name: str, cfg, cols: int, rows: int, window: float, presses: int,
                label: str = "as shipped", overrides: dict[str, str] | None = None,
                args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train in the real app; bytes per second over ``window`` s, then ``presses`` F2 latencies."""
    out: dict[str, Any] = {"size": f"{cols}x{rows}", "variant": label, "overrides": overrides or {},
                           "args": list(args)}
    p = launch_app(opts, name, cfg, cols, rows, overrides=overrides, args=args)
    meter = CpuMeter([p.pid] if p.pid else [])
    meter.__enter__()
    try:
        ready = wait_ready(p)
        out["ready_s"] = ready
        if ready is None:
            out["error"] = "the app did not show the dataset: " + p.text_since(max(0, p.text_len - 300))
            return out
        time.sleep(0.3)
        t_f5, mark = p.send("f5")
        started = p.wait_for("training epoch", since=mark, timeout=60)
        if started is None:
            out["error"] = "training did not start"
            return out
        out["f5_to_training_s"] = started[0] - t_f5
        time.sleep(1.0 if window >= 5 else 0.3)   # past the panel switch's full redraw
        t_a = time.perf_counter()
        time.sleep(window)
        t_b = time.perf_counter()
        n = p.bytes_between(t_a, t_b)
        out["window_s"] = t_b - t_a
        out["bytes"] = n
        out["bytes_per_s"] = n / (t_b - t_a)
        per_s = p.per_second(t_a, t_b)
        out["peak_bytes_1s"] = max(per_s) if per_s else None
        out["bytes_by_row"] = bytes_by_row(p.raw_between(t_a, t_b), rows)
        # key presses: F2 flips the chart between loss and accuracy; its title says which
        titles = ("Accuracy (F2: loss)", "Loss (F2: accuracy)")
        lat = []
        rng = random.Random(0)
        expect = 0
        for _ in range(presses):
            t, mark = p.send("f2")
            hit = p.wait_for(titles[expect], since=mark, timeout=3.0)
            lat.append(hit[0] - t if hit else float("inf"))   # a miss counts as infinitely slow
            if hit is None:
                time.sleep(0.5)
                if p.find(titles[expect], since=mark) is None:
                    expect ^= 1      # the key was lost: the chart still shows the old mode
            expect ^= 1
            time.sleep(rng.uniform(0.1, 0.3))
        out["latencies_s"] = lat
        out["latency_p50_s"] = percentile(lat, 50)
        out["latency_p95_s"] = percentile(lat, 95)
        out["latency_max_s"] = max(lat) if lat else None
        out["still_training"] = (p.find("training epoch", since=mark) is not None
                                 or p.find("step ", since=mark) is not None)
    finally:
        meter.__exit__(None, None, None)
        out["other_cpus"] = meter.other_cpus
        p.stop()
        out["peak_rss_bytes"] = p.peak_rss
        out["trainer_peak_rss_bytes"] = p.children_peak_rss
    return out


# ------------------------------------------------------------------------------ the section
def run(opts: Options) -> SectionResult:
    res = SectionResult("app", "The app's costs")
    ds = load_data(opts)
    cfg = short_config(opts.quick)
    pairs = 1 if opts.quick else 3

    # --- overhead under the pilot: headless, app, app without preview predictions (diagnostic)
    opts.log("app: headless vs app (pilot), alternating")
    head: list[float] = []
    pilot: list[dict[str, Any]] = []
    nopreview: list[dict[str, Any]] = []
    threaded: list[dict[str, Any]] = []
    for i in range(pairs + (0 if opts.quick else 1)):
        h = headless_run(cfg, ds)
        a = pilot_run(cfg, ds, (120, 40), opts.workdir)
        b = pilot_run(cfg, ds, (120, 40), opts.workdir, preview_limit=0) if not opts.quick else None
        c = pilot_run(cfg, ds, (120, 40), opts.workdir, trainer="thread") if not opts.quick else None
        if i == 0 and not opts.quick:
            continue   # warm-up round: imports, first Textual start, BLAS buffers
        head.append(h)
        pilot.append(a)
        if b is not None:
            nopreview.append(b)
        if c is not None:
            threaded.append(c)
    h_med = median(head)
    a_med = median([r["seconds"] for r in pilot])
    ratio = a_med / h_med
    redraw_rate = median([r["redraws_per_s"] for r in pilot])
    ui_cpu = median([r["ui_cpu_s"] for r in pilot if r["ui_cpu_s"] is not None])
    prepare = [r["prepare_s"] for r in pilot if r.get("prepare_s") is not None]
    trainer_cpu = [r["trainer_cpu_s"] for r in pilot if r.get("trainer_cpu_s") is not None]
    res.data["pilot"] = {"headless_s": head, "app_runs": pilot, "no_preview_runs": nopreview,
                         "thread_runs": threaded, "ratio": ratio}

    pty_rows: list[dict[str, Any]] = []
    gil: dict[str, list[float]] = {}
    if not opts.quick:
        opts.log("app: headless vs the real app in a pty, alternating")
        for i in range(4):
            h = headless_run(cfg, ds)
            r = pty_short_run(opts, cfg, name=f"pty-short-{i}")
            if i > 0:                    # round 0 warms up (the page cache, the first pty)
                pty_rows.append({"headless_s": h, **r})
        opts.log("app: app with the worker's BLAS limit forced to 2 (pilot), vs 1")
        blas_pairs: list[tuple[float, float]] = []
        two_capped = False
        for _ in range(2):
            one_run = pilot_run(cfg, ds, (120, 40), opts.workdir)
            cap = max(10.0, 5 * one_run["seconds"])     # 2 threads under load can take minutes
            two_run = pilot_run(cfg, ds, (120, 40), opts.workdir, blas=2, max_seconds=cap)
            blas_pairs.append((one_run["seconds"], two_run["seconds"]))
            two_capped = two_capped or two_run["timed_out"]
            if two_run["timed_out"]:
                break
        res.data["pilot_blas2"] = blas_pairs
        res.data["pilot_blas2_capped"] = two_capped
        opts.log("app: GIL diagnostic (busy Python thread vs busy process beside headless training)")
        with CpuMeter() as gil_meter:
            gil = gil_diagnostic(cfg, ds, 3)
        res.data["gil_diagnostic"] = gil
        res.data["gil_diagnostic_other_cpus"] = gil_meter.other_cpus
    res.data["pty_short"] = pty_rows

    t = Table(f"The app costs little: {cfg.describe()}, {data_label(opts)}",
              ["run", "headless s", "in the app s", "app/headless", "UI thread CPU s", "trainer CPU s",
               "chart redraws/s", "other CPU"])
    t.add("pilot 120x40 (chart+log+preview)", fmt_s(h_med), fmt_s(a_med), fmt_ratio(ratio), fmt_s(ui_cpu),
          fmt_s(median(trainer_cpu)) if trainer_cpu else "-",
          f"{redraw_rate:.1f}", _fmt_cpu(median([r["other_cpus"] for r in pilot if r["other_cpus"] is not None])))
    if nopreview:
        n_med = median([r["seconds"] for r in nopreview])
        t.add("  diagnostic: same, no preview predictions", "", fmt_s(n_med), fmt_ratio(n_med / h_med),
              fmt_s(median([r["ui_cpu_s"] for r in nopreview if r["ui_cpu_s"] is not None])), "",
              f"{median([r['redraws_per_s'] for r in nopreview]):.1f}", "")
    if threaded:
        th_med = median([r["seconds"] for r in threaded])
        res.data["thread_ratio"] = th_med / h_med
        t.add("  before: training in a thread of the app", "", fmt_s(th_med), fmt_ratio(th_med / h_med),
              fmt_s(median([r["ui_cpu_s"] for r in threaded if r["ui_cpu_s"] is not None])), "",
              f"{median([r['redraws_per_s'] for r in threaded]):.1f}", "")
    good_pty = [r for r in pty_rows if "seconds" in r]
    if good_pty:
        hp = median([r["headless_s"] for r in good_pty])
        ap = median([r["seconds"] for r in good_pty])
        t.add("real termnist in a pty 120x40 (F5 -> 'completed')", fmt_s(hp), fmt_s(ap), fmt_ratio(ap / hp),
              "", "", "", "")
        res.data["pty_ratio"] = ap / hp
        t.notes.append(f"real pty: median of {len(good_pty)} rounds after a warm-up round, each beside a "
                       "headless run; the benchmark sleeps while it waits for the screen (it reads the pty "
                       "in a thread that timestamps every read)")
    if res.data.get("pilot_blas2"):
        one = median([a for a, _ in res.data["pilot_blas2"]])
        two = median([b for _, b in res.data["pilot_blas2"]])
        capped = res.data.get("pilot_blas2_capped")
        t.add("  experiment: training forced to 2 BLAS threads", "", (">" if capped else "") + fmt_s(two),
              f"{'>' if capped else ''}{two / one:.2f}x of 1 thr", "", "", "", "")
        if capped:
            t.notes.append("the 2-thread app run hit its cap (5x the 1-thread run) and was stopped")
    if gil:
        alone, thr, proc = (median(gil[k]) for k in ("alone", "thread", "process"))
        t.add("  diagnostic: headless + busy Python thread (25%)", fmt_s(alone), fmt_s(thr), fmt_ratio(thr / alone),
              "", "", "", "")
        t.add("  diagnostic: headless + same load, other process", fmt_s(alone), fmt_s(proc),
              fmt_ratio(proc / alone), "", "", "", _fmt_cpu(res.data.get("gil_diagnostic_other_cpus")))
    t.notes.append(f"median of {len(head)} alternating rounds (pilot) after a warm-up round; app time = F5 "
                   "to the log line 'run 1 completed after ...' (includes the per-epoch preview predictions on "
                   "10,000 test "
                   "images, made in the app's process; headless includes the final test evaluation as the "
                   "app does). The app trains in its training process (engine.trainer_process), started "
                   "and handed the dataset when the dataset loads: "
                   + (f"{fmt_s(median(prepare))} s after the dataset appeared (median), before F5. "
                      if prepare else "")
                   + "UI thread CPU = CPU time of the Textual thread during the run; trainer CPU = the "
                   "training process's")
    if gil:
        t.notes.append("GIL diagnostic: a Python thread busy 25% of the time (like the UI thread) slows the "
                       "training thread by about its own CPU time; the same load in another process costs "
                       "only CPU contention. Hence the training process: the UI thread no longer shares a "
                       "GIL with training ('before' row: the same run trained in a thread of the app)")
    if any(not r["same_config"] for r in pilot):
        t.notes.append("WARNING: the app trained a different config than the headless run")
    res.tables.append(t)
    res.target("app run <= 1.10x headless (pilot, 120x40)", fmt_ratio(ratio), "<= 1.10x", ratio <= OVERHEAD_TARGET,
               "" if ratio <= OVERHEAD_TARGET else
               f"app {fmt_s(a_med)} s vs headless {fmt_s(h_med)} s; UI thread {fmt_s(ui_cpu)} s CPU")
    if pty_rows and res.data.get("pty_ratio") is not None:
        pr = res.data["pty_ratio"]
        res.target("app run <= 1.10x headless (real termnist in a pty)", fmt_ratio(pr), "<= 1.10x",
                   pr <= OVERHEAD_TARGET)

    # --- responsive + light over SSH (real app in a pty, training the default preset)
    from engine.presets import get_preset

    long_cfg = get_preset("default").replace(epochs=1000)
    if opts.quick:
        long_cfg = long_cfg.replace(val_size=1000)
    window, presses = (1.0, 3) if opts.quick else (20.0, 30)
    plan: list[tuple[str, int, int, float, int, str, dict[str, str] | None, tuple[str, ...]]] = [
        (f"pty-{c}x{r}", c, r, window, presses, "as shipped", None, ())
        for c, r in ([(80, 24)] if opts.quick else [(80, 24), (120, 40)])]
    if not opts.quick:
        plan += [
            ("pty-80x24-lowbw", 80, 24, 10.0, 10, "--low-bandwidth", None, ("--low-bandwidth",)),
            ("pty-120x40-lowbw", 120, 40, 10.0, 10, "--low-bandwidth", None, ("--low-bandwidth",)),
            ("pty-80x24-blas2", 80, 24, 10.0, presses, "experiment: training 2 BLAS threads",
             {"TERMNIST_BENCH_BLAS_THREADS": "2"}, ()),
        ]
    sessions = []
    for name, cols, rows, win, n_press, label, overrides, args in plan:
        opts.log(f"app: pty {cols}x{rows} ({label}): {win:.0f} s of bytes, {n_press} key presses")
        sessions.append(pty_session(opts, name, long_cfg, cols, rows, win, n_press, label, overrides, args))
    res.data["pty_sessions"] = sessions

    t2 = Table(f"Responsive and light over SSH: real termnist in a pty, training the default preset, "
               f"{data_label(opts)}",
               ["terminal", "variant", "bytes/s", "peak 1 s", "key p50", "key p95", "key max", "presses",
                "peak RSS app+trainer", "other CPU"])
    for s in sessions:
        if "error" in s:
            t2.add(s["size"], s["variant"], "error", "-", "-", "-", "-", "-", "-", s["error"][:60])
            continue
        t2.add(s["size"], s["variant"], fmt_bytes(s["bytes_per_s"]) + "/s",
               fmt_bytes(s["peak_bytes_1s"]), fmt_ms(s["latency_p50_s"]), fmt_ms(s["latency_p95_s"]),
               fmt_ms(s["latency_max_s"]), len(s["latencies_s"]), _fmt_rss(s),
               _fmt_cpu(s.get("other_cpus")))
    t2.notes.append(f"bytes read from the pty master over {window:.0f} s (--low-bandwidth and experiment rows: "
                    "10 s) of training, after the switch to the training panel settled; TERM=xterm-256color, "
                    "no COLORTERM (256 colours, as over SSH). --low-bandwidth: chart and progress redrawn once "
                    "a second")
    t2.notes.append("key latency: F2 written to the pty -> the new chart title read back from it (the screen has "
                    "reacted), p50/p95 nearest-rank, 0.1-0.3 s between presses; peak RSS = VmHWM of the app "
                    "+ of its training process (each one's peak; their sum bounds the peak of the two together)")
    for s in sessions:
        if s.get("bytes_by_row") and s["variant"] == "as shipped":
            t2.notes.append(f"{s['size']} bytes by screen row (top 6): " + _row_summary(s["bytes_by_row"]))
    res.tables.append(t2)

    for s in sessions:
        if s["variant"] != "as shipped":
            continue
        if "error" in s:
            res.target(f"key press p95 < 100 ms ({s['size']})", "error", "< 100 ms", None, s["error"][:80])
            res.target(f"<= 50 KB/s to the terminal ({s['size']})", "error", "<= 50 KiB/s", None, s["error"][:80])
            continue
        ok = s["latency_p95_s"] < LATENCY_TARGET
        res.target(f"key press p95 < 100 ms ({s['size']})", fmt_ms(s["latency_p95_s"]), "< 100 ms", ok,
                   "" if ok else f"p50 {fmt_ms(s['latency_p50_s'])}, max {fmt_ms(s['latency_max_s'])}")
        ok = s["bytes_per_s"] <= BYTES_TARGET
        res.target(f"<= 50 KB/s to the terminal ({s['size']})", fmt_bytes(s["bytes_per_s"]) + "/s",
                   "<= 50 KiB/s", ok, "" if ok else "see bytes by screen row")
        if s.get("peak_rss_bytes"):
            total = s["peak_rss_bytes"] + (s.get("trainer_peak_rss_bytes") or 0)
            ok = total < 400 * 1024**2
            res.target(f"app + training process peak RSS < 400 MB ({s['size']}, training)", _fmt_rss(s),
                       "< 400 MiB", ok)
    return res


def _fmt_rss(s: dict[str, Any]) -> str:
    app, trainer = s.get("peak_rss_bytes"), s.get("trainer_peak_rss_bytes")
    if app is None:
        return "-"
    if trainer is None:
        return fmt_bytes(app)
    return f"{fmt_bytes(app + trainer)} ({fmt_bytes(app)} + {fmt_bytes(trainer)})"


def _fmt_cpu(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _row_summary(rows: list[int]) -> str:
    total = sum(rows) or 1
    top = sorted(range(len(rows)), key=lambda i: -rows[i])[:6]
    return ", ".join(f"row {i + 1}: {rows[i] * 100 / total:.0f}%" for i in sorted(top))
