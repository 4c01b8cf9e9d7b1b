"""Training in a child process, behind the same interface as a TrainingSession.

Why: in one process, a UI thread and a training thread share one GIL. The training
thread releases it inside every BLAS call and then waits to take it back whenever the UI
thread is running Python (rendering, message handling). Measured on 2 vCPUs: the app's
run took 1.48x the headless run (1.07x with this module), and a Python thread busy 25% of the time alone slowed
headless training 1.3-1.4x, while the same load in another process cost almost nothing
(benchmarks/app.py). So the app trains in a child with its own interpreter.

Parent side:

* ``TrainerProcess`` -- one child (``engine.trainer_process.main``), kept for many
  runs. ``prepare(dataset)`` starts it and hands it the dataset ahead of time (the app
  does this in the background when a dataset loads), so pressing "train" starts at once.
* ``ProcessSession`` -- one run in that child, with TrainingSession's interface: ``run()``
  yields the engine's events (the same frozen dataclasses), ``pause/resume/stop``,
  ``checkpoint()`` (the live weights, asked of the child; with ``last_completed_epoch``
  the copy the child sent at the last epoch end), and ``predict_proba()``, computed *in
  the parent* on the weights of the last epoch end (or of the end of the run): preview
  predictions no longer take time from training.

The child never writes to the terminal (stdout is /dev/null, stderr a temporary file the
parent quotes if the child dies), ignores SIGINT/SIGHUP (the app decides what a hangup
means and saves the run first) and exits as soon as its parent is gone (its end of the
socket reads EOF), so it can never outlive the app.

Wire: a ``multiprocessing.connection.Connection`` over a socketpair that only the parent
and this child hold. Messages are pickled tuples between two processes of the same
program -- nothing a user loads from disk or the network goes through pickle. Image
arrays travel as raw bytes (``send_bytes``/``recv_bytes_into``: no pickled copy).

  parent -> child   ("ping", req) | ("dataset", req, meta) + 4 raw arrays |
                    ("open", req, run, config, progress_every, resume) |
                    ("pause"|"resume"|"stop"|"ack", run) |
                    ("checkpoint", req, run, last_completed) | ("exit",)
  child -> parent   ("reply", req, value) | ("error", req, info) | ("event", run, event) |
                    ("good", run, checkpoint) | ("final", run, now, good) |
                    ("crash", run, info) | ("end", run)

Flow control: the child runs at most EPOCHS_AHEAD epochs ahead of whoever consumes
``run()`` (an "ack" goes back when the consumer has handled an EpochEnded), so a tiny net
whose epochs take milliseconds cannot flood the app with events and checkpoints.

"good" (the state at the last completed epoch) precedes the RunStarted and EpochEnded
events it belongs to, "final" precedes Finished: whoever consumes ``run()`` sees
``checkpoint(last_completed_epoch=True)`` and ``predict_proba`` agree with the event it
was just handed.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import errors

_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
START_TIMEOUT_S = 60.0          # spawn + import numpy: ~0.1 s here; generous for a loaded machine
REPLY_TIMEOUT_S = 60.0
EPOCHS_AHEAD = 2                # how far the child may run ahead of the app (flow control)


class TrainerProcessError(errors.TermnistError):
    """The training process could not start, stopped answering, or ended unexpectedly."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


# ------------------------------------------------------------------ errors across the wire
def _error_info(exc: BaseException) -> tuple[str, str, str | None, str]:
    """(class name, message, field, traceback) -- rebuilt by ``_rebuild_error``."""
    if isinstance(exc, errors.ConfigError):
        return ("ConfigError", exc.reason, exc.field, "")
    return (type(exc).__name__, str(exc), None, "".join(traceback.format_exception(exc)))


def _rebuild_error(info: tuple[str, str, str | None, str]) -> BaseException:
    name, message, fld, details = info
    if name == "ConfigError":
        return errors.ConfigError(fld or "config", message)
    if name == "MemoryError":
        return MemoryError(message)
    if name == "TrainerProcessError":
        return TrainerProcessError(message)
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.TermnistError) and cls is not errors.ConfigError:
        try:
            return cls(message)
        except TypeError:
            pass
    return TrainerProcessError(f"internal error in the training process: {name}: {message}", details)


