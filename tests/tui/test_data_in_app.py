"""The data panel in the app: missing data says where it looked; sample, download (against a
local HTTP server on 127.0.0.1, never the internet) and directory; quitting mid-download;
Fashion-MNIST class names in the preview. Plus the panel's pure helpers (tui.data_status)."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Static

from engine import datasets as ds
from engine import download as dl
from engine.datasets import IDX_FILES, FileCheck
from engine.errors import DatasetNotFoundError
from engine.idx import write_idx
from tests.local_http import LocalServer
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui import data_status
from tui import messages as msg
from tui.controllers.downloads import DownloadProgress
from tui.app import TermnistApp
from tui.screens.data_screen import DataScreen
from tui.screens.digit_detail import DigitScreen
from tui.screens.help import HelpScreen

GZ = [f"{n}.gz" for n in IDX_FILES]
SMALL = {"hidden": "16", "epochs": "1", "batch_size": "64", "val_size": "100", "lr": "0.1"}
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


# --- a local server and a synthetic MNIST ----------------------------------------------------

def write_set(directory: Path, n_train: int = 200, n_test: int = 50, seed: int = 3) -> Path:
    """The four canonical IDX .gz files of a small random 28x28 set, in ``directory``."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for (fx, fy), n in ((IDX_FILES[:2], n_train), (IDX_FILES[2:], n_test)):
        write_idx(directory / f"{fx}.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(directory / f"{fy}.gz", (np.arange(n) % 10).astype(np.uint8))
    return directory


class Server(LocalServer):
    """Serves ``files`` {url path: bytes} from 127.0.0.1 (with Range requests for resuming);
    anything else is a 404. Paths under /slow/ are sent in ``chunk``-byte pieces with
    ``delay`` seconds between them."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.chunk, self.delay = 8192, 0.02
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if rng and int(rng.group(1)) < len(body):
                    start = int(rng.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                body = body[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not self.path.startswith("/slow/"):
                    self.wfile.write(body)
                    return
                try:
                    for i in range(0, len(body), server.chunk):
                        if server.closing.is_set():
                            return
                        self.wfile.write(body[i : i + server.chunk])
                        self.wfile.flush()
                        time.sleep(server.delay)
                except OSError:          # the client went away (cancelled): fine
                    pass

        self.start(Handler)

    def serve(self, prefix: str, directory: Path) -> None:
        for name in GZ:
            self.files[f"{prefix}{name}"] = (directory / name).read_bytes()

    def close(self) -> None:
        self.closing.set()
        self.stop()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """An install where no MNIST is anywhere: empty cache, no system copy, no $TERMNIST_DATA,
    and (unless a test puts it back) no bundled sample either."""
    monkeypatch.setattr(ds, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(ds, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(ds, "SAMPLE_DIR", tmp_path / "no-sample")
    monkeypatch.delenv("TERMNIST_DATA", raising=False)
    monkeypatch.delenv("TERMNIST_MIRROR", raising=False)
    return tmp_path


def publish(monkeypatch, directory: Path) -> None:
    """Make the registry's 'mnist' checksums those of the set in ``directory``."""
    checks = tuple(FileCheck(n, sha256=hashlib.sha256(gzip.decompress(
        (directory / f"{n}.gz").read_bytes())).hexdigest()) for n in IDX_FILES)
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(ds.DATASETS["mnist"], files=checks))


@pytest.fixture
def registry(monkeypatch, tmp_path, nowhere, server):
    """'mnist' points at a synthetic set served by the local server (a 404 mirror first)."""
    src = write_set(tmp_path / "published")
    publish(monkeypatch, src)
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{server.url}/missing/", f"{server.url}/good/"))
    server.serve("/good/", src)
    return server


def real_app(tmp_path, **kwargs) -> TermnistApp:
    """An app on the engine's own search (no injected loader)."""
    kwargs.setdefault("config_dir", tmp_path / "config")
    return TermnistApp(autosave=False, **kwargs)


