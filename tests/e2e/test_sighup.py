"""End to end in real terminals: a dropped connection (SIGHUP, the terminal vanishing),
resuming the cut run, Ctrl+C, the terminal left sane, and colour-free mistake markers.

`termnist` runs in a pseudo-terminal of its own (pty.fork) or in tmux, on the bundled MNIST
sample, with its settings and recovery slot in a temporary directory
($TERMNIST_CONFIG_DIR, $TERMNIST_STATE_DIR). The tmux tests skip where tmux is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import SAMPLE_DIR
from tests.e2e.tmux import Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
F5 = b"\x1b[15~"
FORM = {"dataset": "mnist", "hidden": "16", "epochs": "500", "batch_size": "64", "val_size": "500",
        "lr": "0.1", "optimizer": "momentum", "seed": "0"}
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|[PX^_].*?\x1b\\|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>78])")


def write_settings(config_dir: Path, **form: str) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    # sample_ok: the user already chose to work on the bundled sample (no data prompt)
    (config_dir / "settings.json").write_text(json.dumps({"form": {**FORM, **form}, "ui": {"sample_ok": True}}))


def environment(tmp: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "TERM": "xterm-256color", "TERMNIST_CONFIG_DIR": str(tmp / "config"),
           "TERMNIST_STATE_DIR": str(tmp / "state"), "TERMNIST_LOG_DIR": str(tmp / "log")}
    # the BLAS kernel choice (OPENBLAS_CORETYPE ...) as in this process: the app's training then
    # does the arithmetic this test's reference run does (else another kernel rounds otherwise)
    env.update({k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))})
    env.update(extra)
    return env


def slot(state: Path) -> dict | None:
    """The recovery slot's marker (None while there is none)."""
    try:
        return json.loads((state / "interrupted.json").read_text())
    except (OSError, ValueError):
        return None