# ---------------------------------------------------------------------------- parent side
@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class TrainerProcess:
    """A child process that holds a dataset and runs one training session at a time.

    Thread-safe: any thread may call any method. ``close()`` ends the child (it also ends
    by itself when this process exits, however that happens).
    """

    def __init__(self, blas_threads: int = 1, python: str | None = None) -> None:
        self.blas_threads = max(1, int(blas_threads))
        self.python = python or sys.executable
        self._lock = threading.RLock()          # start / prepare / open: one at a time
        self._send_lock = threading.Lock()      # one message (or message + arrays) at a time
        self._proc: subprocess.Popen | None = None
        self._conn: Any = None
        self._stderr: Any = None
        self._reader: threading.Thread | None = None
        self._dataset: Any = None               # the dataset the child holds (by identity)
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._session: ProcessSession | None = None
        self._closed = False                    # close() was called: never start again
        self._dead: str | None = None           # why the child is gone, once it is

    # -- life cycle ------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._dead is None and self._proc.poll() is None

    def holds(self, dataset: Any) -> bool:
        """True when the child is up and already holds ``dataset`` (the same object)."""
        return self.alive and self._dataset is dataset

    def start(self) -> None:
        """Start the child if it is not running (blocks until it answers; ~0.1 s)."""
        with self._lock:
            if self._closed:
                raise TrainerProcessError("the training process was closed")
            if self.alive:
                return
            self._cleanup()
            ours, theirs = socket.socketpair()
            env = dict(os.environ)
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = str(self.blas_threads)
            # The same `engine` as this process, first on the path: not one that happens to
            # be in the current directory (`python -m` would look there first).
            root = str(Path(__file__).resolve().parent.parent)
            code = (f"import sys; sys.path.insert(0, {root!r}); "
                    "from engine.trainer_process import main; sys.exit(main())")
            self._stderr = tempfile.TemporaryFile()
            try:
                self._proc = subprocess.Popen(
                    [self.python, "-c", code, "--fd", str(theirs.fileno()),
                     "--blas-threads", str(self.blas_threads)],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=self._stderr, env=env, close_fds=True)
            except OSError as exc:
                ours.close()
                raise TrainerProcessError(f"cannot start the training process: {exc}") from exc
            finally:
                theirs.close()
            from multiprocessing.connection import Connection

            self._conn = Connection(ours.detach())
            self._dead = None
            self._dataset = None
            self._reader = threading.Thread(target=self._read_loop, args=(self._conn, self._proc),
                                            name="trainer-reader", daemon=True)
            self._reader.start()
            self._request("ping", timeout=START_TIMEOUT_S)
            if self._closed:         # close() came while this child was starting
                self.close()
                raise TrainerProcessError("the training process was closed")

    def close(self, timeout: float = 2.0) -> None:
        """End the child: ask, wait up to ``timeout`` s, then kill it. Idempotent; no child
        starts after it."""
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        session = self._session
        if session is not None:
            session.stop()
        try:
            self._send(("exit",))
        except TrainerProcessError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        self._cleanup()

    def _cleanup(self) -> None:
        for thing in (self._conn, self._stderr):
            try:
                if thing is not None:
                    thing.close()
            except OSError:
                pass
        self._conn = self._stderr = None
        self._proc = None
        self._dataset = None

    # -- requests --------------------------------------------------------------------------
    def prepare(self, dataset: Any) -> None:
        """Start the child if needed and hand it ``dataset`` unless it already holds it."""
        with self._lock:
            self.start()
            if self._dataset is dataset:
                return
            meta = {"name": dataset.name, "title": dataset.title, "class_names": tuple(dataset.class_names),
                    "source": dataset.source, "is_sample": bool(dataset.is_sample),
                    "max_value": int(dataset.max_value),
                    "arrays": {k: (getattr(dataset, k).shape, getattr(dataset, k).dtype.str) for k in _ARRAYS}}
            arrays = [np.ascontiguousarray(getattr(dataset, k)).reshape(-1) for k in _ARRAYS]
            self._request("dataset", meta, raw=arrays, timeout=REPLY_TIMEOUT_S)
            self._dataset = dataset

    def open_session(self, config: Any, dataset: Any, *, progress_every: int = 20,
                     resume: Any = None) -> ProcessSession:
        """Create a session in the child and start it; its events wait in ``run()``.

        Raises what TrainingSession would (ConfigError with its field, ...) or
        TrainerProcessError when the child cannot be reached.
        """
        with self._lock:
            self.prepare(dataset)
            session = self._open(config, dataset, progress_every, resume)
        session.wait_opened()
        return session

    def try_open_session(self, config: Any, dataset: Any, *, progress_every: int = 20
                         ) -> ProcessSession | None:
        """``open_session`` without any waiting, for a UI thread: when the child is idle and
        already holds ``dataset``, ask it to start and return the session at once (its
        ``wait_opened()`` then raises what opening raised); else None."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if not self.holds(dataset) or (self._session is not None and not self._session.ended_in_child):
                return None
            return self._open(config, dataset, progress_every, None)
        except TrainerProcessError:
            return None
        finally:
            self._lock.release()

    def _open(self, config: Any, dataset: Any, progress_every: int, resume: Any) -> ProcessSession:
        if self._session is not None and not self._session.ended_in_child:
            raise TrainerProcessError("the training process is still running a session")
        run_id = next(self._ids)
        session = ProcessSession(self, run_id, config, dataset)
        self._session = session
        try:
            session._opening = self._ask("open", run_id, config, progress_every, resume)
        except BaseException:
            self._session = None
            raise
        return session

    def _send(self, message: tuple, raw: list[np.ndarray] | None = None) -> None:
        with self._send_lock:
            conn = self._conn
            if conn is None or self._dead is not None:
                raise TrainerProcessError(f"the training process is not running{self._why()}")
            try:
                conn.send(message)
                for arr in raw or ():
                    conn.send_bytes(arr)
            except (OSError, ValueError) as exc:
                raise TrainerProcessError(f"lost the training process: {exc}") from exc

    def _request(self, kind: str, *args: Any, raw: list[np.ndarray] | None = None,
                 timeout: float = REPLY_TIMEOUT_S) -> Any:
        return self._wait(kind, self._ask(kind, *args, raw=raw), timeout)

    def _ask(self, kind: str, *args: Any, raw: list[np.ndarray] | None = None) -> tuple[int, _Pending]:
        """Send a request; its answer arrives in the returned slot (see ``_wait``)."""
        rid = next(self._ids)
        pending = self._pending[rid] = _Pending()
        try:
            self._send((kind, rid, *args), raw)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return rid, pending

    def _wait(self, kind: str, asked: tuple[int, _Pending], timeout: float = REPLY_TIMEOUT_S) -> Any:
        rid, pending = asked
        try:
            if not pending.done.wait(timeout):
                raise TrainerProcessError(f"the training process did not answer ({kind}) within {timeout:.0f} s")
        finally:
            self._pending.pop(rid, None)
        if pending.error is not None:
            raise pending.error
        return pending.value

    def _why(self) -> str:
        return f" ({self._dead})" if self._dead else ""

    # -- the reader thread -------------------------------------------------------------------
    def _read_loop(self, conn: Any, proc: subprocess.Popen) -> None:
        why = None
        try:
            while True:
                self._dispatch(conn.recv())
        except (EOFError, OSError, ValueError):
            pass
        except Exception as exc:  # noqa: BLE001 - a reader that dies silently would hang runs
            why = f"bad message from the training process: {exc}"
            proc.kill()
        if self._conn is conn:        # not superseded by a newer child
            self._on_child_gone(proc, why)

    def _dispatch(self, msg: tuple) -> None:
        kind = msg[0]
        if kind in ("reply", "error"):
            pending = self._pending.get(msg[1])
            if pending is not None:
                if kind == "reply":
                    pending.value = msg[2]
                else:
                    pending.error = _rebuild_error(msg[2])
                pending.done.set()
            return
        session = self._session
        if session is None or msg[1] != session.run_id:
            return                                   # a late message of an earlier run
        if kind == "crash":
            session._feed("error", _rebuild_error(msg[2]))
        elif kind == "end":
            session.ended_in_child = True
            session._feed("end", None)
        else:
            session._feed(kind, msg[2] if kind != "final" else (msg[2], msg[3]))

    def _on_child_gone(self, proc: subprocess.Popen, why: str | None) -> None:
        try:
            code = proc.wait(2)
        except subprocess.TimeoutExpired:
            code = None
        self._dead = why or (_describe_exit(code) + self._stderr_tail())
        err = TrainerProcessError(f"the training process ended unexpectedly ({self._dead})")
        for pending in list(self._pending.values()):
            pending.error = err
            pending.done.set()
        session = self._session
        if session is not None and not session.ended_in_child:
            session.ended_in_child = True
            if not (self._closed or session.stop_requested):
                session._feed("error", err)
            session._feed("end", None)

    def _stderr_tail(self) -> str:
        try:
            f = self._stderr
            if f is None:
                return ""
            f.seek(0)
            lines = [ln for ln in f.read()[-4000:].decode("utf-8", "replace").splitlines() if ln.strip()]
            return f"; last words: {lines[-1].strip()}" if lines else ""
        except (OSError, ValueError):
            return ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class ProcessSession:
    """One run in a TrainerProcess; the part of TrainingSession's interface the app uses."""

    def __init__(self, proc: TrainerProcess, run_id: int, config: Any, dataset: Any) -> None:
        self.config = config
        self.dataset = dataset
        self.run_id = run_id
        self.ended_in_child = False
        self._proc = proc
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._good: Any = None        # Checkpoint at the last completed epoch (as consumed)
        self._final: Any = None       # Checkpoint at the end of the run (as consumed)
        self._started = False
        self._stop_requested = False
        self._paused = False
        self._opening: tuple[int, _Pending] | None = None     # the "open" request's answer slot

    def wait_opened(self, timeout: float = REPLY_TIMEOUT_S) -> None:
        """Wait until the child has created the session; raise what creating it raised
        (ConfigError, ...). Idempotent."""
        asked, self._opening = self._opening, None
        if asked is None:
            return
        try:
            self._proc._wait("open", asked, timeout)
        except BaseException:
            self.ended_in_child = True
            if self._proc._session is self:
                self._proc._session = None
            raise

    def _feed(self, kind: str, payload: Any) -> None:    # the reader thread
        self._events.put((kind, payload))

    # -- the run (one consumer thread) -------------------------------------------------------
    def run(self) -> Iterator[Any]:
        if self._started:
            raise RuntimeError("this session is already running")
        self._started = True
        self.wait_opened()
        while True:
            kind, payload = self._events.get()
            if kind == "event":
                yield payload
                if type(payload).__name__ == "EpochEnded":
                    self._control("ack")     # handled (previews, autosave): the child may go on
            elif kind == "good":
                self._good = payload
            elif kind == "final":
                self._final, self._good = payload
            elif kind == "error":
                raise payload
            elif kind == "end":
                return

    # -- control, from any thread -------------------------------------------------------------
    def pause(self) -> None:
        self._paused = True
        self._control("pause")

    def resume(self) -> None:
        self._paused = False
        self._control("resume")

    def stop(self) -> None:
        self._stop_requested = True
        self._paused = False
        self._control("stop")

    def _control(self, kind: str) -> None:
        if self.ended_in_child:
            return
        try:
            self._proc._send((kind, self.run_id))
        except TrainerProcessError:
            pass          # the child is gone: the reader reports it through run()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def epochs_done(self) -> int:
        ckpt = self._final or self._good
        return int(ckpt.metadata.get("epochs_done", 0)) if ckpt is not None else 0

    # -- queries, from any thread ---------------------------------------------------------------
    def checkpoint(self, last_completed_epoch: bool = False) -> Any:
        """As TrainingSession.checkpoint: the live weights are asked of the child (between two
        steps); the last completed epoch's copy is already here."""
        if last_completed_epoch and self._good is not None:
            return self._good
        if self._final is not None:
            return self._final
        try:        # the child keeps the session until the next run opens, even once it ended
            return self._proc._request("checkpoint", self.run_id, bool(last_completed_epoch))
        except TrainerProcessError:
            if self._good is None:
                raise
            return self._good       # the child is gone: the last completed epoch is what is left

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for images ``x``, computed in this process on the weights of the
        last completed epoch (or of the end of the run, once it is over)."""
        return self.predictor()(x)

    def predictor(self) -> Any:
        """``predict_proba`` frozen at the weights it would use now."""
        from engine.training import predict_images

        ckpt = self._final or self._good or self.checkpoint()
        max_value, dtype = self.dataset.max_value, self.config.dtype
        return lambda x: predict_images(ckpt.model, x, max_value, dtype)


# ------------------------------------------------------------------------------ child side
class _Child:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.dataset: Any = None
        self.session: Any = None
        self.run_id: int | None = None
        self.thread: threading.Thread | None = None
        self.credit = threading.Condition()
        self.unacked = 0                 # epoch ends sent that the app has not handled yet
        # Everything goes out through one sender thread, in order: training never waits for
        # a parent that is slow to read (its UI thread may hold its GIL for a while).
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, name="sender", daemon=True).start()

    def send(self, message: tuple) -> None:
        self.outbox.put(message)

    def _send_loop(self) -> None:
        while True:
            message = self.outbox.get()
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                os._exit(0)              # the parent is gone

    def serve(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                os._exit(0)              # the parent is gone: so are we, at once
            kind = msg[0]
            if kind == "exit":
                if self.session is not None:
                    self.session.stop()
                os._exit(0)
            if kind in ("pause", "resume", "stop"):
                if self.session is not None and msg[1] == self.run_id:
                    getattr(self.session, kind)()
                    if kind == "stop":
                        self.acked(msg[1], wake_only=True)
                continue
            if kind == "ack":
                self.acked(msg[1])
                continue
            rid = msg[1]
            try:
                value = self.handle(kind, msg[2:])
            except BaseException as exc:  # noqa: BLE001 - every failure goes back as an answer
                self.send(("error", rid, _error_info(exc)))
            else:
                self.send(("reply", rid, value))

    def handle(self, kind: str, args: tuple) -> Any:
        if kind == "ping":
            return os.getpid()
        if kind == "dataset":
            return self.receive_dataset(args[0])
        if kind == "open":
            return self.open(*args)
        if kind == "checkpoint":
            run_id, last_completed = args
            if self.session is None or run_id != self.run_id:
                raise TrainerProcessError("that run is over")
            return self.session.checkpoint(last_completed_epoch=last_completed)
        raise TrainerProcessError(f"unknown request {kind!r}")

    def receive_dataset(self, meta: dict) -> bool:
        from engine.datasets import Dataset

        arrays = {}
        for name in _ARRAYS:            # always read all four: the stream stays in step
            shape, dtype = meta["arrays"][name]
            arr = np.empty(shape, dtype=np.dtype(dtype))
            self.conn.recv_bytes_into(arr.reshape(-1))
            arrays[name] = arr
        self.dataset = None
        self.dataset = Dataset(name=meta["name"], title=meta["title"], class_names=meta["class_names"],
                               source=meta["source"], is_sample=meta["is_sample"],
                               max_value=meta["max_value"], **arrays)
        return True

    def open(self, run_id: int, config: Any, progress_every: int, resume: Any) -> bool:
        from engine.training import TrainingSession

        if self.dataset is None:
            raise TrainerProcessError("no dataset was handed to the training process")
        if self.thread is not None and self.thread.is_alive():
            raise TrainerProcessError("the training process is still running a session")
        self.session = None                                  # let the last run's memory go first
        session = TrainingSession(config, self.dataset, progress_every=progress_every, resume=resume)
        with self.credit:
            self.session, self.run_id, self.unacked = session, run_id, 0
        self.thread = threading.Thread(target=self.train, args=(run_id, session), name="train", daemon=True)
        self.thread.start()
        return True

    def acked(self, run_id: int, wake_only: bool = False) -> None:
        with self.credit:
            if run_id == self.run_id and not wake_only:
                self.unacked = max(0, self.unacked - 1)
            self.credit.notify_all()

    def train(self, run_id: int, session: Any) -> None:
        from engine import events as ev

        try:
            for event in session.run():
                if isinstance(event, (ev.RunStarted, ev.EpochEnded)):
                    self.send(("good", run_id, session.checkpoint(last_completed_epoch=True)))
                elif isinstance(event, ev.Finished):
                    now = session.checkpoint()
                    good = now if event.reason == "completed" else session.checkpoint(last_completed_epoch=True)
                    self.send(("final", run_id, now, good))
                self.send(("event", run_id, event))
                if isinstance(event, ev.EpochEnded):
                    # Flow control: at most EPOCHS_AHEAD epochs the app has not handled yet.
                    # Tiny nets finish an epoch in milliseconds; without this their events
                    # (and checkpoints) would pile up in the app faster than it shows them.
                    with self.credit:
                        self.unacked += 1
                        while self.unacked > EPOCHS_AHEAD and not session.stop_requested:
                            self.credit.wait(0.5)
        except BaseException as exc:  # noqa: BLE001
            self.send(("crash", run_id, _error_info(exc)))
        self.send(("end", run_id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.trainer_process",
                                     description="termnist's training process (started by the app)")
    parser.add_argument("--fd", type=int, required=True, help="the socket inherited from the app")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)      # the app handles these, then closes the socket
    from multiprocessing.connection import Connection

    from threadpoolctl import threadpool_limits

    conn = Connection(args.fd)
    threadpool_limits(limits=max(1, args.blas_threads))     # for good (not a `with` block)
    # Imported now, while the app loads and draws, not when the user presses train.
    for module in ("engine.training", "engine.checkpoint"):
        importlib.import_module(module)
    _Child(conn).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
