"""Issue #11 check: make one RunView handler raise (FAULT=name) or record which tests reach
each handler (FAULT=record). Results in $FAULT_OUT (json)."""
import json
import os

import pytest

NAMES = ("points", "progress", "_epoch_ended")
reached: dict[str, set[str]] = {n: set() for n in NAMES}
current = {"test": None}


def pytest_configure(config):
    from tui import run_view

    mode = os.environ.get("FAULT", "record")
    for name in NAMES:
        real = getattr(run_view.RunView, name)

        def wrapper(self, *a, _real=real, _name=name, **k):
            if current["test"]:
                reached[_name].add(current["test"])
            if mode == _name:
                raise RuntimeError(f"injected fault in RunView.{_name}")
            return _real(self, *a, **k)

        setattr(run_view.RunView, name, wrapper)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    current["test"] = item.nodeid
    yield
    current["test"] = None


def pytest_sessionfinish(session, exitstatus):
    failed = [r.nodeid for r in session.config.pluginmanager.get_plugin("terminalreporter").stats.get("failed", [])]
    errors = [r.nodeid for r in session.config.pluginmanager.get_plugin("terminalreporter").stats.get("error", [])]
    with open(os.environ.get("FAULT_OUT", "/tmp/fault/out.json"), "w") as fh:
        json.dump({"reached": {k: sorted(v) for k, v in reached.items()}, "failed": failed,
                   "errors": errors}, fh, indent=1)
