"""What the data panel says, as plain values (no Textual): which datasets are here, where
termnist looked, whether a typed directory holds a set, and download progress as text.

Everything here is a pure function of the engine's search (``engine.datasets.locate_dataset``)
or of the numbers a download reports, so it is tested without an app.
"""

from __future__ import annotations

from typing import Any

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: Datasets ``termnist download`` can fetch (the keys of engine.download.MIRRORS; a test
#: checks this). Here, not in tui.commands.data, so the app's panels need not import the CLI.
DOWNLOADABLE = ("mnist", "fashion-mnist", "kmnist")

MNIST_CREDIT = "MNIST: Yann LeCun, Corinna Cortes, Christopher J.C. Burges (CC BY-SA 3.0)"
OTHER_CREDITS = {"fashion-mnist": "Fashion-MNIST: Zalando Research (MIT)",
                 "kmnist": "KMNIST: CODH (CC BY-SA 4.0)"}

#: Approximate size of the four published .gz files.
DOWNLOAD_SIZES = {"mnist": "about 12 MB", "fashion-mnist": "about 31 MB", "kmnist": "about 21 MB"}

#: What a dataset field option says after the name, by state.
STATE_MARKS = {"found": "", "sample": " (sample)", "missing": " (download)", "unavailable": " (missing)"}

IDX_HINT = ("a directory with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz), "
            "or with a <name>/ subdirectory holding them, or a Keras-style <name>.npz")


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def format_progress(filename: str, done: int, total: int | None, rate: float | None) -> str:
    """One progress line: name, bytes done/total, percent, rate and ETA (when known)."""
    parts = [filename]
    if total:
        parts.append(f"{human_bytes(done)} / {human_bytes(total)}  {100 * done / total:3.0f}%")
    else:
        parts.append(human_bytes(done))
    if rate:
        parts.append(f"{human_bytes(rate)}/s")
        if total and total > done:
            eta = int((total - done) / rate + 0.5)
            parts.append(f"ETA {eta // 60}:{eta % 60:02d}")
    return "  ".join(parts)


@dataclass(frozen=True)
class DataReport:
    """Where dataset ``name`` stands. ``state``: "found" (the real set), "sample" (MNIST only:
    the full set is missing and the bundled sample stands in), "missing" (nothing found; a
    download can fetch it) or "unavailable" (nothing found and nothing to download)."""

    name: str
    title: str
    state: str
    headline: str
    searched: tuple[str, ...]
    place: str = ""              # where it was found, when found
    downloadable: bool = False
    hint: str = ""               # what else would help (e.g. pip install for digits)

    @property
    def using_sample(self) -> bool:
        return self.state == "sample"


def _title(name: str) -> str:
    from engine.datasets import DATASETS

    spec = DATASETS.get(name)
    return spec.title if spec is not None else name


def credits_for(name: str) -> str:
    """Credit lines for the data panel: the dataset's own, and MNIST's (the sample is MNIST)."""
    return "\n".join(c for c in (OTHER_CREDITS.get(name), MNIST_CREDIT) if c)


def selectable_datasets() -> tuple[str, ...]:
    """Dataset names for the form: every registered set, ``digits`` only with scikit-learn,
    and last ``idx`` (any IDX set, of any image size, from a directory: Ctrl+D chooses it)."""
    import importlib.util

    from engine.datasets import available_datasets

    have_sklearn = importlib.util.find_spec("sklearn") is not None
    return tuple(n for n in available_datasets() if n != "digits" or have_sklearn) + ("idx",)


def dataset_state(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """"found", "sample", "missing" or "unavailable" for ``name`` (see DataReport)."""
    return data_report(name, data_dir).state


def option_label(name: str, state: str | None) -> str:
    """The dataset field's text for ``name``: ``"fashion-mnist (download)"``, ``"mnist (sample)"``."""
    return name + STATE_MARKS.get(state or "found", "")


def state_note(name: str, state: str | None) -> str:
    """One line under the dataset field saying what a not-found state means ("" when found)."""
    if state == "sample":
        return "full MNIST not found: the bundled sample stands in (Ctrl+D: get the full set)"
    if state == "missing":
        return f"{_title(name)} not found here (Ctrl+D: download it or choose a directory)"
    if state == "unavailable":
        return f"{_title(name)} not found (Ctrl+D: where termnist looked)"
    return ""


def data_report(name: str, data_dir: str | os.PathLike | None = None, *,
                results: Iterable[object] | None = None, message: str = "") -> DataReport:
    """Search for ``name`` (or use the given search ``results``) and say where it stands.

    ``message`` (e.g. a DatasetNotFoundError's text) is used as the headline when nothing
    was found and the search results are not known.
    """
    from engine.datasets import locate_dataset
    from engine.errors import TermnistError

    title = _title(name)
    downloadable = name in DOWNLOADABLE
    try:
        found = list(results) if results is not None else locate_dataset(name, data_dir)
    except TermnistError as exc:
        return DataReport(name, title, "unavailable", str(exc), (), downloadable=False)
    searched = tuple(str(r) for r in found)
    hit: Any = found[-1] if found and getattr(found[-1], "found", False) else None
    if hit is not None and getattr(hit, "kind", "") == "sample" and name == "mnist":
        return DataReport(
            name, title, "sample",
            "The full MNIST set was not found, so termnist uses the bundled sample "
            "(10,000 train / 2,000 test images): fine to learn with, but accuracy is a few "
            "points below a run on all 60,000 images.",
            searched, place="bundled sample", downloadable=True)
    if hit is not None:
        place = getattr(hit, "place", "") or ""
        where = "the bundled sample" if getattr(hit, "kind", "") == "sample" else place
        return DataReport(name, title, "found", f"{title} is here: {where}: {hit.detail}.",
                          searched, place=place, downloadable=False)
    hint = ""
    if name == "digits":
        hint = "scikit-learn is not installed: pip install 'termnist[digits]'"
    elif data_dir is not None:
        hint = data_dir_hint(data_dir, name)
    headline = f"{title} was not found." if searched or not message else message
    return DataReport(name, title, "missing" if downloadable else "unavailable", headline,
                      searched, downloadable=downloadable, hint=hint)


def data_dir_hint(data_dir: str | os.PathLike, name: str) -> str:
    """Why only one place was searched, and where a download would go."""
    return (f"termnist looks only in {data_dir}, the data directory in use. Download puts "
            f"the set in {Path(data_dir) / name} (or, if that cannot be written, in the user "
            "cache, and then searches the usual places).")


def report_from_error(name: str, message: str, searched: Iterable[str]) -> DataReport:
    """A DataReport for a failed load whose search is known only as text (DatasetMissing)."""
    searched = tuple(searched)
    downloadable = name in DOWNLOADABLE
    title = _title(name)
    if searched:
        headline = f"{title} was not found."
    else:
        headline = f"{title} could not be loaded: {message}"
    hint = "scikit-learn is not installed: pip install 'termnist[digits]'" if name == "digits" else ""
    return DataReport(name, title, "missing" if downloadable else "unavailable", headline,
                      searched, downloadable=downloadable, hint=hint)


def check_directory(name: str, text: str, cwd: str | os.PathLike | None = None
                    ) -> tuple[Path | None, str]:
    """Does the typed ``text`` name a directory (or .npz) holding dataset ``name``?

    Returns ``(absolute path, "")`` when it does, else ``(None, reason)`` naming every place
    looked at and what was (not) there.
    """
    from engine.datasets import locate_dataset
    from engine.errors import TermnistError

    text = text.strip()
    if not text:
        return None, "type a directory (Enter uses it, Escape closes)"
    path = Path(os.path.expandvars(text)).expanduser()
    if not path.is_absolute():
        try:
            path = Path(cwd or os.getcwd()) / path
        except OSError:   # the current directory was removed
            return None, f"{text}: the current directory no longer exists: type an absolute path"
    path = Path(os.path.normpath(path))
    if name == "digits":
        return None, "the scikit-learn digits come with scikit-learn, not from a directory"
    try:
        results = locate_dataset(name, path)
    except TermnistError as exc:
        return None, str(exc)
    if results and results[-1].found:
        return path, ""
    return None, f"no {_title(name)} there: " + "; ".join(str(r) for r in results)


# --- download progress --------------------------------------------------------------------

@dataclass(frozen=True)
class DownloadProgressInfo:
    """One moment of a download, ready to show."""

    name: str
    file: str
    file_index: int           # 1-based position among the dataset's files
    n_files: int
    done: int
    total: int | None
    rate: float | None       # bytes per second, once measurable

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    @property
    def eta_s(self) -> float | None:
        if not self.rate or not self.total or self.total <= self.done:
            return None
        return (self.total - self.done) / self.rate

    def text(self) -> str:
        """``file 1/4: train-images-idx3-ubyte.gz  1.2 MB / 9.9 MB  12%  2.0 MB/s  ETA 0:04``"""
        return f"file {self.file_index}/{self.n_files}: " + format_progress(
            self.file, self.done, self.total, self.rate)

    def short(self) -> str:
        """For the status line: ``downloading MNIST 1/4 12% 2.0 MB/s ETA 0:04``."""
        parts = [f"downloading {_title(self.name)} {self.file_index}/{self.n_files}"]
        if self.total:
            parts.append(f"{100 * self.done / self.total:.0f}%")
        else:
            parts.append(human_bytes(self.done))
        if self.rate:
            parts.append(f"{human_bytes(self.rate)}/s")
        eta = self.eta_s
        if eta is not None:
            s = int(eta + 0.5)
            parts.append(f"ETA {s // 60}:{s % 60:02d}")
        return " ".join(parts)


class DownloadMeter:
    """Turns engine.download's ``progress(file, done, total)`` calls into DownloadProgressInfo,
    measuring the rate per file and saying when an update is worth showing (at most every
    ``interval`` seconds, plus the end of each file)."""

    def __init__(self, name: str, files: Iterable[str], interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.files = [f if f.endswith(".gz") else f"{f}.gz" for f in files]
        self.interval = interval
        self.clock = clock
        self._file: str | None = None
        self._start = (0.0, 0)
        self._last = -1e18
        self.latest: DownloadProgressInfo | None = None

    def update(self, file: str, done: int, total: int | None) -> DownloadProgressInfo | None:
        """Record one progress call; returns the info to show, or None when too soon."""
        now = self.clock()
        if file != self._file:
            self._file, self._start, self._last = file, (now, done), -1e18
        t0, b0 = self._start
        rate = (done - b0) / (now - t0) if now - t0 > 0.5 and done > b0 else None
        index = self.files.index(file) + 1 if file in self.files else len(self.files) or 1
        self.latest = DownloadProgressInfo(self.name, file, index, max(len(self.files), index),
                                           done, total, rate)
        if now - self._last < self.interval and done != total:
            return None
        self._last = now
        return self.latest
