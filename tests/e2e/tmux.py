"""A detached tmux session on a private socket (never the user's server), for e2e tests."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, tmp: Path, width: int = 80, height: int = 24) -> None:
        self.socket = str(tmp / "tmux.sock")
        self.name = f"termnist-{uuid.uuid4().hex[:8]}"
        self.width, self.height = width, height

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True,
                              timeout=30, check=check).stdout

    def start(self, command: str, env: dict[str, str], after: str = "") -> None:
        """Run ``command`` in the repo with ``env``; then print ``EXITED <status>``, run
        ``after`` and keep the pane open (so a crash's traceback can still be read)."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.run("new-session", "-d", "-s", self.name, "-x", str(self.width), "-y", str(self.height),
                 f"cd {shlex.quote(str(REPO))} && env {exports} {command}; echo EXITED $?; {after} sleep 60")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name)

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        """Poll the screen until ``predicate(screen)``; fail early if the app exited or crashed
        (unless exiting is what we wait for)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            if "Traceback" in text or ("EXITED" in text and "EXITED" not in what):
                raise AssertionError(f"the app exited while waiting for {what}:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")

    def kill(self) -> None:
        self.run("kill-server", check=False)
