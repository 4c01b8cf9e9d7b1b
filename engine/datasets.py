"""Datasets: the registry, finding the files, loading them, the train/validation split, scaling.

A dataset is found by searching, in order (first hit wins; see ``locate_dataset``):

1. ``data_dir`` when given. It is then the ONLY place searched: an explicit directory that
   does not hold the set is an error, not a reason to quietly fall back to something else.
   It may hold the files directly, hold a ``<name>/`` subdirectory, or be a ``.npz`` file.
2. ``$TERMNIST_DATA/<name>/``, and ``$TERMNIST_DATA`` itself when that directory is named
   ``<name>`` (so ``TERMNIST_DATA=/data/mnist`` works, but is never read as Fashion-MNIST).
3. the user cache, ``platformdirs.user_cache_dir("termnist")/<name>/`` (where downloads go).
4. ``/usr/share/datasets/<name>/``.
5. for ``mnist`` only: the bundled sample (10,000 train / 2,000 test images).

A directory holds a set when it has the four canonical IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw
or ``.gz``) or a Keras-style ``<name>.npz`` (keys x_train, y_train, x_test, y_test).

A loaded ``Dataset`` holds read-only uint8 arrays: it can be shared between the training
thread and the UI without copies or locks.

About 700 lines on purpose: the registry (each file's published and content checksums), the
search, the loading and the verification share DatasetSpec/FileCheck, and the search itself
verifies (a directory is identified by its label files' checksums: ``identify_dir``), so
splitting them would make an import cycle. Verification (the last section) is the part to move
out, with the registry, if this grows.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import importlib.util
import json
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import (
    DatasetError,
    DatasetNotFoundError,
    os_reason,
    path_error,
    require_zip,
    stat_path,
    user_path,
)
from engine.idx import is_gzip, read_idx

__all__ = [
    "Dataset", "DatasetSpec", "FileCheck", "SearchResult", "VerifyResult", "DATASETS",
    "IDX_FILES", "SAMPLE_DIR", "available_datasets", "cache_root", "check_data_path", "find_idx_files",
    "fit_val_size", "identify_dir", "ignores_data_dir", "load_dataset", "locate_dataset", "split_train_val",
    "to_features", "verify_dir", "verify_file",
]

#: Canonical IDX file names (without .gz), in the order train images/labels, test images/labels.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "mnist-sample"
SYSTEM_ROOT = Path("/usr/share/datasets")
SAMPLE_PLACE = "bundled sample"


def cache_root() -> Path:
    """Where downloads go and are looked for: ``platformdirs.user_cache_dir("termnist")``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("termnist"))


