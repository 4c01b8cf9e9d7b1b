"""Trials in local worker processes (multiprocessing "spawn": safe beside threads, e.g. the app's).

Workers never write to the terminal (stdout /dev/null, stderr a temporary file whose last line
is quoted when a worker dies) and ignore SIGINT/SIGHUP.

Each worker is one process with one BLAS thread, kept for many trials (its dataset is loaded
once, with the same --data / search rules as the sweep). It talks to the sweep over a private
pipe (the typed messages of engine.sweep.events; pickled between our own processes, as the
app's training child does). A worker that dies mid-trial (SIGKILL, out of memory) is a
``WorkerLost`` for its trial -- the trial is marked failed, not retried -- and a new worker
is started for the next trial. Workers ignore SIGINT: the sweep decides what Ctrl+C does.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from engine.sweep.events import TrialJob, WorkerEnd, WorkerEvent, WorkerLost


def _worker_main(conn: Connection, stderr_path: str | None = None) -> None:
    """The worker process: trials one after another until EOF or None. It never writes to the
    terminal (the app's screen): stdout is /dev/null, stderr the file ``stderr_path``."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if stderr_path is not None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        err = os.open(stderr_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(err, 2)
        os.close(err)
    from engine import events as ev
    from engine.errors import TermnistError
    from engine.sweep.worker import load_cached, train_trial

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        if not isinstance(job, TrialJob):   # a verdict or stop that crossed the trial's end: stale
            continue
        number = job.number
        stop = {"now": False}

        def send(event: Any, number: int = number) -> None:
            conn.send(WorkerEvent(number, event))

        def take(msg: Any, stop: dict[str, bool] = stop) -> bool | None:
            if msg == ("stop",):
                stop["now"] = True
                return False
            if isinstance(msg, tuple) and msg[:1] == ("verdict",):
                return bool(msg[1])
            return None

        def verdict(stop: dict[str, bool] = stop) -> bool:
            while not stop["now"]:
                answer = take(conn.recv())
                if answer is not None:
                    return answer
            return False

        def stop_requested(stop: dict[str, bool] = stop) -> bool:
            while not stop["now"] and conn.poll():
                take(conn.recv())
            return stop["now"]

        error = None
        try:
            try:
                dataset = load_cached(job.dataset, job.data_dir)
            except TermnistError as exc:
                send(ev.Failed(message=str(exc)))
            else:
                train_trial(job, dataset, send, verdict, stop_requested)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return                                  # the sweep is gone
        except Exception as exc:  # noqa: BLE001 - reported to the sweep as the trial's failure
            error = f"{type(exc).__name__}: {exc}"
        try:
            conn.send(WorkerEnd(number, error))
        except (BrokenPipeError, ConnectionResetError, OSError):
            return


class _Worker:
    def __init__(self, ctx: Any) -> None:
        import tempfile

        self.conn, child = ctx.Pipe(duplex=True)
        fd, self.stderr_path = tempfile.mkstemp(prefix="termnist-sweep-worker-", suffix=".log")
        os.close(fd)
        self.process = ctx.Process(target=_worker_main, args=(child, self.stderr_path), daemon=True,
                                   name="termnist-sweep-worker")
        self.process.start()
        child.close()
        self.number: int | None = None            # the trial it runs

    def stderr_tail(self) -> str:
        """The last line the worker wrote to stderr (a traceback's last line), or ""."""
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(self.stderr_path) - 2000))
                lines = [ln for ln in fh.read().decode(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""

    def forget_stderr(self) -> None:
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass

    @property
    def name(self) -> str:
        return f"local:{self.process.pid}"

    def send(self, msg: Any) -> bool:
        try:
            self.conn.send(msg)
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def close(self, timeout: float = 2.0) -> None:
        self.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()
        self.forget_stderr()


class LocalPool:
    """Up to ``workers`` trials at once in local processes. The sweep's backend interface:
    ``slots``, ``free``, ``submit(job) -> worker name``, ``verdict(number, go)``, ``stop(number)``,
    ``poll(timeout) -> [WorkerEvent | WorkerEnd | WorkerLost]``, ``close()``."""

    def __init__(self, workers: int = 1, *, start_method: str = "spawn") -> None:
        self.slots = max(1, int(workers))
        self._ctx = mp.get_context(start_method)
        self._workers: list[_Worker] = []

    @property
    def free(self) -> int:
        return self.slots - sum(1 for w in self._workers if w.number is not None)

    def describe(self) -> str:
        return f"{self.slots} local worker process(es)"

    def pids(self) -> dict[int, int]:
        """Trial number -> pid of the process running it."""
        return {w.number: w.process.pid for w in self._workers if w.number is not None and w.process.pid}

    def submit(self, job: TrialJob) -> str:
        worker = next((w for w in self._workers if w.number is None), None)
        if worker is None:
            worker = _Worker(self._ctx)
            self._workers.append(worker)
        worker.number = job.number
        if not worker.send(job):
            # died while idle: start another one for this trial
            self._workers.remove(worker)
            worker.close(0.1)
            worker = _Worker(self._ctx)
            self._workers.append(worker)
            worker.number = job.number
            worker.send(job)
        return worker.name

    def _by_number(self, number: int) -> _Worker | None:
        return next((w for w in self._workers if w.number == number), None)

    def verdict(self, number: int, go: bool) -> None:
        w = self._by_number(number)
        if w is not None:
            w.send(("verdict", go))

    def stop(self, number: int) -> None:
        w = self._by_number(number)
        if w is not None:
            w.send(("stop",))

    def poll(self, timeout: float) -> list[Any]:
        """Messages from the workers, waiting up to ``timeout`` seconds for the first."""
        busy = [w for w in self._workers if w.number is not None]
        if not busy:
            time.sleep(min(timeout, 0.05))
            return []
        by_handle: dict[Any, _Worker] = {}
        for w in busy:
            by_handle[w.conn] = w
            by_handle[w.process.sentinel] = w
        ready = wait(list(by_handle), timeout)
        out: list[Any] = []
        lost: list[_Worker] = []
        for handle in ready:
            w = by_handle[handle]
            if w in lost or w.number is None:
                continue
            try:
                while w.conn.poll():
                    msg = w.conn.recv()
                    out.append(msg)
                    if isinstance(msg, WorkerEnd):
                        w.number = None
                        break
            except (EOFError, OSError):
                lost.append(w)
                continue
            if w.number is not None and not w.process.is_alive():
                lost.append(w)
        for w in lost:
            number = w.number
            w.process.join(0.5)
            code = w.process.exitcode
            why = (f"killed by signal {-code}" if code is not None and code < 0 else
                   f"exited with status {code}" if code is not None else "stopped answering")
            tail = w.stderr_tail()
            out.append(WorkerLost(number if number is not None else -1,
                                  f"worker {w.name} {why}" + (f" ({tail})" if tail else "")))
            w.forget_stderr()
            self._workers.remove(w)
            w.number = None
            try:
                w.conn.close()
            except OSError:
                pass
        return out

    def close(self) -> None:
        for w in self._workers:
            w.close()
        self._workers.clear()