class PtyApp:
    """`termnist ARGS` in a pseudo-terminal of its own (100x30); output drained by a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: its controlling terminal is the pty
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
                os.chdir(REPO)
                os.execve(sys.executable, [sys.executable, "-m", "tui.cli", *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = bytearray()
        self.status: int | None = None
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if ready:
                    data = os.read(self.fd, 65536)
                    if not data:
                        return
                    self.output.extend(data)
            except OSError:
                return

    def text(self) -> str:
        return ANSI.sub(b"", bytes(self.output)).decode("utf-8", "replace")

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def vanish(self) -> None:
        """Close the terminal, as sshd does when the connection drops: the kernel sends
        SIGHUP to the app and its writes to the terminal fail (EIO)."""
        self._stop.set()
        self._reader.join()
        os.close(self.fd)
        self.fd = -1

    def wait_exit(self, timeout: float) -> float:
        """Seconds until the process ended (fails after ``timeout``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError(f"termnist still running {timeout}s after the signal")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._stop.set()
        if self.fd >= 0:
            self._reader.join()
            os.close(self.fd)


def wait_until(predicate, timeout: float, what: str, app: PtyApp | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if app is not None and os.waitpid(app.pid, os.WNOHANG)[0]:
            raise AssertionError(f"termnist exited while waiting for {what}:\n{app.text()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{app.text()[-3000:]}" if app else ""))


def test_a_dropped_connection_loses_nothing_and_resume_continues_the_run(tmp_path):
    state = tmp_path / "state"
    write_settings(tmp_path / "config")
    env = environment(tmp_path)

    # 1. train; the terminal vanishes after the first epochs (an SSH connection dropping)
    app = PtyApp(["--data", str(SAMPLE_DIR)], env)
    try:
        wait_until(lambda: "Hidden layers" in app.text(), 30, "the app", app)
        app.send(F5)
        first = wait_until(lambda: (s := slot(state)) and "end of epoch" in s["reason"] and s, 30,
                           "the first epoch's autosave", app)
        app.vanish()
        took = app.wait_exit(8)
    finally:
        app.close()
    assert took < 5 and app.status == 128 + signal.SIGHUP
    cut = slot(state)
    assert cut["reason"] == "connection lost (SIGHUP)"
    from engine.recovery import load_recovery

    rec = load_recovery(state)
    done = rec.checkpoint.metadata["epochs_done"]
    assert done >= int(first["reason"].split()[-1])          # the last completed epoch, at least
    assert [h["epoch"] for h in rec.checkpoint.metadata["history"]] == list(range(1, done + 1))
    assert "log" not in cut                                  # no screen text: the history is the record
    assert rec.checkpoint.optimizer_state                    # momentum buffers kept

    # 2. `termnist --resume` continues it (no --data: the slot knows the data), then a
    #    SIGHUP with the terminal still there: the same save, and the terminal is restored
    app = PtyApp(["--resume"], env)
    try:
        wait_until(lambda: (s := slot(state)) and s["reason"].startswith("saved at the end of epoch")
                   and int(s["reason"].split()[-1]) > done, 30, "an epoch of the resumed run", app)
        # the resumed app says so on screen (on a loaded machine the training process can
        # finish an epoch before the UI has drawn its first frames)
        wait_until(lambda: "resuming" in app.text(), 30, "the resumed app to say so", app)
        os.kill(app.pid, signal.SIGHUP)
        took = app.wait_exit(8)
        wait_until(lambda: b"\x1b[?1049l" in app.output, 5, "the alternate screen to be left")
    finally:
        app.close()
    assert took < 5 and app.status == 128 + signal.SIGHUP
    assert b"\x1b[?25h" in app.output[-500:]                 # the cursor shown again
    again = load_recovery(state)
    total = again.checkpoint.metadata["epochs_done"]
    assert total > done
    assert [h["epoch"] for h in again.checkpoint.metadata["history"]] == list(range(1, total + 1))
    first_rows = rec.checkpoint.metadata["history"]
    assert again.checkpoint.metadata["history"][:done] == first_rows   # the first process's epochs, as they were
    # exactly where an uninterrupted run is after `total` epochs: weights, optimizer, RNG
    from threadpoolctl import threadpool_limits

    from engine.datasets import load_dataset
    from engine.training import TrainingSession

    data = load_dataset("mnist", data_dir=SAMPLE_DIR)
    straight = TrainingSession(again.checkpoint.config, data)    # same schedule: same epochs
    with threadpool_limits(limits=1):
        for event in straight.run():
            if type(event).__name__ == "EpochEnded" and event.epoch == total:
                break
    want, got = straight.model.get_weights(), again.checkpoint.model.get_weights()
    # bit-identical: the same BLAS kernels and one thread (environment() passes the kernel
    # choice on). With another kernel the float32 results drifted apart by 1e-4 in 25 epochs; a
    # resume that lost the momentum buffers or the shuffling state is off by 1e-3 and more.
    assert all(np.array_equal(want[k], got[k]) for k in want)
    losses = [h["train_loss"] for h in again.checkpoint.metadata["history"]]
    assert [h["train_loss"] for h in straight.history] == losses


# ------------------------------------------------------------------------------ tmux
@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    t = Tmux(tmp_path)
    yield t
    t.kill()


def test_ctrl_c_asks_while_training_and_leaves_a_sane_terminal(tmp_path, tmux):
    write_settings(tmp_path / "config", epochs="100000")
    tmux.start(f"{shlex.quote(sys.executable)} -m tui.cli --data {shlex.quote(str(SAMPLE_DIR))}",
               environment(tmp_path), after="stty -a;")
    tmux.wait_for(lambda s: "Hidden layers" in s, 30, "the app")
    tmux.keys("F5")
    tmux.wait_for(lambda s: "ETA" in s, 30, "training progress")
    tmux.keys("C-c")
    asked = tmux.wait_for(lambda s: "Stop it and quit?" in s, 10, "the quit confirmation")
    assert "The run is kept" in asked
    tmux.keys("n")
    tmux.wait_for(lambda s: "Stop it and quit?" not in s and "ETA" in s, 10, "training to go on")
    tmux.keys("C-c")
    tmux.wait_for(lambda s: "Stop it and quit?" in s, 10, "the confirmation again")
    tmux.keys("y")
    after = tmux.wait_for(lambda s: "EXITED 0" in s and "speed" in s, 20, "EXITED and stty -a")
    # the terminal is back to normal: line editing and echo on, main screen, cursor shown
    for flag in ("icanon", "echo", "isig", "icrnl", "ixon"):
        assert re.search(rf"(?<![-\w]){flag}\b", after), f"stty shows -{flag}:\n{after}"
    assert tmux.run("display-message", "-p", "-t", tmux.name, "#{alternate_on} #{cursor_flag}").split() == ["0", "1"]
    assert slot(tmp_path / "state")["reason"] == "quit while training"    # kept, as the dialog said


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "xterm"}, {"TERM": "xterm-256color"}],
                         ids=["no-color", "16-colour", "256-colour"])