# --- the registry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FileCheck:
    """How to verify one file: SHA-256 of its decompressed content and/or MD5 of the
    published ``.gz`` file. Either may be unknown (None)."""

    name: str  # canonical name, without .gz
    sha256: str | None = None
    md5_gz: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows about a dataset before loading it."""

    name: str
    title: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None  # None: whatever the files say (generic IDX)
    max_value: int = 255
    files: tuple[FileCheck, ...] = ()
    description: str = ""


_DIGITS = tuple(str(i) for i in range(10))
_MNIST_FILES = (
    FileCheck("train-images-idx3-ubyte",
              "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
              "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    FileCheck("train-labels-idx1-ubyte",
              "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
              "d53e105ee54ea40749a09fcbcd1e9432"),
    FileCheck("t10k-images-idx3-ubyte",
              "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
              "9fb629c4189551a2d022fa330f9573f3"),
    FileCheck("t10k-labels-idx1-ubyte",
              "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
              "ec29112dd5afa0611ce80d1b7f02629c"),
)

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist", "MNIST", _DIGITS, (28, 28), files=_MNIST_FILES,
        description="handwritten digits, 60,000 train / 10,000 test (LeCun, Cortes, Burges)"),
    "mnist-sample": DatasetSpec(
        "mnist-sample", "MNIST", _DIGITS, (28, 28),
        description="the bundled MNIST sample, 10,000 train / 2,000 test, class-balanced"),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        (28, 28),
        files=(  # SHA-256 of the content (as Debian's dataset-fashion-mnist ships it), MD5 of the published .gz
            FileCheck("train-images-idx3-ubyte",
                      "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                      "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            FileCheck("train-labels-idx1-ubyte",
                      "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                      "25c81989df183df01b3e8a0aad5dffbe"),
            FileCheck("t10k-images-idx3-ubyte",
                      "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                      "bef4ecab320f06d8554ea6380940ec79"),
            FileCheck("t10k-labels-idx1-ubyte",
                      "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                      "bb300cfdad3c16e7a12a480ee83fd310"),
        ),
        description="Zalando clothing images, 60,000 train / 10,000 test"),
    "kmnist": DatasetSpec(
        "kmnist", "Kuzushiji-MNIST",
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        (28, 28),
        files=(  # MD5 of the published .gz files (as torchvision checks them)
            FileCheck("train-images-idx3-ubyte", md5_gz="bdb82020997e1d708af4cf47b453dcf7"),
            FileCheck("train-labels-idx1-ubyte", md5_gz="e144d726b3acfaa3e44228e80efcd344"),
            FileCheck("t10k-images-idx3-ubyte", md5_gz="5c965bf0a639b31b8f53240b1b52f4d7"),
            FileCheck("t10k-labels-idx1-ubyte", md5_gz="7320c461ea6c1c855c0b718fb2a4b134"),
        ),
        description="cursive Japanese (Kuzushiji) characters, 60,000 train / 10,000 test"),
    "digits": DatasetSpec(
        "digits", "scikit-learn digits", _DIGITS, (8, 8), max_value=16,
        description="1,797 8x8 digits shipped with scikit-learn (pip install 'termnist[digits]')"),
    "idx": DatasetSpec(
        "idx", "IDX directory", (), None,
        description="any directory with the four canonical IDX files (needs --data DIR)"),
}


def available_datasets() -> tuple[str, ...]:
    """Names a user can pick without giving a directory, in display order."""
    return tuple(n for n in DATASETS if n != "idx")


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


# --- the Dataset ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Images are uint8 (N, H, W), labels uint8 (N,); both read-only.

    Construction validates shapes, counts and label range (DatasetError) and stores
    read-only views, so the caller's arrays are not modified.
    """

    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    is_sample: bool = False
    max_value: int = 255

    def __post_init__(self) -> None:
        n_classes = len(self.class_names)
        if n_classes < 2:
            raise DatasetError(f"{self.title}: needs at least 2 classes, got {n_classes}")
        shapes = []
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            _check_split(self.title, split, x, y, n_classes)
            shapes.append(x.shape[1:])
            for attr, a in ((f"x_{split}", x), (f"y_{split}", y)):
                view = a.view()
                view.setflags(write=False)
                object.__setattr__(self, attr, view)
        if shapes[0] != shapes[1]:
            raise DatasetError(f"{self.title}: train images are {_dims(shapes[0])} but test "
                               f"images are {_dims(shapes[1])}")
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of one image."""
        return self.x_train.shape[1], self.x_train.shape[2]

    @property
    def n_features(self) -> int:
        """H * W: the length of one flattened image."""
        return self.x_train.shape[1] * self.x_train.shape[2]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _check_split(where: str, split: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 3:
        raise DatasetError(f"{where}: {split} images must be a uint8 array (N, H, W), got "
                           f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    if not isinstance(y, np.ndarray) or y.dtype != np.uint8 or y.ndim != 1:
        raise DatasetError(f"{where}: {split} labels must be a uint8 array (N,), got "
                           f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
    if len(x) != len(y):
        raise DatasetError(f"{where}: {split} has {len(x)} images but {len(y)} labels")
    if len(y) == 0:
        raise DatasetError(f"{where}: {split} split is empty")
    if int(y.max()) >= n_classes:
        i = int(np.argmax(y >= n_classes))
        raise DatasetError(f"{where}: {split} label {int(y[i])} at index {i} is outside "
                           f"0..{n_classes - 1}")


# --- locating -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchResult:
    """One place searched: ``place`` (a path, or "bundled sample", "scikit-learn"),
    ``found``, and ``detail`` saying what is there or why not. ``path`` and ``kind``
    ("idx", "npz", "sample", "sklearn") tell the loader what to read when found."""

    place: str
    found: bool
    detail: str
    path: Path | None = field(default=None, compare=False)
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.place} ({self.detail})"


def find_idx_files(directory: str | os.PathLike) -> dict[str, Path]:
    """The canonical IDX files present in ``directory``: {canonical name: path}; a raw file is
    preferred over its .gz (faster to read). Missing files are simply absent from the dict.
    A file the OS refuses to look at (permission, name too long) is a DatasetError naming it."""
    d = Path(directory)
    found = {}
    for name in IDX_FILES:
        for candidate in (d / name, d / f"{name}.gz"):
            st, exc = stat_path(candidate)
            if exc is not None and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise path_error(candidate, exc)
            if st is not None and stat.S_ISREG(st.st_mode):
                found[name] = candidate
                break
    return found


def _probe(d: Path, name: str, place: str | None = None) -> SearchResult:
    """Does directory (or .npz file) ``d`` hold dataset ``name``?"""
    place = place or str(d)
    st, exc = stat_path(d)
    if exc is not None:
        if exc.errno == errno.ENOENT:
            return SearchResult(place, False, "no such directory")
        return SearchResult(place, False, os_reason(exc))
    assert st is not None
    if stat.S_ISREG(st.st_mode) and d.suffix == ".npz":
        return SearchResult(place, True, "Keras-style .npz", d, "npz")
    if not stat.S_ISDIR(st.st_mode):
        return SearchResult(place, False, "not a directory or .npz file")
    try:
        files = find_idx_files(d)
        npz_st, _ = stat_path(d / f"{name}.npz")
    except DatasetError as e:
        return SearchResult(place, False, str(e))
    if len(files) == len(IDX_FILES):
        other = _holds_another_set(d, name)
        if other:
            return SearchResult(place, False, other)
        gz = sum(p.suffix == ".gz" for p in files.values())
        kind = "gzip" if gz == len(files) else "raw" if gz == 0 else "raw and gzip"
        return SearchResult(place, True, f"4 IDX files ({kind})", d, "idx")
    npz = d / f"{name}.npz"
    if npz_st is not None and stat.S_ISREG(npz_st.st_mode):
        return SearchResult(place, True, f"Keras-style {npz.name}", npz, "npz")
    if files:
        missing = ", ".join(f"{n}[.gz]" for n in IDX_FILES if n not in files)
        return SearchResult(place, False, f"incomplete: missing {missing}")
    return SearchResult(place, False, "no IDX files or .npz here")


def ignores_data_dir(name: str) -> bool:
    """True for the datasets that never read a data directory: the bundled sample and
    scikit-learn's digits (``--data`` cannot apply to them)."""
    return name in ("digits", "mnist-sample")


