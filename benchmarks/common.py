"""Shared pieces: run options, the machine description, statistics and result tables."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


# ------------------------------------------------------------------------------ options
@dataclass
class Options:
    """What a section needs to know about this run."""

    quick: bool = False                 # bundled sample, tiny counts (the smoke test)
    data_dir: Path | None = None        # full MNIST (None: the bundled sample)
    torch: bool = True                  # compare with PyTorch when it is installed
    verbose: bool = True                # progress lines on stderr
    _workdir: Path | None = field(default=None, repr=False)

    @property
    def workdir(self) -> Path:
        """A private temporary directory (settings, recovery state of the apps started here),
        made on first use and removed by ``cleanup()``."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="termnist-bench-"))
        return self._workdir

    @property
    def full_data(self) -> bool:
        return self.data_dir is not None

    def log(self, text: str) -> None:
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _has_mnist(d: Path) -> bool:
    return d.is_dir() and all((d / f).exists() or (d / f"{f}.gz").exists() for f in _MNIST_FILES)


def find_full_mnist(explicit: str | os.PathLike | None = None) -> Path | None:
    """--data, else $TERMNIST_DATA (or its mnist/), else <repo>/../shared/data/mnist."""
    if explicit:
        d = Path(explicit).expanduser()
        return d if _has_mnist(d) else None
    candidates: list[Path] = []
    env = os.environ.get("TERMNIST_DATA")
    if env:
        candidates += [Path(env), Path(env) / "mnist"]
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    return next((d for d in candidates if _has_mnist(d)), None)


_DATASETS: dict[str, Any] = {}


def load_data(opts: Options) -> Any:
    """The dataset every in-process measurement uses (loaded once per process)."""
    from engine.datasets import SAMPLE_DIR, load_dataset

    key = str(opts.data_dir or "sample")
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset("mnist", data_dir=opts.data_dir or SAMPLE_DIR)
    return _DATASETS[key]


def data_label(opts: Options) -> str:
    return f"full MNIST ({opts.data_dir})" if opts.full_data else "bundled MNIST sample (10,000 / 2,000)"


