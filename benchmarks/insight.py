"""Seeing inside the model: the time of each view's computation (engine/insight) for a
784-512-256-10 ReLU model on the 10,000 test images, with one BLAS thread (the app computes
views beside training). The model is trained for one epoch first, so the mistakes, units and
hints look at a real model; timings do not depend on the weights' values. Each figure is the
median of 7 runs (3 with --quick).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import Options, SectionResult, Table, blas_threads, data_label, fmt_ms, load_data, median

VIEW_TARGET = 0.200      # seconds: "well under 200 ms each"


def _time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up (buffers, caches)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return median(runs)


def run(opts: Options) -> SectionResult:
    import numpy as np

    from engine.datasets import to_features
    from engine.insight import confusion as cf
    from engine.insight import drawing, health, mistakes, robustness, units
    from engine.training import TrainConfig, TrainingSession, predict_images

    ds = load_data(opts)
    repeat = 3 if opts.quick else 7
    cfg = TrainConfig(hidden=(512, 256), epochs=1, val_size=0, lr=0.05, batch_size=128)
    res = SectionResult("insight", "Seeing inside the model")
    with blas_threads(1):
        session = TrainingSession(cfg, ds)
        for _ in session.run():
            pass
        model = session.checkpoint().model
        x, y = ds.x_test, ds.y_test.astype(np.int64)
        n = len(y)
        probs = predict_images(model, x, ds.max_value, model.dtype)
        preds = probs.argmax(axis=1)
        feats = to_features(x, ds.max_value)
        one = feats[0]
        batch = feats[:512]
        canvas = np.zeros((280, 280))
        canvas[40:240, 120:160] = 1.0
        history = session.history
        signals = health.measure_signals(model, batch, y[:512])
        views: list[tuple[str, Callable[[], Any], bool]] = [
            (f"predictions (forward pass, {n:,} images; shared by the views below)",
             lambda: predict_images(model, x, ds.max_value), False),
            (f"confusion matrix + per-class + pairs ({n:,}; from predictions)",
             lambda: cf.confusion(y, preds, 10), True),
            (f"confusion matrix including the forward pass ({n:,})",
             lambda: cf.confusion(y, predict_images(model, x, ds.max_value).argmax(1), 10), False),
            ("images of one confusion cell", lambda: cf.cell_indices(y, preds, 4, 9), True),
            (f"worst mistakes, top 20 with top 3 ({n:,}; from probabilities)",
             lambda: mistakes.worst_mistakes(probs, y, 20), True),
            ("first-layer weight images (512 units, diverging scale)", lambda: units.weight_images(model), True),
            ("... drawn as ASCII, one page of 16 units",
             lambda: [units.render_diverging(im) for im in units.weight_images(model)[:16]], True),
            ("every layer's activations for one digit (strip + output bars)",
             lambda: units.layer_strip(model, one), True),
            ("units most responsive to one digit", lambda: units.responsive_units(model, one), True),
            ("units most responsive to a class (<= 2,000 class + 2,000 baseline images)",
             lambda: units.class_units(model, feats, y, 3), True),
            ("health signals on a 512-image batch (gradients, dead units)",
             lambda: health.measure_signals(model, batch, y[:512]), True),
            ("hints from history + signals", lambda: health.hints(history, signals), True),
            ("drawing: 280x280 canvas -> 28x28 -> probabilities",
             lambda: drawing.predict_drawing(model, canvas), True),
            ("robustness: one level of one perturbation (2,000 images)",
             lambda: robustness.robustness_curves(model, x, y, ds.max_value, {"rotation": (20.0,)}, limit=2000),
             False),
            (f"robustness: all curves, {sum(len(v) for v in robustness.LEVELS.values())} levels ({n:,} images)",
             lambda: robustness.robustness_curves(model, x, y, ds.max_value), False),
            ("robustness: all curves (2,000 images, what a panel would use)",
             lambda: robustness.robustness_curves(model, x, y, ds.max_value, limit=2000), False),
        ]
        table = Table(f"Insight views, 784-512-256-10, {data_label(opts)}, 1 BLAS thread",
                      ["view", "median", "target"])
        for name, fn, is_view in views:
            reps = 1 if (not is_view and not opts.quick) else repeat
            t = _time(fn, reps)
            table.add(name, fmt_ms(t), "< 200 ms" if is_view else "- (not a single view)")
            res.data[name] = t
            if is_view:
                res.target(name, fmt_ms(t), "< 200 ms", t < VIEW_TARGET)
    table.notes.append(f"median of {repeat} runs after a warm-up (robustness 'all curves': one run); "
                       f"one epoch of training first (test accuracy {float(np.mean(preds == y)):.2%})")
    res.tables.append(table)
    with blas_threads(1):
        _app_views(res, model, ds, history, 1 if opts.quick else repeat, opts)
    _screen_views(res, ds, session.checkpoint(), probs, repeat, opts)
    return res


def _app_views(res: SectionResult, model: Any, ds: Any, history: Any, repeat: int, opts: Options) -> None:
    """The Units, Health and Robustness views (tui/insight) opened in a headless app at 120x40:
    a new view mounted, unavailable + compute + show, until the screen is painted."""
    import asyncio

    from textual.app import App

    from tui.insight import ModelInput
    from tui.insight.health import HealthView
    from tui.insight.robustness import RobustnessView
    from tui.insight.units import UnitGrid, UnitsView

    inp = ModelInput(model, ds, tuple(history), "epoch 1",
                     extra={"step_losses": [2.3 * 0.99 ** i for i in range(300)], "batch_size": 128})
    table = Table(f"Insight views in the app at 120x40 (headless), 784-512-256-10, {data_label(opts)}",
                  ["view", "compute", "show + paint", "open (mount to painted)", "target"])

    async def painted(pilot: Any) -> None:
        """Every pending message handled, then one frame laid out and drawn (what Pilot.pause
        does, without its wait for the CPU to go idle, which would add its own sleeps)."""
        await pilot._wait_for_screen()          # noqa: SLF001 - the exact frame, for timing
        pilot.app.screen._on_timer_update()     # noqa: SLF001

    async def measure() -> None:
        app: App[None] = App()
        async with app.run_test(size=(120, 40)) as pilot:
            views: list[tuple[str, Any, bool]] = [("Units", UnitsView, True), ("Health", HealthView, True),
                                                  ("Robustness", RobustnessView, False)]
            for name, cls, has_target in views:
                computes, shows, opens = [], [], []
                for _ in range(repeat + 1):                     # the first is a warm-up
                    t0 = time.perf_counter()
                    view: Any = cls()
                    await app.mount(view)
                    await painted(pilot)
                    assert view.unavailable(inp) is None
                    t1 = time.perf_counter()
                    result = view.compute(inp)
                    t2 = time.perf_counter()
                    view.show(result)
                    await painted(pilot)
                    t3 = time.perf_counter()
                    computes.append(t2 - t1)
                    shows.append(t3 - t2)
                    opens.append(t3 - t0)
                    if cls is UnitsView:
                        grid = view.query_one(UnitGrid)
                        turns = []
                        for _ in range(repeat):
                            t4 = time.perf_counter()
                            view.action_page(1)
                            await painted(pilot)
                            turns.append(time.perf_counter() - t4)
                        res.data["units page turn"] = median(turns)
                        res.data["units per page at 120x40"] = grid.per_page
                    await view.remove()
                c, sh, op = median(computes[1:]), median(shows[1:]), median(opens[1:])
                res.data[f"{name} view: compute"] = c
                res.data[f"{name} view: show + paint"] = sh
                res.data[f"{name} view: open"] = op
                table.add(f"{name} view", fmt_ms(c), fmt_ms(sh), fmt_ms(op),
                          "< 200 ms" if has_target else "- (compute in a worker, stated)")
                if has_target:
                    res.target(f"{name} view opens at 120x40", fmt_ms(op), "< 200 ms", op < VIEW_TARGET)

    asyncio.run(measure())
    table.add("Units view: page turn (PgDn to painted)", "-", fmt_ms(res.data["units page turn"]), "-", "-")
    table.notes.append(f"median of {repeat} after a warm-up; the Units grid shows "
                       f"{res.data['units per page at 120x40']} units a page at 120x40; the Robustness compute "
                       "runs all 4 perturbations (16 levels) on its fixed 1,000-image sample")
    res.tables.append(table)


# ------------------------------------------------------------------ the views in the app (F9)
APP_SIZE = (120, 40)
THINK_S = 0.5     # between two keys, as a person reading the view (the screen mounts the next views then)


async def _open_once(ds: Any, ckpt: Any, probs: Any) -> dict[str, float]:
    """One app at 120x40 under Pilot: F9 to the confusion matrix drawn, Tab to each next view
    drawn, and back to the first (cached). ``probs``: the app already has the test-set
    probabilities (as after an epoch end), else None (a cold open: the forward pass too)."""
    import asyncio

    from textual import events

    from tui.app import TermnistApp
    from tui.runner import make_predictions
    from tui.screens.insight import InsightScreen

    from textual.worker import WorkerCancelled

    app = TermnistApp(load_dataset_fn=lambda name, data_dir: ds, remember=False, autosave=False, trainer="thread")
    out: dict[str, float] = {}
    async with app.run_test(size=APP_SIZE) as pilot:
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        while not app.frozen:              # the warm-up a second after start (tui/heap.py) is over
            await asyncio.sleep(0.01)
        await pilot.pause()
        app.model = ckpt
        app.view.predictions = make_predictions(probs, ds.y_test, "loaded model") if probs is not None else None

        async def until(cond: Any) -> None:
            while not cond():
                await asyncio.sleep(0.001)
            await pilot.pause(0)           # the screen processed its pending messages: drawn

        def key(name: str) -> None:
            # what Pilot.press does, minus its wait for an idle CPU (a second on a busy machine)
            event = events.Key(name, None)
            event.set_sender(app)
            assert app._driver is not None  # noqa: SLF001
            app._driver.send_message(event)  # noqa: SLF001

        t0 = time.perf_counter()
        key("f9")
        await until(lambda: isinstance(app.screen, InsightScreen) and app.screen.computed >= 1)
        out["confusion"] = time.perf_counter() - t0
        screen = app.screen
        assert isinstance(screen, InsightScreen)
        names = [spec.name for spec in screen.specs]
        for name in names[1:]:
            await asyncio.sleep(THINK_S)
            t0 = time.perf_counter()
            key("tab")
            if name == "robustness":
                # its curves take a worker ~0.5 s: the tab (view mounted, "computing...") first
                await until(lambda n=name: screen.active == n and (n in screen.computing or n in screen.shown))
                out["robustness: tab drawn, curves computing"] = time.perf_counter() - t0
            await until(lambda n=name: n in screen.shown)
            out[name] = time.perf_counter() - t0
        await asyncio.sleep(THINK_S)
        t0 = time.perf_counter()
        key("tab")
        await until(lambda: screen.active == names[0])
        out["back to the first tab (cached)"] = time.perf_counter() - t0
        key("escape")
        await until(lambda: not isinstance(app.screen, InsightScreen))
        t0 = time.perf_counter()
        key("f9")
        await until(lambda: app.screen is screen)
        out["F9 again (the screen is kept; same model)"] = time.perf_counter() - t0
    return out


def _screen_views(res: SectionResult, ds: Any, ckpt: Any, probs: Any, repeat: int, opts: Options) -> None:
    """Each view of the Insight screen opening, key to drawn, under Pilot at 120x40."""
    import asyncio

    table = Table(f"Insight screen (F9) in the app, {APP_SIZE[0]}x{APP_SIZE[1]}, 784-512-256-10, "
                  f"{data_label(opts)}: key to drawn", ["view", "probabilities known", "cold", "target"])
    runs: dict[str, list[dict[str, float]]] = {"known": [], "cold": []}
    reps = repeat
    with blas_threads(1):
        for _ in range(reps):
            runs["known"].append(asyncio.run(_open_once(ds, ckpt, probs)))
            runs["cold"].append(asyncio.run(_open_once(ds, ckpt, None)))
    for name in runs["known"][0]:
        known = median([r[name] for r in runs["known"]])
        cold = median([r[name] for r in runs["cold"]])
        table.add(name, fmt_ms(known), fmt_ms(cold), "< 200 ms")
        res.data[f"app: {name} (probabilities known)"] = known
        res.data[f"app: {name} (cold)"] = cold
        res.target(f"app: {name} opens (probabilities known)", fmt_ms(known), "< 200 ms", known < VIEW_TARGET)
    table.notes.append(f"median of {reps} app sessions each; 'probabilities known': the app has the test set's "
                       "probabilities of this model (after an epoch end, or a load), 'cold': the view computes "
                       "them (one forward pass, shared by the next tabs); the first row includes pushing the "
                       f"screen; Tab switches to the next view, pressed {THINK_S:.1f} s after the previous view "
                       "was drawn (a person reading it: the screen mounts the next hidden view then); a view is "
                       "mounted when its tab is first shown or in that pause; F9 is pressed once the app's "
                       "warm-up a second after its start is over (tui/heap.py)")
    res.tables.append(table)