def check_data_path(data_dir: str | os.PathLike) -> Path:
    """A ``--data`` argument, checked: an existing directory or ``.npz`` file, else a
    DatasetError naming it and why (the OS's reason, or what it is instead)."""
    d = user_path(data_dir, "exists", what="data directory")
    if not (_is_dir(d) or (d.suffix == ".npz" and stat.S_ISREG(os.stat(d).st_mode))):
        raise DatasetError(f"{os.fspath(data_dir)}: not a directory or .npz file")
    return d


def locate_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None
                   ) -> list[SearchResult]:
    """Every place searched for ``name``, in order, stopping at the first that holds it.

    Used for the "where I looked" message and the ``termnist datasets`` table.
    """
    _spec(name)
    if name == "digits":
        have = importlib.util.find_spec("sklearn") is not None
        return [SearchResult("scikit-learn", have,
                             "load_digits()" if have else "scikit-learn is not installed",
                             None, "sklearn" if have else "")]
    if name == "mnist-sample":
        return [_probe_sample()]
    results: list[SearchResult] = []
    if data_dir is not None:
        d = user_path(data_dir, "any", what="data directory")  # the OS refusing it: DatasetError
        first = _probe(d, name)
        results.append(first)
        if not first.found and _is_dir(d) and name != "idx":
            results.append(_probe(d / name, name))
        return results
    if name == "idx":
        return [SearchResult("--data DIR", False, "the generic IDX dataset needs a directory")]
    places: list[tuple[Path, str]] = []
    env = os.environ.get("TERMNIST_DATA")
    if env:
        root = Path(env).expanduser()
        places.append((root / name, f"$TERMNIST_DATA/{name} = {root / name}"))
        if root.name == name:
            places.append((root, f"$TERMNIST_DATA = {root}"))
    else:
        results.append(SearchResult("$TERMNIST_DATA", False, "not set"))
    places.append((cache_root() / name, str(cache_root() / name)))
    places.append((SYSTEM_ROOT / name, str(SYSTEM_ROOT / name)))
    for d, label in places:
        r = _probe(d, name, label)
        results.append(r)
        if r.found:
            return results
    if name == "mnist":
        results.append(_probe_sample())
    return results


