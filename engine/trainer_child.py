"""The training process itself: the child side of :mod:`engine.trainer_process`.

Started by ``TrainerProcess.start()`` (``engine.trainer_child.main``), it holds one
dataset and runs one TrainingSession at a time, answering the app's requests and streaming
the run's events (messages: :mod:`engine.wire`). It never writes to the terminal, ignores
SIGINT/SIGHUP (the app decides what they mean) and exits as soon as its socket reads EOF.
"""

from __future__ import annotations

import argparse
import importlib
import os
import queue
import signal
import sys
import threading
from typing import Any

import numpy as np

from engine import wire
from engine.wire import TrainerProcessError


class Child:
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
        self.outbox: queue.SimpleQueue[wire.ToApp] = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, name="sender", daemon=True).start()

    def send(self, message: wire.ToApp) -> None:
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
                msg: wire.ToChild = self.conn.recv()
            except (EOFError, OSError):
                os._exit(0)              # the parent is gone: so are we, at once
            match msg:
                case wire.Exit():
                    if self.session is not None:
                        self.session.stop()
                    os._exit(0)
                case wire.Control(run=run, action=wire.Action.ACK):
                    self.acked(run)
                case wire.Control(run=run, action=action):
                    self.control(run, action)
                case wire.Change(run=run, values=values):
                    self.change(run, values)
                case wire.Ping() | wire.SendDataset() | wire.Open() | wire.CheckpointRequest():
                    try:
                        value = self.handle(msg)
                    except BaseException as exc:  # noqa: BLE001 - every failure goes back as an answer
                        self.send(wire.ErrorReply(msg.req, wire.ErrorInfo.of(exc)))
                    else:
                        self.send(wire.Reply(msg.req, value))
                case _:
                    raise TrainerProcessError(f"unknown message {msg!r}")

    def control(self, run: int, action: wire.Action) -> None:
        if self.session is None or run != self.run_id:
            return
        match action:
            case wire.Action.PAUSE:
                self.session.pause()
            case wire.Action.RESUME:
                self.session.resume()
            case wire.Action.STOP:
                self.session.stop()
                self.acked(run, wake_only=True)
            case wire.Action.STEP:
                self.session.step_once()
            case wire.Action.EPOCH:
                self.session.epoch_once()

    def change(self, run: int, values: dict[str, Any]) -> None:
        """A live change the app validated; refused here only if the run moved on meanwhile
        (then the app sees no HyperparamsChanged for it)."""
        from engine.errors import ConfigError

        if self.session is None or run != self.run_id:
            return
        try:
            self.session.change(**values)
        except ConfigError:
            pass

    def handle(self, msg: wire.Request) -> Any:
        match msg:
            case wire.Ping():
                return os.getpid()
            case wire.SendDataset():
                return self.receive_dataset(msg)
            case wire.Open():
                return self.open(msg)
            case wire.CheckpointRequest(run=run, last_completed_epoch=last_completed):
                if self.session is None or run != self.run_id:
                    raise TrainerProcessError("that run is over")
                return self.session.checkpoint(last_completed_epoch=last_completed)
        raise TrainerProcessError(f"unknown request {msg!r}")

    def receive_dataset(self, msg: wire.SendDataset) -> bool:
        from engine.datasets import Dataset

        arrays = {}
        for name in wire.DATASET_ARRAYS:     # always read all four: the stream stays in step
            spec = msg.arrays[name]
            arr = np.empty(spec.shape, dtype=np.dtype(spec.dtype))
            self.conn.recv_bytes_into(arr.reshape(-1))
            arrays[name] = arr
        self.dataset = None
        self.dataset = Dataset(name=msg.name, title=msg.title, class_names=msg.class_names,
                               source=msg.source, is_sample=msg.is_sample,
                               max_value=msg.max_value, **arrays)
        return True

    def open(self, msg: wire.Open) -> bool:
        from engine.training import TrainingSession

        if self.dataset is None:
            raise TrainerProcessError("no dataset was handed to the training process")
        if self.thread is not None and self.thread.is_alive():
            raise TrainerProcessError("the training process is still running a session")
        self.session = None                                  # let the last run's memory go first
        session = TrainingSession(msg.config, self.dataset, progress_every=msg.progress_every,
                                  resume=msg.resume)
        with self.credit:
            self.session, self.run_id, self.unacked = session, msg.run, 0
        self.thread = threading.Thread(target=self.train, args=(msg.run, session), name="train",
                                       daemon=True)
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
                    self.send(wire.Good(run_id, session.checkpoint(last_completed_epoch=True)))
                elif isinstance(event, ev.Finished):
                    now = session.checkpoint()
                    good = now if event.reason == "completed" else session.checkpoint(last_completed_epoch=True)
                    self.send(wire.Final(run_id, now, good))
                self.send(wire.RunEvent(run_id, event))
                if isinstance(event, ev.EpochEnded):
                    # Flow control: at most EPOCHS_AHEAD epochs the app has not handled yet.
                    # Tiny nets finish an epoch in milliseconds; without this their events
                    # (and checkpoints) would pile up in the app faster than it shows them.
                    with self.credit:
                        self.unacked += 1
                        while self.unacked > wire.EPOCHS_AHEAD and not session.stop_requested:
                            self.credit.wait(0.5)
        except BaseException as exc:  # noqa: BLE001
            self.send(wire.Crash(run_id, wire.ErrorInfo.of(exc)))
        self.send(wire.End(run_id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="termnist training process",
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
    Child(conn).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