def child_env(opts: Options, **extra: str) -> dict[str, str]:
    """Environment for termnist child processes: settings and recovery state in the work dir."""
    env = dict(os.environ)
    env["TERMNIST_CONFIG_DIR"] = str(opts.workdir / "config")
    env["TERMNIST_STATE_DIR"] = str(opts.workdir / "state")
    env.pop("TERMNIST_DATA", None)
    env.setdefault("PYTHONPATH", str(REPO))
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- statistics
def median(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never interpolated."""
    vals = sorted(v for v in values if v is not None and not math.isnan(v))
    if not vals:
        return float("nan")
    k = max(1, math.ceil(q / 100.0 * len(vals)))
    return vals[k - 1]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fmt_s(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}" if x < 0.01 else f"{x:.{digits - 1}f}" if x < 1 else f"{x:.2f}"


def fmt_ratio(x: float | None) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    return f"{x:.2f}x"


def fmt_ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * 1000:.0f} ms" if x >= 0.01 else f"{x * 1000:.1f} ms"


def fmt_bytes(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 1024**2:
        return f"{x / 1024**2:.1f} MiB"
    if x >= 1024:
        return f"{x / 1024:.1f} KiB"
    return f"{x:.0f} B"


# ------------------------------------------------------------------------------- results
@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(["-" if c is None else str(c) for c in cells])

    def render(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        line = "  ".join("-" * w for w in widths)
        out = [f"== {self.title} ==", "  ".join(c.ljust(w) for c, w in zip(self.columns, widths)), line]
        for row in self.rows:
            cells = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)]
            out.append("  ".join(cells).rstrip())
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)


def _numeric(cell: str) -> bool:
    c = cell.strip().rstrip("x%sB").replace(",", "").replace(" m", "").replace(" Ki", "").replace(" Mi", "")
    try:
        float(c)
        return True
    except ValueError:
        return False


@dataclass
class Target:
    section: str
    name: str
    measured: str
    target: str
    met: bool | None          # None: not measured (see reason)
    reason: str = ""

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "n/a"}[self.met]


@dataclass
class SectionResult:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()

    def target(self, name: str, measured: str, target: str, met: bool | None, reason: str = "") -> None:
        self.targets.append(Target(self.name, name, measured, target, met, reason))

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": self.seconds,
            "load_average_before": list(self.load_before),
            "load_average_after": list(self.load_after),
            "tables": [asdict(t) for t in self.tables],
            "targets": [asdict(t) | {"verdict": t.verdict} for t in self.targets],
            "data": self.data,
        }


# ------------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _simd() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "none of avx2/avx512"
    except OSError:
        pass
    return "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Cores, CPU, versions and BLAS as threadpoolctl sees it (torch is not imported here)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import psutil  # noqa: F401 - optional ([bench] extra)

        psutil_version = _version("psutil")
    except ImportError:
        psutil_version = None
    blas = [
        {k: d.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                               "threading_layer", "architecture", "prefix")}
        for d in threadpool_info()
    ]
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOTO", "BLIS", "TEXTUAL_")) or k == "COLORTERM"}
    return {
        "cpu": _cpu_model(),
        "simd": _simd(),
        "cores_logical": os.cpu_count(),
        "cores_usable": usable,
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "blas": blas,
        "torch": _version("torch") if importlib.util.find_spec("torch") else None,
        "textual": _version("textual"),
        "psutil": psutil_version,
        "env": env,
    }


def machine_table(info: dict[str, Any]) -> Table:
    t = Table("Machine", ["item", "value"])
    t.add("CPU", f"{info['cpu']} ({info['cores_usable']} usable of {info['cores_logical']} logical cores; "
                 f"{info['simd']})")
    t.add("load average at start", " ".join(f"{x:.2f}" for x in info["load_average"]))
    t.add("Python / platform", f"{info['python']} / {info['platform']}")
    t.add("NumPy", info["numpy"])
    for b in info["blas"]:
        t.add(f"BLAS ({b['user_api']})",
              f"{b['internal_api']} {b['version']} arch={b['architecture']} "
              f"threading={b['threading_layer']} threads={b['num_threads']} ({b['prefix']})")
    t.add("PyTorch", info["torch"] or "not installed (pip install torch==2.13.0: CPU build)")
    t.add("Textual", info["textual"])
    if info["env"]:
        t.add("environment", " ".join(f"{k}={v}" for k, v in sorted(info["env"].items())))
    if "OPENBLAS_CORETYPE" in info["env"]:
        t.notes.append(f"OPENBLAS_CORETYPE={info['env']['OPENBLAS_CORETYPE']} pins OpenBLAS's kernels (left as "
                       "set): every engine figure and GEMM bound here uses those kernels")
    return t


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def pause_between(seconds: float = 0.2) -> None:
    """Let spinning BLAS/OpenMP worker threads of the previous measurement go to sleep."""
    time.sleep(seconds)


# ------------------------------------------------------------------------------ peak memory
def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; [] elsewhere): e.g. the app's training process."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except (OSError, ValueError):
        pass
    return out


def _stat_ticks(path: str) -> int | None:
    """utime + stime (clock ticks) from a /proc .../stat file, else None."""
    try:
        with open(path) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])           # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc), else None."""
    ticks = _stat_ticks(f"/proc/{pid}/stat")
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(native_id: int) -> float | None:
    """CPU seconds (user + system) of one thread of this process (Linux /proc), else None."""
    ticks = _stat_ticks(f"/proc/self/task/{native_id}/stat")
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")


def read_hwm(pid: int) -> int | None:
    """Peak resident set (bytes) of process ``pid`` since its exec: /proc VmHWM, else psutil RSS.

    Not getrusage/wait4 ru_maxrss: on Linux a child's ru_maxrss includes the RSS of the
    process it was forked from (the pre-exec address space), so children of a large
    benchmark process all look as large as it is.
    """
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # noqa: BLE001 - gone, or psutil missing
        return None


class PeakSampler:
    """Polls read_hwm(pid) every ``interval`` s in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import threading

        self.pid, self.interval = pid, interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"rss-{pid}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> int | None:
        v = read_hwm(self.pid)
        if v is not None and (self.peak is None or v > self.peak):
            self.peak = v
        return self.peak

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(timeout=1)
        return self.peak


# ------------------------------------------------------------------------------ other load
class CpuMeter:
    """CPU used by *other* processes (in CPUs, 0..cores) while the meter runs: all busy time in
    /proc/stat (steal included) minus the CPU time of ``pids`` (this process and its helpers)
    and of their children.
    Linux only; elsewhere ``other_cpus`` is None. Says how contended a measurement was."""

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.pids = [os.getpid(), *pids]
        self._t0 = 0.0
        self._busy0: int | None = None
        self._own0: int | None = None
        self.other_cpus: float | None = None

    @staticmethod
    def _busy() -> int | None:
        try:
            with open("/proc/stat") as fh:
                parts = fh.readline().split()
        except OSError:
            return None
        v = [int(x) for x in parts[1:]]
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)

    def _own(self) -> int | None:
        total = 0
        pids = set(self.pids)
        for pid in self.pids:            # and their children (the app's training process)
            pids.update(child_pids(pid))
        for pid in pids:
            total += _stat_ticks(f"/proc/{pid}/stat") or 0
        return total

    def __enter__(self) -> CpuMeter:
        self._t0, self._busy0, self._own0 = time.perf_counter(), self._busy(), self._own()
        return self

    def __exit__(self, *exc: Any) -> None:
        busy, own = self._busy(), self._own()
        wall = time.perf_counter() - self._t0
        if busy is None or own is None or self._busy0 is None or self._own0 is None or wall <= 0:
            return
        hz = os.sysconf("SC_CLK_TCK")
        self.other_cpus = max(0.0, ((busy - self._busy0) - (own - self._own0)) / hz / wall)