def _holds_another_set(d: Path, name: str) -> str:
    """"" unless ``d`` holds a known set other than ``name`` (e.g. MNIST asked for as
    Fashion-MNIST); then says which. Sets without checksums ("idx") take any files."""
    if not DATASETS[name].files:
        return ""
    other = identify_dir(d)
    if other is None or other == name:
        return ""
    return (f"holds {DATASETS[other].title}, not {DATASETS[name].title} (checksums of its label "
            f"files): use --dataset {other}")


def _is_dir(p: Path) -> bool:
    st, _ = stat_path(p)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _probe_sample() -> SearchResult:
    if len(find_idx_files(SAMPLE_DIR)) == len(IDX_FILES):
        return SearchResult(SAMPLE_PLACE, True, "10,000 train / 2,000 test images",
                            SAMPLE_DIR, "sample")
    return SearchResult(SAMPLE_PLACE, False, f"missing from this install ({SAMPLE_DIR})")


# --- loading --------------------------------------------------------------------------------

def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Dataset:
    """Find and load dataset ``name`` (see the module docstring for the search order).

    Raises DatasetNotFoundError (with ``searched``) when no place holds it, DatasetError or
    IDXFormatError when the files found are unreadable or disagree.
    """
    spec = _spec(name)
    results = locate_dataset(name, data_dir)
    hit = results[-1] if results and results[-1].found else None
    if hit is None:
        searched = tuple(str(r) for r in results)
        if name == "digits":
            raise DatasetNotFoundError(
                "scikit-learn is not installed: pip install 'termnist[digits]'", searched)
        hint = (f"run `termnist download {name}`" if name in ("mnist", "fashion-mnist", "kmnist")
                else "pass --data DIR")
        raise DatasetNotFoundError(
            f"{spec.title} not found; looked in: {'; '.join(searched)}. To get it, {hint}.",
            searched)
    if hit.kind == "sklearn":
        return _load_digits(spec)
    assert hit.path is not None, hit          # every found place but scikit-learn has a path
    if hit.kind == "npz":
        arrays = _read_npz(hit.path)
    else:
        arrays = _read_idx_dir(hit.path)
    # the sample is the sample however it was reached (also as data_dir=SAMPLE_DIR)
    is_sample = hit.kind == "sample" or hit.path.resolve() == SAMPLE_DIR
    return _build(spec, arrays, SAMPLE_PLACE if is_sample else str(hit.path), is_sample)


def _read_idx_dir(d: Path) -> dict[str, np.ndarray]:
    files = find_idx_files(d)
    keys = ("x_train", "y_train", "x_test", "y_test")
    arrays = {k: read_idx(files[f]) for k, f in zip(keys, IDX_FILES)}
    for k, f in zip(keys, IDX_FILES):
        arrays[k] = _as_uint8(arrays[k], files[f].name, images=k.startswith("x"))
    for split, fx, fy in (("train", *IDX_FILES[:2]), ("test", *IDX_FILES[2:])):
        nx, ny = len(arrays[f"x_{split}"]), len(arrays[f"y_{split}"])
        if nx != ny:
            raise DatasetError(f"{d}: {split} split disagrees: {files[fx].name} has {nx} images "
                               f"but {files[fy].name} has {ny} labels")
    return arrays


