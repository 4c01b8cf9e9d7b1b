"""Trials as tasks on an existing Dask cluster (``--cluster tcp://HOST:PORT``; the optional
extra ``termnist[cluster]``, package ``distributed``).

The sweep keeps the study and asks/tells Optuna; each trial is one Dask task running the
module-level ``dask_trial`` (termnist must be installed on every worker). Figures travel as
plain dicts (msgpack, no pickle of ours) through two kinds of ``distributed.Queue``: one
queue of the sweep that every task puts its engine events into, and one control queue per
trial, where the sweep puts its verdict after each epoch ("go" / "stop": pruned) and "stop"
for Ctrl+C. So pruning decisions are the sweep's, as with local workers.

Data: each worker loads the dataset itself, with the same --data / search rules (probed on
every worker when the sweep starts). When a worker cannot find it, the sweep ships its own
copy once to every worker (``client.scatter(dataset, broadcast=True)``): full MNIST is about
55 MB per worker, sent once per sweep, not per trial.

A worker lost mid-trial: the trial is marked failed (Dask would run the task again on
another worker; that second attempt is cancelled). The scheduler unreachable at the start:
SweepError; lost mid-sweep: SweepError from ``poll`` (the runner keeps the finished trials,
and ``--resume`` continues).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from engine.sweep.events import TrialJob, WorkerEnd, WorkerEvent, WorkerHello, WorkerLost
from engine.sweep.study import SweepError

CONNECT_TIMEOUT = 10.0          # seconds to reach the scheduler
LOST_SECONDS = 20.0             # the client disconnected this long: the cluster is lost
VERDICT_TIMEOUT = 900.0         # a task waits this long for the sweep's verdict, then stops
STOP_CHECK_SECONDS = 1.0        # how often a task asks its control queue for "stop" mid-epoch
_DATASETS: dict[str, Any] = {}  # per worker process: datasets shipped by a sweep


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SweepError("--cluster needs the 'distributed' package: pip install 'termnist[cluster]'") from None
    return distributed


def probe_dataset(name: str, data_dir: str | None) -> str:
    """(On a worker) "" when this worker can load the dataset, else why not."""
    from engine.errors import TermnistError
    from engine.sweep.worker import load_cached

    try:
        load_cached(name, data_dir)
        return ""
    except TermnistError as exc:
        return str(exc)


def event_to_dict(event: Any) -> dict[str, Any]:
    return {"type": type(event).__name__, "fields": asdict(event)}


def event_from_dict(d: dict[str, Any]) -> Any:
    from engine import events as ev

    cls = getattr(ev, d["type"])
    return cls(**d["fields"])


def dask_trial(job: dict[str, Any], events_name: str, control_name: str, dataset: Any = None) -> str:
    """(A Dask task) train one trial; returns the worker's address. ``dataset``: shipped by the
    sweep when this worker could not find it (else loaded here, once per worker process)."""
    from distributed import Queue, get_worker

    from engine import events as ev
    from engine.errors import TermnistError
    from engine.sweep.worker import load_cached, train_trial

    trial = TrialJob(**job)
    address = get_worker().address
    events, control = Queue(events_name), Queue(control_name)
    number = trial.number
    events.put({"kind": "hello", "number": number, "worker": address})
    last_check = [time.monotonic()]
    stopped = [False]

    def send(event: Any) -> None:
        events.put({"kind": "event", "number": number, "event": event_to_dict(event)})

    def verdict() -> bool:
        try:
            answer = control.get(timeout=VERDICT_TIMEOUT)
        except TimeoutError:
            return False
        return answer == "go" and not stopped[0]

    def stop_requested() -> bool:
        now = time.monotonic()
        if not stopped[0] and now - last_check[0] >= STOP_CHECK_SECONDS:
            last_check[0] = now
            if control.qsize() > 0:
                stopped[0] = True
        return stopped[0]

    error = None
    try:
        if dataset is None:
            dataset = load_cached(trial.dataset, trial.data_dir)
        train_trial(trial, dataset, send, verdict, stop_requested)
    except TermnistError as exc:
        send(ev.Failed(message=str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the sweep as the trial's failure
        error = f"{type(exc).__name__}: {exc}"
    events.put({"kind": "end", "number": number, "error": error})
    return str(address)


class DaskBackend:
    """The sweep's backend on a Dask cluster (see LocalPool for the interface)."""

    def __init__(self, address: str, *, dataset_name: str, data_dir: str | None, dataset: Any = None,
                 on_note: Any = None, connect_timeout: float | None = None) -> None:
        distributed = _require_distributed()
        connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self.address = address
        note = on_note or (lambda s: None)
        try:
            self.client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"--cluster {address}: cannot reach the Dask scheduler ({exc});"
                             " is `dask scheduler` running there, and the port open?") from None
        try:
            workers = self._wait_for_workers(connect_timeout)
            self.slots = sum(int(w.get("nthreads", 1)) for w in workers.values())
            token = uuid.uuid4().hex[:12]
            self._token = token
            self.events = distributed.Queue(f"termnist-{token}-events", client=self.client)
            self._control: dict[int, Any] = {}
            self._futures: dict[int, Any] = {}
            self._hello: dict[int, str] = {}
            self._disconnected_at: float | None = None
            self._data = None
            missing = {w: why for w, why in self.client.run(probe_dataset, dataset_name, data_dir).items() if why}
            if missing:
                if dataset is None:
                    from engine.datasets import load_dataset

                    dataset = load_dataset(dataset_name, data_dir=data_dir)
                size = sum(getattr(dataset, k).nbytes for k in ("x_train", "y_train", "x_test", "y_test"))
                note(f"{len(missing)} of {len(workers)} Dask worker(s) cannot find {dataset_name}"
                     f" ({next(iter(missing.values()))}): shipping it to every worker once"
                     f" ({size / 1e6:.0f} MB each)")
                self._data = self.client.scatter(dataset, broadcast=True)
        except SweepError:
            self.client.close()
            raise
        except Exception as exc:  # noqa: BLE001 - any comm failure while starting: one line
            self.client.close()
            raise SweepError(f"--cluster {address}: {type(exc).__name__}: {exc}") from None

    def _wait_for_workers(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            workers = self.client.scheduler_info().get("workers", {})
            if workers:
                return workers
            if time.monotonic() > deadline:
                raise SweepError(f"--cluster {self.address}: the scheduler has no workers"
                                 " (start some with `dask worker tcp://HOST:PORT --nthreads 1`)")
            time.sleep(0.25)

    def describe(self) -> str:
        return f"Dask cluster {self.address} ({self.slots} worker thread(s))"

    @property
    def free(self) -> int:
        return self.slots - len(self._futures)

    def submit(self, job: TrialJob) -> str:
        from distributed import Queue

        number = job.number
        try:
            control = Queue(f"termnist-{self._token}-ctl-{number}", client=self.client)
            self._control[number] = control
            self._futures[number] = self.client.submit(
                dask_trial, asdict(job), self.events.name, control.name, self._data, pure=False,
                key=f"termnist-trial-{self._token}-{number}")
        except Exception as exc:  # noqa: BLE001 - comm errors of a lost scheduler take many forms
            self._forget(number)
            raise SweepError(f"--cluster {self.address}: lost the connection to the scheduler"
                             f" ({type(exc).__name__}: {exc})") from None
        return "dask"

    def verdict(self, number: int, go: bool) -> None:
        self._put(number, "go" if go else "stop")

    def stop(self, number: int) -> None:
        self._put(number, "stop")

    def _put(self, number: int, value: str) -> None:
        control = self._control.get(number)
        if control is not None:
            try:
                control.put(value, timeout=5)
            except Exception:  # noqa: BLE001 - a lost cluster shows up in poll()
                pass

    def _forget(self, number: int) -> None:
        self._futures.pop(number, None)
        self._control.pop(number, None)
        self._hello.pop(number, None)

    def poll(self, timeout: float) -> list[Any]:
        out: list[Any] = []
        try:
            if self.client.status != "running":
                self._disconnected_at = self._disconnected_at or time.monotonic()
                if time.monotonic() - self._disconnected_at > LOST_SECONDS:
                    raise SweepError(f"--cluster {self.address}: lost the connection to the scheduler")
                time.sleep(min(timeout, 0.5))
                return out
            self._disconnected_at = None
            # batch=True never blocks on the scheduler (a server-side timeout there is logged as an
            # error by the scheduler each time); wait here instead
            deadline = time.monotonic() + timeout
            records = list(self.events.get(batch=True))
            while not records and time.monotonic() < deadline:
                time.sleep(0.05)
                records = list(self.events.get(batch=True))
        except SweepError:
            raise
        except Exception as exc:  # noqa: BLE001 - comm errors of a lost scheduler take many forms
            self._disconnected_at = self._disconnected_at or time.monotonic()
            if time.monotonic() - self._disconnected_at > LOST_SECONDS:
                raise SweepError(f"--cluster {self.address}: lost the connection to the scheduler"
                                 f" ({type(exc).__name__}: {exc})") from None
            return out
        for rec in records:
            number = int(rec["number"])
            if number not in self._futures:
                continue
            kind = rec["kind"]
            if kind == "hello":
                if number in self._hello:      # Dask runs the task again after its worker died
                    self._put(number, "stop")  # cancel() does not stop a running task: it ends itself
                    self._futures[number].cancel()
                    out.append(WorkerLost(number, f"Dask worker {self._hello[number]} was lost mid-trial"))
                    self._forget(number)
                    continue
                self._hello[number] = rec["worker"]
                out.append(WorkerHello(number, rec["worker"]))
            elif kind == "event":
                out.append(WorkerEvent(number, event_from_dict(rec["event"])))
            elif kind == "end":
                out.append(WorkerEnd(number, rec.get("error")))
                self._forget(number)
        for number, fut in list(self._futures.items()):
            if fut.status in ("error", "cancelled", "lost"):
                why = fut.status
                if fut.status == "error":
                    failure = fut.exception()
                    why = f"{type(failure).__name__}: {failure}"
                out.append(WorkerLost(number, f"Dask task failed ({why})"))
                self._forget(number)
        return out

    def close(self) -> None:
        try:
            for fut in self._futures.values():
                fut.cancel()
        finally:
            self.client.close(timeout=5)