def test_mistakes_are_marked_in_text_in_every_colour_mode(tmp_path, tmux, env):
    write_settings(tmp_path / "config", epochs="1", hidden="8")
    tmux.start(f"{shlex.quote(sys.executable)} -m tui.cli --data {shlex.quote(str(SAMPLE_DIR))}",
               environment(tmp_path, **env))
    tmux.wait_for(lambda s: "Hidden layers" in s, 30, "the app")
    tmux.keys("F5")
    tmux.wait_for(lambda s: "test accuracy" in s, 60, "one epoch and the test accuracy")
    tmux.keys("F3")
    tmux.wait_for(lambda s: "[Digits]" in s and "%" in s, 10, "the digit preview")
    tmux.keys("m")                                     # mistakes only
    shown = tmux.wait_for(lambda s: "mistakes 1-" in s, 10, "the mistakes filter")
    captions = re.findall(r"(X?)\s+(\d)\s+(\d+)% \((\d)\)", shown)
    assert captions, shown
    assert all(mark == "X" and guess != true for mark, guess, _, true in captions)   # a text marker
    colours = sgr_colours(tmux.screen(escapes=True))
    if "NO_COLOR" in env:          # monochrome: greys only
        hues = [c for c in colours if not grey(c)]
        assert not hues, f"colours (not greys) under NO_COLOR: {sorted(set(hues))}"
    elif env["TERM"] == "xterm":   # the 16-colour palette only
        wide = [c for c in colours if len(c) > 1]
        assert not wide, f"256/true colours on a 16-colour terminal: {sorted(set(wide))}"


def sgr_colours(screen: str) -> list[tuple[int, ...]]:
    """Every colour the SGR sequences of ``screen`` set: (n,) basic, (5, n) 256-colour,
    (2, r, g, b) true colour."""
    out = []
    for seq in re.findall(r"\x1b\[([0-9;:]*)m", screen):
        params = [int(p) for p in re.split("[;:]", seq) if p]
        i = 0
        while i < len(params):
            p = params[i]
            if p in (38, 48) and i + 1 < len(params):
                n = 3 if params[i + 1] == 2 else 1
                out.append(tuple(params[i + 1 : i + 2 + n]))
                i += 2 + n
                continue
            if 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
                out.append((p,))
            i += 1
    return out


def grey(colour: tuple[int, ...]) -> bool:
    """Black, white or a grey: what a monochrome rendering (Textual's NO_COLOR) may use."""
    if colour[0] == 5 and len(colour) == 2:
        return colour[1] in (0, 7, 8, 15, 16, 231) or 232 <= colour[1] <= 255
    if colour[0] == 2 and len(colour) == 4:
        return colour[1] == colour[2] == colour[3]
    return colour[0] % 10 in (0, 7)     # 30/37, 40/47, 90/97, 100/107