def _as_uint8(a: np.ndarray, where: str, images: bool) -> np.ndarray:
    want = 3 if images else 1
    what = "images (N, H, W)" if images else "labels (N,)"
    if a.ndim != want:
        raise DatasetError(f"{where}: expected {what}, got shape {_dims(a.shape)}")
    if a.dtype == np.uint8:
        return a
    if images or a.dtype.kind not in "iu":
        raise DatasetError(f"{where}: expected uint8 {what}, got {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 255):
        raise DatasetError(f"{where}: labels must be within 0..255, got {a.min()}..{a.max()}")
    return a.astype(np.uint8)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    keys = ("x_train", "y_train", "x_test", "y_test")
    require_zip(path, DatasetError, "a Keras-style dataset")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DatasetError(f"{path.name}: missing arrays {', '.join(missing)} (has: "
                                   f"{', '.join(z.files) or 'none'})")
            arrays = {k: z[k] for k in keys}
    except ValueError as e:  # object arrays need pickle, which is refused
        raise DatasetError(f"{path.name}: holds object (pickled) arrays; refusing to load "
                           f"them ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{path.name}: not a readable .npz file ({e})") from None
    for k in keys:
        arrays[k] = _as_uint8(arrays[k], f"{path.name}[{k}]", images=k.startswith("x"))
    return arrays


def _build(spec: DatasetSpec, arrays: dict[str, np.ndarray], source: str, is_sample: bool
           ) -> Dataset:
    class_names = spec.class_names
    if not class_names:  # generic IDX: classes 0..max label
        top = max(int(arrays["y_train"].max()), int(arrays["y_test"].max()))
        class_names = tuple(str(i) for i in range(max(top + 1, 2)))
    for split in ("train", "test"):
        shape = arrays[f"x_{split}"].shape[1:]
        if spec.image_shape is not None and shape != spec.image_shape:
            raise DatasetError(f"{source}: {spec.title} images are {_dims(spec.image_shape)}, "
                               f"but the {split} images here are {_dims(shape)}: to train on "
                               f"IDX files of any image size, use --dataset idx")
    name = "mnist" if spec.name == "mnist-sample" else spec.name
    return Dataset(name=name, title=spec.title, class_names=class_names, source=source,
                   is_sample=is_sample, max_value=spec.max_value, **arrays)


DIGITS_SPLIT_SEED = 0


def _load_digits(spec: DatasetSpec) -> Dataset:
    """scikit-learn's 8x8 digits: uint8 values 0..16, 80/20 train/test after a fixed shuffle.

    The file is ordered by writer, so a file-order split tests on unseen writers only
    (~90%); the tutorials shuffle first (``train_test_split``), as this does with a fixed
    seed (DIGITS_SPLIT_SEED), so the split is the same on every machine.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetNotFoundError("scikit-learn is not installed: pip install "
                                   "'termnist[digits]'", ("scikit-learn (not installed)",)) from None
    bunch = load_digits()
    x = np.asarray(bunch.images).astype(np.uint8)  # exact: the values are integers 0..16
    y = np.asarray(bunch.target).astype(np.uint8)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(x))
    x, y = x[order], y[order]
    n_test = len(x) // 5
    cut = len(x) - n_test
    return _build(spec, {"x_train": x[:cut], "y_train": y[:cut], "x_test": x[cut:], "y_test": y[cut:]},
                  "scikit-learn load_digits()", False)


# --- splitting and scaling ------------------------------------------------------------------

def split_train_val(x: np.ndarray, y: np.ndarray, val_size: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_tr, y_tr, x_val, y_val): the last ``val_size`` rows validate. All four are views.

    ``val_size`` may be 0 (empty validation views); it must be below ``len(x)``.
    """
    if len(x) != len(y):
        raise DatasetError(f"cannot split: {len(x)} images but {len(y)} labels")
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)):
        raise DatasetError(f"validation size must be an integer, got {val_size!r}")
    n = len(x)
    if not 0 <= val_size < n:
        raise DatasetError(f"validation size {val_size} must be at least 0 and below the "
                           f"{n} training images")
    cut = n - int(val_size)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def fit_val_size(requested: int, n_train: int) -> int:
    """The validation size to use on a training set of ``n_train`` images when ``requested``
    is asked for: ``requested`` when it leaves training data (0 <= requested < n_train),
    else 1/5 of the set (a preset's 10,000 on the 10,000-image bundled sample -> 2,000).

    The one rule: TrainConfig's check (engine.config.check_fits) refuses a size this
    function would change; a UI that replaces a preset's default size uses this value."""
    if 0 <= requested < n_train:
        return int(requested)
    return max(0, int(n_train) // 5)


def to_features(x_uint8: np.ndarray, max_value: float, out: np.ndarray | None = None,
                dtype=np.float32) -> np.ndarray:
    """Images (n, H, W) (or already flat (n, D)) -> float features (n, H*W) in [0, 1].

    Computes ``x / max_value``. When ``out`` (shape (n, H*W), a float dtype) is given the
    result is written there and returned, and ``dtype`` is ignored.
    """
    x = np.asarray(x_uint8)
    if x.ndim < 2:
        raise ValueError(f"expected a batch of images (n, H, W) or (n, D), got shape {x.shape}")
    flat = x.reshape(len(x), -1)
    if out is None:
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"features must be a float dtype, got {dt}")
        out = np.empty(flat.shape, dtype=dt)
    elif out.shape != flat.shape or out.dtype.kind != "f":
        raise ValueError(f"out must be a float array of shape {flat.shape}, got "
                         f"{out.dtype} {out.shape}")
    np.divide(flat, out.dtype.type(max_value), out=out)
    return out


