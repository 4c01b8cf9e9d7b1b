"""Training in a child process, behind the same interface as a TrainingSession.

Why: in one process, a UI thread and a training thread share one GIL. The training
thread releases it inside every BLAS call and then waits to take it back whenever the UI
thread is running Python (rendering, message handling). Measured on 2 vCPUs: the app's
run took 1.48x the headless run (1.07x with this module), and a Python thread busy 25% of the time alone slowed
headless training 1.3-1.4x, while the same load in another process cost almost nothing
(benchmarks/app.py). So the app trains in a child with its own interpreter.

Parent side:

* ``TrainerProcess`` -- one child (``engine.trainer_child.main``), kept for many
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

Wire: typed messages (:mod:`engine.wire`) over a private socketpair; the child's side is
:mod:`engine.trainer_child`.

Flow control: the child runs at most EPOCHS_AHEAD epochs ahead of whoever consumes
``run()`` (an ACK goes back when the consumer has handled an EpochEnded), so a tiny net
whose epochs take milliseconds cannot flood the app with events and checkpoints.

Good (the state at the last completed epoch) precedes the RunStarted and EpochEnded
events it belongs to, Final precedes Finished: whoever consumes ``run()`` sees
``checkpoint(last_completed_epoch=True)`` and ``predict_proba`` agree with the event it
was just handed.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import events as ev
from engine import wire
from engine.wire import EPOCHS_AHEAD, TrainerProcessError  # noqa: F401 - part of this module's API

START_TIMEOUT_S = 60.0          # spawn + import numpy: ~0.1 s here; generous for a loaded machine
REPLY_TIMEOUT_S = 60.0


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
                    "from engine.trainer_child import main; sys.exit(main())")
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the child's stderr, kept open while it lives
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
            self._request("ping", wire.Ping, timeout=START_TIMEOUT_S)
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
            self._send(wire.Exit())
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
            specs = {k: wire.ArraySpec(tuple(getattr(dataset, k).shape), getattr(dataset, k).dtype.str)
                     for k in wire.DATASET_ARRAYS}
            arrays = [np.ascontiguousarray(getattr(dataset, k)).reshape(-1) for k in wire.DATASET_ARRAYS]

            def message(req: int) -> wire.SendDataset:
                return wire.SendDataset(req, name=dataset.name, title=dataset.title,
                                        class_names=tuple(dataset.class_names), source=dataset.source,
                                        is_sample=bool(dataset.is_sample),
                                        max_value=int(dataset.max_value), arrays=specs)

            self._request("dataset", message, raw=arrays, timeout=REPLY_TIMEOUT_S)
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
            session._opening = self._ask(
                lambda req: wire.Open(req, run_id, config, progress_every, resume))
        except BaseException:
            self._session = None
            raise
        return session

    def _send(self, message: wire.ToChild, raw: list[np.ndarray] | None = None) -> None:
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

    def _request(self, what: str, make: Callable[[int], wire.Request], *,
                 raw: list[np.ndarray] | None = None, timeout: float = REPLY_TIMEOUT_S) -> Any:
        """Send ``make(req)`` and wait for its answer (``what`` names it in a timeout)."""
        return self._wait(what, self._ask(make, raw=raw), timeout)

    def _ask(self, make: Callable[[int], wire.Request], raw: list[np.ndarray] | None = None
             ) -> tuple[int, _Pending]:
        """Send the request ``make(req)``; its answer arrives in the returned slot (see ``_wait``)."""
        rid = next(self._ids)
        pending = self._pending[rid] = _Pending()
        try:
            self._send(make(rid), raw)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return rid, pending

    def _wait(self, what: str, asked: tuple[int, _Pending], timeout: float = REPLY_TIMEOUT_S) -> Any:
        rid, pending = asked
        try:
            if not pending.done.wait(timeout):
                raise TrainerProcessError(f"the training process did not answer ({what}) within {timeout:.0f} s")
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

    def _dispatch(self, msg: wire.ToApp) -> None:
        match msg:
            case wire.Reply(req=req) | wire.ErrorReply(req=req):
                pending = self._pending.get(req)
                if pending is not None:
                    if isinstance(msg, wire.Reply):
                        pending.value = msg.value
                    else:
                        pending.error = wire.rebuild_error(msg.error)
                    pending.done.set()
            case wire.RunEvent(run=run) | wire.Good(run=run) | wire.Final(run=run) | wire.End(run=run):
                session = self._session
                if session is None or run != session.run_id:
                    return                           # a late message of an earlier run
                if isinstance(msg, wire.End):
                    session.ended_in_child = True
                session._feed(msg)
            case wire.Crash(run=run, error=info):
                session = self._session
                if session is not None and run == session.run_id:
                    session._feed(wire.rebuild_error(info))
            case _:
                raise TrainerProcessError(f"unexpected message {msg!r}")

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
                session._feed(err)
            session._feed(wire.End(session.run_id))

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
        # What the reader hands run(): the run's messages, or the error that ends it.
        self._events: queue.SimpleQueue[wire.RunMessage | BaseException] = queue.SimpleQueue()
        self._good: Any = None        # Checkpoint at the last completed epoch (as consumed)
        self._final: Any = None       # Checkpoint at the end of the run (as consumed)
        self._started = False
        self._stop_requested = False
        self._paused = False
        self._opening: tuple[int, _Pending] | None = None     # the "open" request's answer slot
        self._live_config: Any = None     # config with the live changes asked (change())
        self._change_lock = threading.Lock()

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

    def _feed(self, item: wire.RunMessage | BaseException) -> None:    # the reader thread
        self._events.put(item)

    # -- the run (one consumer thread) -------------------------------------------------------
    def run(self) -> Iterator[Any]:
        if self._started:
            raise RuntimeError("this session is already running")
        self._started = True
        self.wait_opened()
        while True:
            match self._events.get():
                case wire.RunEvent(event=event):
                    yield event
                    if isinstance(event, ev.EpochEnded):
                        self._control(wire.Action.ACK)  # handled (previews, autosave): the child may go on
                case wire.Good(checkpoint=good):
                    self._good = good
                case wire.Final(now=now, good=good):
                    self._final, self._good = now, good
                case BaseException() as error:
                    raise error
                case wire.End():
                    return

    # -- control, from any thread -------------------------------------------------------------
    def pause(self) -> None:
        self._paused = True
        self._control(wire.Action.PAUSE)

    def resume(self) -> None:
        self._paused = False
        self._control(wire.Action.RESUME)

    def stop(self) -> None:
        self._stop_requested = True
        self._paused = False
        self._control(wire.Action.STOP)

    def step_once(self) -> bool:
        """Paused: the child runs exactly one more step (TrainingSession.step_once)."""
        if not self._paused:
            return False
        self._control(wire.Action.STEP)
        return True

    def epoch_once(self) -> bool:
        """Paused: the child runs to the end of the current epoch (epoch_once)."""
        if not self._paused:
            return False
        self._control(wire.Action.EPOCH)
        return True

    def change(self, **values: Any) -> Any:
        """A live change (TrainingSession.change): validated here by the same rules (a
        ConfigError, and nothing is sent), then sent; the child applies it at its next step
        boundary and the run's stream brings the HyperparamsChanged. Returns ``live_config``."""
        from engine.config import check_change

        ds = self.dataset
        with self._change_lock:
            new = check_change(self.live_config, values, len(ds.y_train), ds.n_features, ds.n_classes)
            self._live_config = new
            self._send(wire.Change(self.run_id, {k: getattr(new, k) for k in values}))
        return new

    @property
    def live_config(self) -> Any:
        """The settings in effect once the changes asked so far have taken effect."""
        return self._live_config or self.config

    def _control(self, action: wire.Action) -> None:
        self._send(wire.Control(self.run_id, action))

    def _send(self, message: wire.ToChild) -> None:
        if self.ended_in_child:
            return
        try:
            self._proc._send(message)
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
            return self._proc._request(
                "checkpoint", lambda req: wire.CheckpointRequest(req, self.run_id, bool(last_completed_epoch)))
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
