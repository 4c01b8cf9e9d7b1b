"""Fixtures for the TUI tests: apps wired to small data, settings redirected to tmp."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable

import pytest

from engine.datasets import SAMPLE_DIR, load_dataset
from tests.factories import make_dataset
from tui.app import TermnistApp


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests with asyncio.run (no pytest-asyncio dependency)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
        return True
    return None


@pytest.fixture(autouse=True)
def _no_swallowed_errors(request):
    """Fail a test when a guarded handler (or a run) caught an unexpected exception: @guarded
    keeps the app alive, which must not keep a bug out of sight. A test that provokes one on
    purpose says so with ``@pytest.mark.expect_internal_error``."""
    import logging

    caught: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("termnist.internal")
    logger.addHandler(handler)
    try:
        yield caught
    finally:
        logger.removeHandler(handler)
    if caught and request.node.get_closest_marker("expect_internal_error") is None:
        first = caught[0]
        detail = logging.Formatter().formatException(first.exc_info) if first.exc_info else ""
        pytest.fail(f"{len(caught)} exception(s) swallowed by the app: {first.getMessage()}\n{detail}")
    if not caught and request.node.get_closest_marker("expect_internal_error") is not None:
        pytest.fail("the test expected an exception to be caught, and none was")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    """No test reads or writes the user's real settings or recovery slot."""
    monkeypatch.setenv("TERMNIST_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def synthetic():
    """A tiny learnable 8x8 dataset (600 train / 200 test): training takes milliseconds."""
    return make_dataset(n_train=600, n_test=200, side=8)


@pytest.fixture(scope="session")
def sample():
    """The bundled MNIST sample (10,000 train / 2,000 test), read from the package."""
    return load_dataset("mnist", data_dir=SAMPLE_DIR)


@pytest.fixture
def make_app(tmp_path) -> Callable[..., TermnistApp]:
    """Build a TermnistApp whose every dataset request returns ``dataset``."""

    def build(dataset=None, **kwargs) -> TermnistApp:
        def loader(name, data_dir):
            if dataset is None:
                raise AssertionError("no dataset given to make_app")
            return dataset

        kwargs.setdefault("config_dir", tmp_path / "config")
        return TermnistApp(load_dataset_fn=loader, **kwargs)

    return build


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)
    await pilot.pause(0.02)


async def press(pilot, *keys: str) -> None:
    """Like ``pilot.press`` but without its "wait until the CPU is idle" step, which waits
    a full second per key while a training thread keeps the CPU busy."""
    from textual import events

    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else {"space": " ", "comma": ",", "full_stop": ".",
                                           "minus": "-", "question_mark": "?"}.get(key)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)  # noqa: SLF001 - what Pilot does, minus the idle wait
        await pilot.pause(0.02)


async def settle(pilot) -> None:
    """Wait for running workers (dataset load etc.) and pending messages."""
    from textual.worker import WorkerCancelled

    try:
        await pilot.app.workers.wait_for_complete()
    except WorkerCancelled:      # a dataset load superseded by a newer one
        pass
    await pilot.pause()
    await asyncio.sleep(0)
    await pilot.pause()
