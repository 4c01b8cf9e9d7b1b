"""A program in a pseudo-terminal, as over SSH: fixed size, TERM=xterm-256color, no COLORTERM.

`PtyProgram` forks and execs the command on the slave side of a new pty (its own session,
the pty as controlling terminal, TIOCSWINSZ set before exec), and a reader thread drains
the master side, keeping for every read its time and size, plus the output with escape
sequences removed (to find on-screen text). Keys are written to the master side.
"""

from __future__ import annotations

import bisect
import codecs
import fcntl
import os
import re
import select
import signal
import struct
import termios
import threading
import time
from collections.abc import Sequence
from typing import Any

KEYS = {
    "f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f5": b"\x1b[15~", "f6": b"\x1b[17~",
    "f7": b"\x1b[18~", "ctrl+q": b"\x11", "enter": b"\r", "escape": b"\x1b",
}

# CSI, OSC, and the two-byte escapes Textual and Rich write.
ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()#][0-9A-Za-z]"
                    r"|\x1b[=>78MDEcNOPZ\\]")
CURSOR_TO = re.compile(rb"\x1b\[(\d+);(\d+)H")


class PtyProgram:
    def __init__(self, argv: Sequence[str], cols: int, rows: int, env: dict[str, str],
                 cwd: str | os.PathLike | None = None) -> None:
        self.argv, self.cols, self.rows, self.env, self.cwd = list(argv), cols, rows, env, cwd
        self.pid: int | None = None
        self.fd: int | None = None
        self.t_launch = 0.0
        self.raw = bytearray()
        self.reads: list[tuple[float, int]] = []     # (time, total bytes so far)
        self._text_parts: list[str] = []
        self._text_len = 0
        self._marks_t: list[float] = []              # time of each read ...
        self._marks_len: list[int] = []              # ... and stripped-text length after it
        self._carry = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()
        self._new_data = threading.Condition(self._lock)   # notified at each read
        self._thread: threading.Thread | None = None
        self.exited = threading.Event()
        self.rusage: Any = None
        self.status: int | None = None
        self.peak_rss: int | None = None             # VmHWM read just before stop()
        self.children_peak_rss: int | None = None    # sum of its children's VmHWM (the trainer)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> PtyProgram:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        env = dict(self.env)
        env["TERM"] = "xterm-256color"
        env.pop("COLORTERM", None)          # as over SSH: ssh forwards TERM only
        env.setdefault("LANG", "C.UTF-8")
        env["COLUMNS"], env["LINES"] = str(self.cols), str(self.rows)
        self.t_launch = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: exec at once (no Python-level work after fork)
            try:
                os.setsid()
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(slave, fd)
                if slave > 2:
                    os.close(slave)
                os.close(master)
                if self.cwd is not None:
                    os.chdir(self.cwd)
                os.execve(self.argv[0], self.argv, env)
            finally:
                os._exit(127)
        os.close(slave)
        self.pid, self.fd = pid, master
        self._thread = threading.Thread(target=self._reader, name="pty-reader", daemon=True)
        self._thread.start()
        return self

    def _reader(self) -> None:
        fd = self.fd
        assert fd is not None
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
            except (OSError, ValueError):
                break
            if not ready:
                if self.exited.is_set():
                    break
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            now = time.perf_counter()
            self._ingest(now, data)
        self.exited.set()

    def _ingest(self, now: float, data: bytes) -> None:
        text = self._carry + self._decoder.decode(data)
        cut = text.rfind("\x1b")
        if cut != -1 and not ESCAPE.match(text, cut) and len(text) - cut < 256:
            text, self._carry = text[:cut], text[cut:]
        else:
            self._carry = ""
        plain = ESCAPE.sub("", text)
        with self._lock:
            self.raw += data
            self.reads.append((now, len(self.raw)))
            if plain:
                self._text_parts.append(plain)
                self._text_len += len(plain)
            self._marks_t.append(now)
            self._marks_len.append(self._text_len)
            self._new_data.notify_all()

    def stop(self, timeout: float = 5.0) -> Any:
        """Read the child's peak RSS (``peak_rss``), then SIGTERM (then SIGKILL) and reap it.

        Returns wait4's resource usage (its ru_maxrss is inflated by the parent's size at fork:
        use ``peak_rss``)."""
        from benchmarks.common import child_pids, read_hwm

        if self.pid is None:
            return None
        if self.rusage is None:
            hwm = read_hwm(self.pid)
            if hwm is not None:
                self.peak_rss = hwm
            kids = [read_hwm(c) for c in child_pids(self.pid)]
            self.children_peak_rss = sum(k for k in kids if k) if any(kids) else None
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    pid, status, usage = os.wait4(self.pid, os.WNOHANG)
                    if pid:
                        self.status, self.rusage = status, usage
                        break
                    time.sleep(0.02)
                if self.rusage is not None:
                    break
        self.exited.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
        return self.rusage

    def __enter__(self) -> PtyProgram:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- input --------------------------------------------------------------------------------
    def send(self, key: str | bytes) -> tuple[float, int]:
        """Write a key; returns (time sent, stripped-text length at that moment)."""
        data = KEYS[key] if isinstance(key, str) else key
        with self._lock:
            mark = self._text_len
        assert self.fd is not None
        t = time.perf_counter()
        os.write(self.fd, data)
        return t, mark

    # -- output -------------------------------------------------------------------------------
    @property
    def text_len(self) -> int:
        with self._lock:
            return self._text_len

    @property
    def n_bytes(self) -> int:
        with self._lock:
            return len(self.raw)

    def text_since(self, offset: int) -> str:
        with self._lock:
            parts = list(self._text_parts)
        text = "".join(parts)
        return text[offset:]

    def find(self, needle: str, since: int = 0) -> tuple[float, int] | None:
        """(arrival time, end offset) of the first ``needle`` wholly after ``since``, or None."""
        with self._lock:
            parts = list(self._text_parts)
            marks_t = list(self._marks_t)
            marks_len = list(self._marks_len)
        # join only the parts that can hold the match
        start = 0
        total = 0
        for i, p in enumerate(parts):
            if total + len(p) > since:
                start = i
                break
            total += len(p)
        else:
            return None
        text = "".join(parts[start:])
        idx = text.find(needle, max(0, since - total))
        if idx < 0:
            return None
        end = total + idx + len(needle)
        k = bisect.bisect_left(marks_len, end)
        return (marks_t[min(k, len(marks_t) - 1)], end)

    def wait_for(self, needle: str, since: int = 0, timeout: float = 30.0, poll: float = 0.1
                 ) -> tuple[float, int] | None:
        """(arrival time, end offset) of ``needle`` once it has arrived, or None on timeout.

        Sleeps until the reader has new output (at most ``poll`` s): the benchmark itself
        must not take CPU from the app it measures. The time returned is the reader's
        arrival time, so waking late does not change it.
        """
        deadline = time.perf_counter() + timeout
        while True:
            hit = self.find(needle, since)
            if hit is not None:
                return hit
            if time.perf_counter() > deadline or (self.exited.is_set() and self.find(needle, since) is None):
                return None
            with self._new_data:
                self._new_data.wait(poll)

    def bytes_between(self, t0: float, t1: float) -> int:
        with self._lock:
            reads = list(self.reads)
        before = [n for t, n in reads if t < t0]
        upto = [n for t, n in reads if t <= t1]
        return (upto[-1] if upto else 0) - (before[-1] if before else 0)

    def per_second(self, t0: float, t1: float) -> list[int]:
        """Bytes in each whole second of [t0, t1)."""
        with self._lock:
            reads = list(self.reads)
        bins = [0] * max(1, int(t1 - t0))
        prev = 0
        for t, n in reads:
            if t0 <= t < t0 + len(bins):
                bins[int(t - t0)] += n - prev
            prev = n
        return bins

    def raw_between(self, t0: float, t1: float) -> bytes:
        with self._lock:
            reads = list(self.reads)
            raw = bytes(self.raw)
        a = max([n for t, n in reads if t < t0], default=0)
        b = max([n for t, n in reads if t <= t1], default=0)
        return raw[a:b]


def bytes_by_row(raw: bytes, rows: int) -> list[int]:
    """Bytes written after each cursor move to row r (1-based), indexed r-1; bytes before
    the first move count for row 1. Attributes output to screen regions (widgets)."""
    out = [0] * rows
    row = 1
    pos = 0
    for m in CURSOR_TO.finditer(raw):
        out[min(max(row, 1), rows) - 1] += m.start() - pos
        row = int(m.group(1))
        pos = m.start()
    out[min(max(row, 1), rows) - 1] += len(raw) - pos
    return out
