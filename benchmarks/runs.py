"""The run store (engine.runs): what recording costs an epoch, and how fast the history lists.

1. Recording overhead: the default preset trains on the bundled MNIST sample (1 BLAS thread)
   with a RunRecorder fed every event; the time spent inside ``feed`` (all events: the run's
   row, every epoch, the progress heartbeats, the end) per epoch, as a share of the epoch's
   wall time (training + validation). Also the median of one ``EpochEnded`` record alone.
2. Listing: a store holding 1,000 runs of 10 epochs each; the median time of the query the
   Runs panel uses (``RunStore.list()``: every run, newest first), and of a text filter.
3. The Runs panel opening: the app under Pilot (80x24, bundled sample) with those 1,000 runs in
   its store; from the F3 key that shows the panel to its table of 1,000 rows drawn (the store
   read in the panel's thread worker, the rows built, one screen refresh). Each opening reads the
   store again (as after another process wrote to it); the first one is reported apart.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import Options, SectionResult, Table, blas_threads, median

OVERHEAD_TARGET = 0.01       # recording adds under 1% to an epoch
LIST_TARGET_S = 0.05         # the Runs panel lists 1,000 runs within 50 ms
PANEL_TARGET_S = 0.3         # the Runs panel opens (key to table drawn) within 300 ms with 1,000 runs


def _overhead(opts: Options, store_path: Path) -> dict[str, Any]:
    from engine import events as ev
    from engine.datasets import SAMPLE_DIR, load_dataset
    from engine.presets import get_preset
    from engine.runs import RunRecorder
    from engine.training import TrainingSession

    ds = load_dataset("mnist", data_dir=SAMPLE_DIR)
    config = get_preset("default")
    config = config.replace(val_size=len(ds.y_train) // 5, epochs=2 if opts.quick else 5)  # as `termnist train`
    session = TrainingSession(config, ds, progress_every=50)
    t0 = time.perf_counter()
    rec = RunRecorder.open(store_path, dataset=ds, source="bench", threads=1)
    setup_s = time.perf_counter() - t0
    assert rec.recording and rec.store is not None, rec.error
    store = rec.store
    feed_s: list[float] = []
    epoch_wall: list[float] = []
    per_epoch_feed: list[float] = []
    with blas_threads(1):
        t_epoch = time.perf_counter()
        acc = 0.0
        for event in session.run():
            t0 = time.perf_counter()
            rec.feed(event)
            dt = time.perf_counter() - t0
            feed_s.append(dt)
            acc += dt
            if isinstance(event, ev.EpochEnded):
                now = time.perf_counter()
                epoch_wall.append(now - t_epoch - acc)    # the epoch without the recording
                per_epoch_feed.append(acc)
                t_epoch, acc = now, 0.0
    rec.close()
    run_id = rec.last_run_id or ""
    # one EpochEnded record alone, many times (a store with this run in it)
    singles = []
    for i in range(20 if opts.quick else 200):
        t0 = time.perf_counter()
        store.add_epoch(run_id, 1000 + i, train_loss=0.1, train_acc=0.9, val_loss=0.1, val_acc=0.9,
                            seconds=1.0, lr=0.05, samples_per_s=1.0, global_step=i)
        singles.append(time.perf_counter() - t0)
    store.delete([run_id])
    n = len(epoch_wall)
    total_feed = sum(feed_s)
    return {"epochs": n, "epoch_s": median(epoch_wall), "feed_total_s": total_feed,
            "feed_per_epoch_s": total_feed / n, "per_epoch_feed_s": per_epoch_feed,
            "events": len(feed_s), "epoch_record_s": median(singles), "setup_s": setup_s}


def _fill(store_path: Path, n_runs: int, n_epochs: int) -> float:
    import json
    import random

    from engine.runs import RunStore
    from engine.runs.store import new_run_id

    rng = random.Random(0)
    t0 = time.perf_counter()
    with RunStore(store_path) as store:
        now = time.time()
        statements: list[tuple[str, Any]] = []
        for i in range(n_runs):
            run_id = f"{int(now - (n_runs - i) * 60):08x}{new_run_id()[8:]}"
            settings = {"hidden": rng.choice([[128, 64], [256, 128], [512]]), "lr": rng.choice([0.01, 0.05, 0.1]),
                        "optimizer": rng.choice(["sgd", "momentum", "adam"]), "epochs": n_epochs,
                        "batch_size": 64, "seed": i}
            statements.append((
                "INSERT INTO runs (id, started, ended, status, source, settings, dataset, dataset_title, sample,"
                " epochs_done, best_val_acc, test_acc, seconds, version, machine, host, pid, heartbeat)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, now - (n_runs - i) * 60, now - (n_runs - i) * 60 + 30, "completed", "bench",
                 json.dumps(settings), "mnist", "MNIST", 1, n_epochs, 0.97, 0.975, 30.0, "bench", "{}", "bench",
                 None, now)))
            for e in range(1, n_epochs + 1):
                statements.append((
                    "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, lr,"
                    " samples_per_s, global_step) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run_id, e, 1 / e, 0.9, 1 / e, 0.9, 3.0, 0.05, 20000.0, e * 100)))
            if len(statements) > 5000:
                store._write(statements)
                statements = []
        store._write(statements)
    return time.perf_counter() - t0


def _listing(opts: Options, store_path: Path, n_runs: int) -> dict[str, Any]:
    from engine.runs import RunStore

    fill_s = _fill(store_path, n_runs, 10)
    repeats = 5 if opts.quick else 30
    out: dict[str, Any] = {"runs": n_runs, "fill_s": fill_s}
    with RunStore(store_path) as store:
        t0 = time.perf_counter()
        store.list()
        out["first_s"] = time.perf_counter() - t0
        queries: tuple[tuple[str, dict[str, Any] | None], ...] = (("list_s", {}), ("filter_s", {"text": "adam"}),
            ("sort_best_s", {"sort": "best_val_acc"}), ("get_s", None))
        for name, kwargs in queries:
            times, cpu = [], []
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                if kwargs is None:
                    store.get(store.list(limit=1)[0].id)
                else:
                    rows = store.list(**kwargs)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            out[name] = median(times)
            out[name.replace("_s", "_cpu_s")] = median(cpu)
        out["listed"] = len(store.list())
        out["filtered"] = len(rows)
    out["fresh_process_s"] = _fresh_process_list(store_path)
    return out


def _fresh_process_list(store_path: Path) -> float:
    """Open + list in a new process (what `termnist runs` does, minus the interpreter start)."""
    import subprocess
    import sys

    from benchmarks.common import REPO

    code = ("import time,sys; t=time.perf_counter(); from engine.runs import RunStore; "
            "s=RunStore(sys.argv[1]); s.list(); print(time.perf_counter()-t)")
    r = subprocess.run([sys.executable, "-c", code, str(store_path)], capture_output=True, text=True,
                       cwd=REPO, timeout=120, check=True)
    return float(r.stdout.strip())


FIRST_ROWS = 60


def _panel_opening(opts: Options, store_dir: Path, repeats: int) -> dict[str, Any]:
    """Pilot, 80x24: F3 to the Runs panel (form -> train -> digits -> runs), timed from the key
    sent to the table's rows drawn (one screen refresh after them). "cold": no read yet (the
    preload held back), so the opening reads the store; "warm": the panel draws its last read and
    reads again (timed too: to that read applied)."""
    import asyncio
    import os

    from textual import events

    import tui.widgets.runs_panel as rp
    from engine.datasets import SAMPLE_DIR, load_dataset
    from tui.app import TermnistApp

    ds = load_dataset("mnist", data_dir=SAMPLE_DIR)
    old = os.environ.get("TERMNIST_STATE_DIR")
    os.environ["TERMNIST_STATE_DIR"] = str(store_dir)
    out: dict[str, Any] = {name: [] for name in ("painted_cold_s", "painted_warm_s", "cold_s", "warm_s", "fresh_s",
                                                 "all_rows_s", "form_s")}
    out["rows"] = 0

    async def key(pilot: Any, name: str) -> None:      # no idle wait: the clock runs from here
        event = events.Key(name, None)
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)  # noqa: SLF001 - what Pilot.press does

    async def to(pilot: Any, panel: str) -> None:
        app = pilot.app
        while app.panel != panel:
            before = app.panel
            await key(pilot, "f3")
            while app.panel == before:
                await asyncio.sleep(0.001)
        await pilot.pause()

    async def session(cold: bool) -> None:
        from textual.worker import WorkerCancelled

        app = TermnistApp(load_dataset_fn=lambda name, data_dir: ds, remember=False)
        async with app.run_test(size=(80, 24)) as pilot:
            try:
                await app.workers.wait_for_complete()
            except WorkerCancelled:       # a dataset load superseded by a newer one
                pass
            panel = app.runs_panel
            table = panel.table
            painted: dict[str, Any] = {"armed": False, "t": 0.0}
            render_line = table.render_line

            def spy(y: int) -> Any:            # the table's lines painted, with rows in them
                if painted["armed"] and table.row_count:
                    painted["armed"], painted["t"] = False, time.perf_counter()
                return render_line(y)

            table.render_line = spy  # type: ignore[method-assign]
            if not cold:
                while not panel.loaded:
                    await asyncio.sleep(0.01)
            for _ in range(1 if cold else repeats):
                await to(pilot, "digits")
                loads = panel.loads
                painted["armed"] = True
                t0 = time.perf_counter()
                await key(pilot, "f3")
                while painted["armed"]:
                    await asyncio.sleep(0.0005)
                out["painted_cold_s" if cold else "painted_warm_s"].append(painted["t"] - t0)
                await pilot.pause()                      # Pilot's wait: the process idle again
                out["cold_s" if cold else "warm_s"].append(time.perf_counter() - t0)
                while panel.loads == loads:              # the store read again, applied
                    await asyncio.sleep(0.0005)
                out["fresh_s"].append(time.perf_counter() - t0)
                while panel.table.row_count < len(panel.shown):    # the later chunks
                    await asyncio.sleep(0.001)
                out["all_rows_s"].append(time.perf_counter() - t0)
                out["rows"] = panel.table.row_count
                # the reference: F3 on to the next panel (the same restyle and refresh, no store)
                t0 = time.perf_counter()
                await key(pilot, "f3")
                while app.panel == "runs":
                    await asyncio.sleep(0.0005)
                await pilot.pause()
                out["form_s"].append(time.perf_counter() - t0)

    held = rp.PRELOAD_S
    try:
        for cold in (True, False) if opts.quick else (True, True, True, False):
            rp.PRELOAD_S = 3600.0 if cold else held
            asyncio.run(session(cold))
    finally:
        rp.PRELOAD_S = held
        if old is None:
            os.environ.pop("TERMNIST_STATE_DIR", None)
        else:
            os.environ["TERMNIST_STATE_DIR"] = old
    return out


def run(opts: Options) -> SectionResult:
    res = SectionResult("runs", "Run history")
    d = opts.workdir / "runs-bench"
    d.mkdir(parents=True, exist_ok=True)
    opts.log("runs: recording overhead (default preset, bundled sample)")
    ov = _overhead(opts, d / "record.sqlite")
    n_runs = 1000
    opts.log(f"runs: listing {n_runs} runs")
    ls = _listing(opts, d / "list.sqlite", n_runs)
    opts.log(f"runs: opening the Runs panel with {n_runs} runs (Pilot, 80x24)")
    panel_dir = d / "panel-state"
    panel_dir.mkdir(exist_ok=True)
    _fill(panel_dir / "runs.sqlite", n_runs, 10)
    po = _panel_opening(opts, panel_dir, 3 if opts.quick else 10)
    res.data = {"overhead": ov, "listing": ls, "panel": po}

    share = ov["feed_per_epoch_s"] / ov["epoch_s"]
    t = Table("Run history: recording overhead (default preset, bundled MNIST sample, 1 BLAS thread)",
              ["figure", "value"])
    t.add("epochs", ov["epochs"])
    t.add("epoch wall time (median, s)", f"{ov['epoch_s']:.3f}")
    t.add("recording per epoch (all events, ms)", f"{ov['feed_per_epoch_s'] * 1e3:.2f}")
    t.add("recording / epoch", f"{share:.3%}")
    t.add("one epoch record alone (median, ms)", f"{ov['epoch_record_s'] * 1e3:.3f}")
    t.add("events fed", ov["events"])
    t.add("once per run, before training: open the store, read version and machine (ms)",
          f"{ov['setup_s'] * 1e3:.1f}")
    t.notes.append("recording per epoch = all time inside RunRecorder.feed during the run (the run's row, "
                   "every epoch, heartbeats, the end) / epochs; epoch wall time excludes it; SQLite WAL, "
                   "synchronous=NORMAL")
    res.tables.append(t)
    t2 = Table(f"Run history: listing {ls['runs']:,} runs of 10 epochs (median of repeats)",
               ["query", "wall ms", "CPU ms"])
    t2.add("list() -- the Runs panel: every run, newest first", f"{ls['list_s'] * 1e3:.2f}",
           f"{ls['list_cpu_s'] * 1e3:.2f}")
    t2.add("list(text='adam')", f"{ls['filter_s'] * 1e3:.2f}", f"{ls['filter_cpu_s'] * 1e3:.2f}")
    t2.add("list(sort='best_val_acc')", f"{ls['sort_best_s'] * 1e3:.2f}", f"{ls['sort_best_cpu_s'] * 1e3:.2f}")
    t2.add("get(newest) with its epochs", f"{ls['get_s'] * 1e3:.2f}", f"{ls['get_cpu_s'] * 1e3:.2f}")
    t2.add("open + list() in a fresh process", f"{ls['fresh_process_s'] * 1e3:.2f}", "-")
    t2.notes.append(f"store filled in {ls['fill_s']:.2f} s; {ls['listed']} runs listed; wall time grows with "
                    "the machine's load (see the load average below), CPU time much less")
    res.tables.append(t2)
    t3 = Table(f"Runs panel: opening it with {n_runs:,} runs (Pilot, 80x24), ms", ["figure", "median", "slowest"])
    for label, name in (("cold (no read yet): F3 to the table's rows painted, the store read by the key",
                         "painted_cold_s"),
                        ("warm: F3 to the table's rows painted (the last read)", "painted_warm_s"),
                        ("cold: F3 to the app idle again (Pilot's pause after the rows)", "cold_s"),
                        ("warm: F3 to the app idle again", "warm_s"),
                        ("F3 to the store read again and applied", "fresh_s"),
                        ("F3 to all 1,000 rows in the table (rows past the first 60 come in chunks)", "all_rows_s"),
                        ("reference: F3 from the Runs panel to the next panel, to the app idle (no store)", "form_s")):
        t3.add(label, f"{median(po[name]) * 1e3:.1f}", f"{max(po[name]) * 1e3:.1f}")
    t3.notes.append(f"{po['rows']} rows in the table; {len(po['cold_s'])} cold openings (a new app each), "
                    f"{len(po['warm_s'])} warm ones; 'painted' = the table's render_line first called with rows "
                    f"in it (the first {FIRST_ROWS} are built before); 'idle' = Pilot's pause (the process idle "
                    "again: the later rows, the read behind a warm opening); the reference is what any panel "
                    "switch costs the app (restyle, focus, footer)")
    res.tables.append(t3)
    res.target("recording adds under 1% to an epoch", f"{share:.3%}", "< 1%", share < OVERHEAD_TARGET)
    res.target("listing 1,000 runs (Runs panel query)", f"{ls['list_s'] * 1e3:.1f} ms",
               f"< {LIST_TARGET_S * 1e3:.0f} ms", ls["list_s"] < LIST_TARGET_S)
    cold = median(po["painted_cold_s"])
    res.target("Runs panel opens with 1,000 runs, cold (key to rows painted, median)", f"{cold * 1e3:.0f} ms",
               f"< {PANEL_TARGET_S * 1e3:.0f} ms", cold < PANEL_TARGET_S)
    warm = median(po["painted_warm_s"])
    res.target("Runs panel opens with 1,000 runs, warm (key to rows painted, median)", f"{warm * 1e3:.0f} ms",
               f"< {PANEL_TARGET_S * 1e3:.0f} ms", warm < PANEL_TARGET_S)
    return res