# --- verifying ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    """Outcome for one file. ``status``: "ok" (a checksum matched), "mismatch", "unverified"
    (no checksum applies to this file), or "missing". ``detail`` says what was checked."""

    file: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def content_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, decompressed first if it is gzip (by magic bytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        stream = gzip.GzipFile(fileobj=f, mode="rb") if is_gzip(f) else f
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """MD5 of the file's bytes as stored (for comparison with published .gz MD5s)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, check: FileCheck) -> VerifyResult:
    """Check one file against ``check``; never claims more than it checked.

    Either known checksum verifies it: the published MD5 of the ``.gz`` (when the file is
    that exact ``.gz``), or the SHA-256 of the decompressed content (whatever the gzip
    wrapper: a re-gzipped copy, as Debian's packages ship, or a raw file).
    """
    p = Path(path)
    st, exc = stat_path(p)
    if st is None or not stat.S_ISREG(st.st_mode):
        why = "no such file" if exc is None or exc.errno == errno.ENOENT else os_reason(exc)
        return VerifyResult(p.name, "missing", why)
    try:
        with open(p, "rb") as f:
            is_gz = is_gzip(f)
        gz_md5 = file_md5(p) if check.md5_gz and is_gz else None
        if gz_md5 is not None and gz_md5 == check.md5_gz:
            return VerifyResult(p.name, "ok", "MD5 of the .gz matches the published one")
        if check.sha256:
            got = content_sha256(p)
            if got == check.sha256:
                return VerifyResult(p.name, "ok", "SHA-256 of the content matches")
            return VerifyResult(p.name, "mismatch", f"SHA-256 of the content is {got[:16]}..., "
                                                    f"expected {check.sha256[:16]}...")
        if gz_md5 is not None:
            return VerifyResult(p.name, "mismatch", f"MD5 of the .gz is {gz_md5}, the published "
                                                    f"one is {check.md5_gz} (and no checksum of "
                                                    f"the content is known)")
        if check.md5_gz:
            return VerifyResult(p.name, "unverified", "only the MD5 of the published .gz "
                                                      "is known, and this file is not gzip")
    except (OSError, EOFError, zlib.error) as e:
        return VerifyResult(p.name, "mismatch", f"unreadable: {e}")
    return VerifyResult(p.name, "unverified", "no checksum known for this file")


#: Label files identify a set cheaply (70 KB to hash, not 47 MB): no two known sets share them.
_LABEL_FILES = ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte")


def identify_dir(directory: str | os.PathLike) -> str | None:
    """Which registered dataset the IDX files in ``directory`` are, by the checksums of their
    two label files (either known checksum counts), or None when they match no known set."""
    files = find_idx_files(directory)
    for name, spec in DATASETS.items():
        checks = {c.name: c for c in spec.files}
        if all(n in checks and n in files and verify_file(files[n], checks[n]).ok
               for n in _LABEL_FILES):
            return name
    return None


def sample_checks(directory: str | os.PathLike = SAMPLE_DIR) -> tuple[FileCheck, ...]:
    """The sample's checksums, from its indices.json (SHA-256 of each decompressed file)."""
    path = Path(directory) / "indices.json"
    try:
        meta = json.loads(path.read_text())
        sums = meta["sha256"]
        return tuple(FileCheck(n, sums[n]) for n in IDX_FILES)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: cannot read the sample's checksums ({e})") from None


def verify_dir(name: str, directory: str | os.PathLike) -> list[VerifyResult]:
    """Verify the four IDX files of dataset ``name`` in ``directory`` (raw or .gz), one
    VerifyResult each, in canonical order."""
    spec = _spec(name)
    directory = user_path(directory, "dir", what="directory to verify")
    checks = sample_checks(directory) if name == "mnist-sample" else spec.files
    if not checks:
        raise DatasetError(f"{spec.title}: no checksums are known for this dataset")
    present = find_idx_files(directory)
    results = []
    for check in checks:
        if check.name not in present:
            results.append(VerifyResult(check.name, "missing", "neither raw nor .gz present"))
        else:
            results.append(verify_file(present[check.name], check))
    return results