async def panel_shown(pilot, what: str = "the data panel") -> DataScreen:
    """Wait until the data panel is on screen (drawn, not only pushed)."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, DataScreen)
                   and "Where termnist looked" in screen_text(app), what=what)
    return app.screen


def data_screen(app) -> DataScreen:
    assert isinstance(app.screen, DataScreen), type(app.screen)
    return app.screen


def status(app) -> str:
    return str(app.query_one("#status", Static).render())


# --- missing data -----------------------------------------------------------------------------

async def test_missing_data_opens_the_panel_with_the_places_searched(make_app):
    searched = ("$TERMNIST_DATA (not set)", "/srv/cache/termnist/mnist (no such directory)",
                "/usr/share/datasets/mnist (no such directory)", "bundled sample (missing)")

    def loader(name, data_dir):
        raise DatasetNotFoundError("MNIST not found", searched)

    app = make_app(None)
    app.datasets._loader = loader
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the data panel")
        text = screen_text(app)
        assert "MNIST was not found" in text
        for i, place in enumerate(searched, 1):
            assert f"{i}. {place}" in text
        for choice in ("Train on the bundled sample now", "Download MNIST", "Use a directory"):
            assert choice in text
        assert "Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0)" in text
        assert app.focused.id == "download"              # keyboard: Enter downloads
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DataScreen), what="closed")
        assert "^d Data" in screen_text(app).splitlines()[-1]     # in the footer
        await press(pilot, "ctrl+d")                             # back any time
        await panel_shown(pilot, "ctrl+d")
        assert "4. bundled sample (missing)" in screen_text(app)
        await press(pilot, "f1")                                 # help works from the panel
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "Ctrl+D, F4" in screen_text(app)


async def test_choosing_the_sample_trains_on_the_sample(make_app, synthetic):
    sample = dataclasses.replace(synthetic, name="mnist-sample", title="MNIST", is_sample=True,
                                 source="bundled sample")
    asked = []

    def loader(name, data_dir):
        asked.append(name)
        if name == "mnist-sample":
            return sample
        raise DatasetNotFoundError("MNIST not found", ("/nowhere/mnist (no such directory)",))

    app = make_app(None)
    app.datasets._loader = loader
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the data panel")
        app.form.set_values(SMALL)
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.trainer.run_count == 1, what="a run")
        await wait_for(pilot, lambda: not app.training, what="the run to end")
        assert not isinstance(app.screen, DataScreen)
        assert app.form.values()["dataset"] == "mnist-sample" and app.dataset is sample
        assert app.view.model_dataset == "mnist-sample"
        assert any("run 1 completed" in line for line in app.epoch_log.lines), app.epoch_log.lines[-5:]
        assert "bundled MNIST sample, not the full set" in status(app)
        assert asked.count("mnist-sample") >= 1 and not app.errors_seen


# --- download -------------------------------------------------------------------------------

async def test_download_shows_progress_and_mirror_failures_then_loads_the_full_set(registry, tmp_path):
    seen: list[object] = []
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34), message_hook=seen.append) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the data panel")
        panel = data_screen(app)
        assert panel.report.searched[1] == f"{tmp_path / 'cache' / 'mnist'} (no such directory)"
        text = screen_text(app)
        assert "2. /tmp/" in text and "4. bundled sample (missing from this install" in text
        assert app.form.dataset_states["mnist"] == "missing"
        await press(pilot, "d")
        await wait_for(pilot, lambda: app.dataset is not None, what="the downloaded set")
        await settle(pilot)
        assert not isinstance(app.screen, DataScreen)           # done: the panel closed
        assert app.dataset.name == "mnist" and not app.dataset.is_sample
        assert app.dataset.x_train.shape == (200, 28, 28)
        assert "MNIST (200 train images), the full set" in status(app)
        # progress: bytes of each file, with the panel's bar and text following it
        infos = [m.update.info for m in seen
                 if isinstance(m, msg.DownloadUpdate) and isinstance(m.update, DownloadProgress)]
        assert {i.file for i in infos} == set(GZ)
        assert all(re.search(r"^file [1-4]/4: \S+  \d+(\.\d)? k?B / \d+(\.\d)? k?B +\d+%", i.text())
                   for i in infos), [i.text() for i in infos]
        assert {i.file for i in infos if i.done == i.total} == set(GZ)     # each file's end
        assert panel.progress_info is infos[-1] and panel.progress_info.done == panel.progress_info.total
        # the 404 mirror: one line per file, shown in the panel and the log
        fail = f"mirror failed: {registry.url}/missing/{GZ[0]}: HTTP 404 Not Found"
        assert fail in panel.log_lines
        assert f"! download: {fail}" in app.epoch_log.lines
        cache = tmp_path / "cache" / "mnist"
        assert sorted(p.name for p in cache.iterdir()) == sorted(GZ)     # no .part left
        assert app.form.dataset_states["mnist"] == "found"
        assert not app.errors_seen


def test_quit_during_a_slow_download_stops_it_promptly_and_keeps_only_the_part(
        registry, tmp_path, monkeypatch):
    big = write_set(tmp_path / "big", n_train=2500, n_test=50)      # ~2 MB of train images
    registry.serve("/slow/", big)
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{registry.url}/slow/",))
    app = real_app(tmp_path)
    quit_at: list[float] = []

    async def run() -> None:
        async with app.run_test(size=(100, 34)) as pilot:
            await settle(pilot)
            await panel_shown(pilot, "the panel")
            panel = data_screen(app)
            await press(pilot, "d")
            await wait_for(pilot, lambda: panel.progress_info is not None
                           and panel.progress_info.rate is not None, what="a measured rate")
            assert re.search(r"file 1/4: train-images-idx3-ubyte.gz  .* kB/s  ETA \d+:\d\d",
                             panel.status_text), panel.status_text
            assert "downloading MNIST 1/4" in status(app) and "ETA" in status(app)
            assert "Cancel the download" in screen_text(app)
            quit_at.append(time.monotonic())
            await press(pilot, "ctrl+q")
            await pilot.pause(0.1)

    start = time.monotonic()
    asyncio.run(asyncio.wait_for(run(), 30))        # returns once every worker thread is done
    elapsed = time.monotonic() - quit_at[0]
    assert elapsed < 3.0, f"exit took {elapsed:.1f}s after ctrl+q"   # the rest takes ~5 s
    assert app.return_code == 0 and time.monotonic() - start < 25
    # the engine's own thread stops at its next chunk: the .part stays, never the final name
    for t in threading.enumerate():
        if t.name.startswith("termnist-download"):
            assert t.daemon
            t.join(5)
            assert not t.is_alive()
    cache = tmp_path / "cache" / "mnist"
    assert not (cache / GZ[0]).exists()
    part = cache / f"{GZ[0]}.part"
    assert 0 < part.stat().st_size < len((big / GZ[0]).read_bytes())


async def test_cancel_keeps_the_part_and_download_resumes(registry, tmp_path, monkeypatch):
    slow = write_set(tmp_path / "slow", n_train=2500, n_test=50)
    publish(monkeypatch, slow)
    registry.serve("/slow/", slow)
    monkeypatch.setitem(dl.MIRRORS, "mnist", (f"{registry.url}/slow/",))
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the panel")
        panel = data_screen(app)
        await press(pilot, "d")
        await wait_for(pilot, lambda: panel.progress_info is not None, what="progress")
        await press(pilot, "escape")                             # it goes on in the background
        await wait_for(pilot, lambda: not isinstance(app.screen, DataScreen), what="closed")
        assert "downloading MNIST 1/4" in status(app)
        await press(pilot, "ctrl+d")                             # and shows again
        panel = await panel_shown(pilot, "reopened")
        assert panel.status_text.startswith("file 1/4: train-images-idx3-ubyte.gz")
        await press(pilot, "c")
        await wait_for(pilot, lambda: not app.downloads.downloading, what="cancelled")
        assert "Download cancelled; the partial file is kept" in panel.status_text
        assert "Download MNIST" in screen_text(app)              # offered again
        part = tmp_path / "cache" / "mnist" / f"{GZ[0]}.part"
        await wait_for(pilot, lambda: not any(t.name.startswith("termnist-download") and t.is_alive()
                                              for t in threading.enumerate()), what="thread end")
        assert part.exists() and not part.with_suffix("").exists()
        registry.delay = 0.0                                     # the network got better
        await press(pilot, "d")
        await wait_for(pilot, lambda: app.dataset is not None, what="the resumed download")
        assert app.dataset.x_train.shape == (2500, 28, 28)
        assert any("resuming at byte" in line for line in app.downloads.lines), app.downloads.lines


async def test_download_with_a_data_directory_goes_into_it(registry, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    app = real_app(tmp_path, data_dir=str(mine))
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        panel = await panel_shown(pilot)
        assert panel.report.searched == (f"{mine} (no IDX files or .npz here)",
                                         f"{mine / 'mnist'} (no such directory)")
        assert f"looks only in {mine}" in panel.report.hint
        await press(pilot, "d")
        await wait_for(pilot, lambda: app.dataset is not None, what="the downloaded set")
        assert app.datasets.data_dir == str(mine) and app.dataset.source == str(mine / "mnist")
        assert sorted(p.name for p in (mine / "mnist").iterdir()) == sorted(GZ)
        assert not (tmp_path / "cache" / "mnist").exists()


# --- directory -------------------------------------------------------------------------------

async def test_directory_bad_then_good_is_used_and_remembered(nowhere, tmp_path):
    good = write_set(tmp_path / "my data" / "mnist", n_train=120, n_test=30)
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the panel")
        panel = data_screen(app)
        await press(pilot, "o")
        field = panel.query_one("#dir-input", Input)
        assert app.focused is field
        field.value = str(tmp_path / "nope")
        await press(pilot, "enter")
        await pilot.pause()
        error = str(panel.query_one("#dir-error", Static).render())
        assert f"no MNIST there: {tmp_path / 'nope'} (no such directory)" in error
        assert isinstance(app.screen, DataScreen)                # still open, nothing changed
        (tmp_path / "half").mkdir()
        write_idx(tmp_path / "half" / f"{IDX_FILES[0]}.gz", np.zeros((3, 28, 28), np.uint8))
        field.value = str(tmp_path / "half")
        await press(pilot, "enter")
        await pilot.pause()
        assert "incomplete: missing train-labels-idx1-ubyte[.gz]" in str(
            panel.query_one("#dir-error", Static).render())
        field.value = str(tmp_path / "my data")                  # holds mnist/: fine too
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.dataset is not None, what="the directory's set")
        assert not isinstance(app.screen, DataScreen)
        assert app.datasets.data_dir == str(tmp_path / "my data")
        assert app.dataset.source == str(good) and len(app.dataset.y_train) == 120
        assert "MNIST (120 train images), the full set" in status(app)
        await press(pilot, "ctrl+q")
    saved = json.loads((tmp_path / "config" / "settings.json").read_text())
    assert saved["ui"]["data_dir"] == str(tmp_path / "my data")

    again = real_app(tmp_path)                                   # remembered next time
    async with again.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: again.dataset is not None, what="the remembered set")
        assert again.datasets.data_dir == str(tmp_path / "my data") and again.dataset.source == str(good)
        assert not isinstance(again.screen, DataScreen)


# --- the bundled sample as a fallback ---------------------------------------------------------

async def test_asking_for_the_sample_offers_no_full_set(nowhere, tmp_path, monkeypatch):
    """--dataset mnist-sample: the user chose the sample, so no panel pops up to offer the full set."""
    monkeypatch.setattr(ds, "SAMPLE_DIR", Path(ds.__file__).resolve().parent / "data" / "mnist-sample")
    app = real_app(tmp_path, dataset="mnist-sample")
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.dataset is not None and app.dataset.is_sample, what="the sample")
        await pilot.pause(0.3)
        assert app.form_dataset() == "mnist-sample" and not isinstance(app.screen, DataScreen)


async def test_falling_back_to_the_sample_says_so_once(nowhere, tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "SAMPLE_DIR", Path(ds.__file__).resolve().parent / "data" / "mnist-sample")
    app = real_app(tmp_path)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        await panel_shown(pilot, "the panel")
        text = screen_text(app)
        assert "The full MNIST set was not found, so termnist uses the bundled sample" in text
        assert "bundled sample (10,000 train / 2,000 test images)" in text
        assert str(tmp_path / "cache" / "mnist") in data_screen(app).report.searched[1]
        assert "bundled MNIST sample, not the full set" in status(app)
        assert app.form.dataset_states["mnist"] == "sample"
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DataScreen), what="closed")
        assert "mnist (sample)" in screen_text(app)              # the dataset field says so
        assert "full MNIST not found: the bundled sample stands in" in screen_text(app)
        app.form.set_values({"dataset": "fashion-mnist"})
        await panel_shown(pilot, "fashion missing")
        assert "Fashion-MNIST was not found" in screen_text(app)
        assert "Train on the bundled MNIST sample instead" in screen_text(app)
        await press(pilot, "escape")
        app.form.set_values({"dataset": "mnist"})
        await wait_for(pilot, lambda: app.dataset is not None and app.dataset.name == "mnist",
                       what="the sample again")
        await settle(pilot)
        assert not isinstance(app.screen, DataScreen)            # said once per session
        # the form keeps the user's validation size: a run fits it to the set it trains on
        # (that run only), so nothing chosen for the sample outlives it
        assert app.form.values()["val_size"] == "10000"
        full = write_set(tmp_path / "full", n_train=2500, n_test=20)
        await press(pilot, "ctrl+d")
        panel = await panel_shown(pilot, "ctrl+d")
        assert panel.report.state == "sample"
        await press(pilot, "o")
        panel.query_one("#dir-input", Input).value = str(full)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: not app.dataset.is_sample, what="the directory's set")
        assert app.form.values()["val_size"] == "10000"
        assert app.form.dataset_states["mnist"] == "found" and app.datasets.data_dir == str(full)
        assert "MNIST (2,500 train images), the full set" in status(app)


# --- Fashion-MNIST names ----------------------------------------------------------------------

async def test_fashion_mnist_class_names_caption_the_preview(make_app, synthetic):
    fashion = dataclasses.replace(synthetic, name="fashion-mnist", title="Fashion-MNIST",
                                  class_names=FASHION, source="/data/fashion-mnist")
    app = make_app(fashion)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Fashion-MNIST (600 train images)" in status(app)
        await press(pilot, "f3", "f3")
        shown = app.preview.captions()
        assert all(re.fullmatch(r"\s+\? / \((.+)\)", c) for c in shown), shown
        truths = [FASHION[int(y)] for y in synthetic.y_test[: len(shown)]]
        assert [re.fullmatch(r".*\((.+)\)", c).group(1) for c in shown] == truths
        n = len(fashion.y_test)
        proba = np.full((n, 10), 0.01, dtype=np.float32)
        proba[:, 5] = 0.91                                       # everything is a Sandal
        from tui.runner import make_predictions

        app.post_message(msg.PredictionsReady(make_predictions(proba, fashion.y_test, "epoch 1")))
        await pilot.pause()
        first = app.preview.captions()[0]
        assert first.startswith(("X Sandal 91%", "  Sandal 91%")) and f"({truths[0]})" in first
        assert "Sandal" in screen_text(app)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DigitScreen), what="zoom")
        text = screen_text(app)
        assert all(name in text for name in FASHION)             # the ten bars are named
        assert "guess Sandal" in text


# --- pure helpers -----------------------------------------------------------------------------

def test_option_labels_and_notes():
    assert data_status.option_label("mnist", "found") == "mnist"
    assert data_status.option_label("mnist", "sample") == "mnist (sample)"
    assert data_status.option_label("kmnist", "missing") == "kmnist (download)"
    assert "Ctrl+D" in data_status.state_note("fashion-mnist", "missing")
    assert data_status.state_note("mnist", "found") == ""


def test_data_report_states(nowhere, tmp_path, monkeypatch):
    r = data_status.data_report("mnist")
    assert r.state == "missing" and r.downloadable
    assert r.searched[0] == "$TERMNIST_DATA (not set)" and "missing from this install" in r.searched[-1]
    monkeypatch.setattr(ds, "SAMPLE_DIR", Path(ds.__file__).resolve().parent / "data" / "mnist-sample")
    r = data_status.data_report("mnist")
    assert r.state == "sample" and r.using_sample and r.place == "bundled sample"
    write_set(tmp_path / "cache" / "mnist", n_train=20, n_test=10)
    r = data_status.data_report("mnist")
    assert r.state == "found" and r.place == str(tmp_path / "cache" / "mnist")
    assert data_status.data_report("fashion-mnist").state == "missing"
    r = data_status.data_report("mnist", tmp_path / "elsewhere")
    assert r.state == "missing" and "looks only in" in r.hint


def test_check_directory(tmp_path):
    good = write_set(tmp_path / "d", n_train=20, n_test=10)
    assert data_status.check_directory("mnist", str(good)) == (good, "")
    assert data_status.check_directory("mnist", "d", cwd=tmp_path) == (good, "")
    parent = write_set(tmp_path / "p" / "mnist", n_train=20, n_test=10).parent
    assert data_status.check_directory("mnist", str(parent)) == (parent, "")   # holds mnist/
    path, why = data_status.check_directory("mnist", "")
    assert path is None and "type a directory" in why
    path, why = data_status.check_directory("kmnist", str(tmp_path / "x"))
    assert path is None and why == f"no Kuzushiji-MNIST there: {tmp_path / 'x'} (no such directory)"


def test_download_meter_throttles_and_measures():
    t = [0.0]
    meter = data_status.DownloadMeter("mnist", IDX_FILES, interval=0.1, clock=lambda: t[0])
    first = meter.update(GZ[0], 0, 1_000_000)
    assert first is not None and first.rate is None and first.file_index == 1
    t[0] = 0.05
    assert meter.update(GZ[0], 50_000, 1_000_000) is None         # too soon
    t[0] = 1.0
    info = meter.update(GZ[0], 250_000, 1_000_000)
    assert info.rate == pytest.approx(250_000.0)
    assert info.text() == ("file 1/4: train-images-idx3-ubyte.gz  250.0 kB / 1.0 MB   25%  "
                           "250.0 kB/s  ETA 0:03")
    assert info.short() == "downloading MNIST 1/4 25% 250.0 kB/s ETA 0:03"
    t[0] = 1.01
    assert meter.update(GZ[0], 1_000_000, 1_000_000) is not None  # a file's end always shows
    nxt = meter.update(GZ[3], 10, 100)
    assert nxt.file_index == 4 and nxt.rate is None               # rate restarts per file

