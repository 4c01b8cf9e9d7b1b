"""Checkpoints: weights + architecture + settings + training metadata in one ``.npz``.

Safe to load from strangers: read with ``allow_pickle=False``, every array checked
against the stated architecture before use. Written atomically: a temporary file in the
same directory, flushed and fsync'ed, then ``os.replace`` over the target, so a crash at
any moment leaves either the old file or the new one.

Layout of the archive:
  ``meta``               0-d unicode array holding JSON: format, architecture, config,
                         metadata (dataset, epochs done, accuracies, history, RNG state)
  ``param/<name>``       one array per model parameter (``dense0.W`` ...)
  ``optim/<key>``        optimizer state arrays (optional)
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write, temp_prefix, write_target
from engine.errors import (
    CheckpointError,
    ConfigError,
    TermnistError,
    os_errors,
    path_error,
    require_zip,
    stat_path,
    user_path,
)
from engine.mlp import MLP
from engine.config import TrainConfig

FORMAT = "termnist-checkpoint"
FORMAT_VERSION = 1
MAX_META_CHARS = 16 * 1024 * 1024


@dataclass
class Checkpoint:
    model: MLP
    config: TrainConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, np.ndarray] | None = None


def save_path(path: str | os.PathLike[str]) -> Path:
    """The file ``save_checkpoint(path, ...)`` writes, checked before anything is trained.

    ``.npz`` is added to a name without a suffix (``model`` and ``model.`` both give
    ``model.npz``). Raises CheckpointError naming the path when it is empty or a directory,
    when its directory is missing, or when a file cannot be created there (read-only file
    system, permissions, a name too long): found now, not after an hour of training. A
    symbolic link is checked where it points (the save writes through it).
    """
    text = os.fspath(path)
    if not text.strip():
        raise CheckpointError("empty path: give a file name such as model.npz")
    target = user_path(text, "any", CheckpointError)
    if text.endswith(("/", os.sep)) or _is_dir(target):
        raise CheckpointError(f"{text}: is a directory: give a file name, such as "
                              f"{os.path.join(text, 'model.npz')}")
    if target.suffix == "":
        target = target.with_name(target.name.rstrip(".") + ".npz")
        user_path(target, "any", CheckpointError)
        if _is_dir(target):
            raise CheckpointError(f"{target}: is a directory: give a file name")
    real = write_target(target)
    directory = real.parent
    st, exc = stat_path(directory)
    if exc is not None and exc.errno == errno.ENOENT:
        raise CheckpointError(f"{target}: cannot save: directory {directory} does not exist")
    if exc is not None:
        raise path_error(directory, exc, CheckpointError, "cannot save there")
    assert st is not None
    if not stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{target}: cannot save: {directory} is not a directory")
    with os_errors(directory, CheckpointError, "cannot save there"):  # can a file be made there?
        fd, probe = tempfile.mkstemp(prefix=temp_prefix(real), suffix=".probe", dir=directory)
        os.close(fd)
        os.unlink(probe)
    return target


def _is_dir(p: Path) -> bool:
    st, _ = stat_path(p)
    return st is not None and stat.S_ISDIR(st.st_mode)


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically. Returns the final path.

    The path is checked and completed by ``save_path`` (``.npz`` added when the name has no
    suffix). A symbolic link is written through; a new file gets the umask's mode, a
    replaced one keeps its own. Raises CheckpointError naming the file when it cannot be
    written; the target is untouched in that case.
    """
    target = save_path(path)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "architecture": ckpt.model.architecture(),
        "config": ckpt.config.to_dict(),
        "metadata": ckpt.metadata,
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, default=_json_default))}
    for name, value in ckpt.model.get_weights().items():
        arrays[f"param/{name}"] = np.ascontiguousarray(value)
    for key, value in (ckpt.optimizer_state or {}).items():
        arrays[f"optim/{key}"] = np.asarray(value)
    with os_errors(target, CheckpointError, "cannot save"), atomic_write(target, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first kwarg as allow_pickle
    return target


def beside(path: str | os.PathLike[str], tag: str) -> Path:
    """``good.npz`` -> ``good.<tag>.npz``: where a run that did not complete is saved, so it
    never replaces the file the user named."""
    p = save_path(path)
    return p.with_name(f"{p.stem}.{tag}{p.suffix or '.npz'}")


def keep_checkpoint(ckpt: Checkpoint, wanted: str | os.PathLike[str],
                    places: Sequence[str | os.PathLike[str]]) -> tuple[Path | None, list[str]]:
    """Save ``ckpt`` into the first of ``places`` (directories) that takes it, named after
    ``wanted`` plus a timestamp: for weights whose save to ``wanted`` failed. Returns (the
    path, or None when every place failed too; the reasons of the places that failed)."""
    stem = Path(os.fspath(wanted) or "model").name.rsplit(".npz", 1)[0][:100] or "model"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    reasons: list[str] = []
    for place in places:
        try:
            d = Path(place)
            with os_errors(d, CheckpointError, "cannot create the directory"):
                d.mkdir(parents=True, exist_ok=True)
            return save_checkpoint(d / f"{stem}-{stamp}.npz", ckpt), reasons
        except CheckpointError as exc:
            reasons.append(str(exc))
    return None, reasons


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint. Raises CheckpointError naming the file and the reason.

    Everything is checked before a model is built: the file is a zip (an ``.npz``), the
    metadata's every field has the right type, the architecture is one termnist builds, and
    each weight array is present with the shape that architecture needs -- so an absurd
    stated size is refused without allocating anything.
    """
    p = user_path(path, "file", CheckpointError, "checkpoint file")  # OSError -> CheckpointError
    name = str(p)
    require_zip(p, CheckpointError, "a termnist checkpoint")
    try:
        npz = np.load(p, allow_pickle=False)
    except PermissionError:
        raise CheckpointError(f"{name}: permission denied") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{name}: not a termnist checkpoint (not a readable .npz archive: {exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{name}: not a termnist checkpoint (a bare .npy array, not an .npz archive)")
    with npz:
        try:
            files = set(npz.files)
            if "meta" not in files:
                raise CheckpointError(f"{name}: not a termnist checkpoint (no 'meta' entry)")
            meta = _read_meta(name, npz["meta"])
            arch = _check_architecture(name, meta["architecture"])
            config = _check_config(name, meta.get("config"), arch)
            metadata = _check_metadata(name, meta.get("metadata"))
            sizes = arch["sizes"]
            shapes: dict[str, tuple[int, ...]] = {}
            for i in range(len(sizes) - 1):
                shapes[f"dense{i}.W"] = (sizes[i], sizes[i + 1])
                shapes[f"dense{i}.b"] = (sizes[i + 1],)
            extra = {f for f in files if f.startswith("param/")} - {f"param/{k}" for k in shapes}
            if extra:
                raise CheckpointError(f"{name}: unexpected arrays {sorted(extra)} for a {_arch_str(arch)} network")
            weights = {}
            for pname, shape in shapes.items():
                key = f"param/{pname}"
                if key not in files:
                    raise CheckpointError(f"{name}: missing array '{pname}' for a {_arch_str(arch)} network")
                arr = _read_array(name, npz, key)
                if arr.shape != shape:
                    raise CheckpointError(
                        f"{name}: '{pname}' has shape {arr.shape}, but a {_arch_str(arch)} network needs {shape}"
                    )
                if not np.all(np.isfinite(arr)):
                    raise CheckpointError(f"{name}: '{pname}' contains NaN or infinite values")
                weights[pname] = arr
            model = MLP.from_weights(arch, weights)   # sizes now bounded by the arrays in the file
            opt_state = {f[len("optim/"):]: _read_array(name, npz, f) for f in files if f.startswith("optim/")}
            if opt_state:   # what resuming will load: checked now, so its errors name the file
                from engine.optim import make_optimizer

                make_optimizer(config.optimizer, model.params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay).load_state_dict(opt_state)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{name}: damaged checkpoint: {exc}") from None
        except TermnistError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
    return Checkpoint(model=model, config=config, metadata=metadata, optimizer_state=opt_state or None)


#: Most units in one layer (inputs included) and most layers a checkpoint may state.
MAX_UNITS = 1 << 20
MAX_LAYERS = 18


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_architecture(name: str, arch: Any) -> dict[str, Any]:
    """The recorded architecture, every field checked (CheckpointError naming the file)."""
    from engine.activations import ACTIVATIONS
    from engine.init import INIT_NAMES
    from engine.losses import LOSSES

    sizes = arch.get("sizes")
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= MAX_LAYERS
            or not all(_is_int(s) and 1 <= s <= MAX_UNITS for s in sizes)):
        raise CheckpointError(f"{name}: invalid architecture: 'sizes' must be a list of 2 to {MAX_LAYERS} "
                              f"layer sizes, each 1..{MAX_UNITS}, got {_short(sizes)}")
    checked: dict[str, Any] = {"sizes": list(sizes)}
    for key, known, default in (("activation", ACTIVATIONS, None), ("loss", LOSSES, None),
                                ("init", INIT_NAMES, "auto"), ("dtype", ("float32", "float64"), "float32")):
        value = arch.get(key, default)
        if not isinstance(value, str) or value not in known:
            raise CheckpointError(f"{name}: invalid architecture: '{key}' is {_short(value)}, expected one of "
                                  f"{', '.join(known)}")
        checked[key] = value
    return checked


def _check_config(name: str, raw: Any, arch: dict[str, Any]) -> TrainConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{name}: invalid settings: expected a JSON object, got {_short(raw)}")
    try:
        config = TrainConfig.from_dict(raw)
    except ConfigError as exc:
        raise CheckpointError(f"{name}: invalid settings: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{name}: invalid settings ({exc})") from None
    if tuple(config.hidden) != tuple(arch["sizes"][1:-1]):
        raise CheckpointError(f"{name}: the settings' hidden layers {list(config.hidden)} disagree with the "
                              f"architecture {_arch_str(arch)}")
    return config


#: Metadata fields other code reads, and the types they must have when present.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "dataset_title": (str,), "dataset_source": (str,), "is_sample": (bool,),
    "class_names": (list,), "epochs_done": (int,), "global_step": (int,), "history": (list,),
    "rng_state": (dict,), "val_acc": (int, float, type(None)), "train_acc": (int, float, type(None)),
    "test_acc": (int, float, type(None)), "test_loss": (int, float, type(None)),
    # live changes (TrainingSession.change): the settings saved are those in effect after them
    "changes": (list,), "schedule_batch_size": (int,),
}


def _check_metadata(name: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CheckpointError(f"{name}: invalid metadata: expected a JSON object, got {_short(raw)}")
    for key, types in _META_TYPES.items():
        if key not in raw:
            continue
        value = raw[key]
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if ok and key in ("epochs_done", "global_step"):
            ok = value >= 0
        elif ok and key == "schedule_batch_size":
            ok = value >= 1
        elif ok and key == "changes":
            ok = all(isinstance(c, dict) and isinstance(c.get("field"), str) for c in value)
        elif ok and key == "class_names":
            ok = all(isinstance(c, str) for c in value)
        elif ok and key == "history":
            ok = all(isinstance(row, dict) for row in value)
        elif ok and key == "rng_state":
            try:
                np.random.default_rng(0).bit_generator.state = value
            except (TypeError, ValueError, KeyError, OverflowError):
                ok = False
        if not ok:
            raise CheckpointError(f"{name}: invalid metadata: '{key}' is {_short(value)}")
    return dict(raw)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_array(name: str, npz: Any, key: str) -> np.ndarray:
    try:
        arr = npz[key]
    except ValueError as exc:  # object arrays need pickle: refused
        raise CheckpointError(f"{name}: '{key}' holds Python objects (pickle), refused for safety: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise CheckpointError(f"{name}: '{key}' has dtype {arr.dtype}, expected numbers")
    return arr


def _read_meta(name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, np.ndarray) or raw.dtype.kind != "U" or raw.shape != ():
        raise CheckpointError(f"{name}: 'meta' is not a JSON text entry")
    text = str(raw)
    if len(text) > MAX_META_CHARS:
        raise CheckpointError(f"{name}: 'meta' is implausibly large ({len(text)} characters)")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{name}: 'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a termnist checkpoint (format marker missing)")
    if not _is_int(meta.get("version", 0)):
        raise CheckpointError(f"{name}: invalid 'version' {_short(meta.get('version'))}")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{name}: written by a newer termnist (format {meta.get('version')}); upgrade termnist")
    if not isinstance(meta.get("architecture"), dict):
        raise CheckpointError(f"{name}: no architecture recorded")
    return meta


def _arch_str(arch: dict[str, Any]) -> str:
    try:
        return "-".join(str(int(s)) for s in arch["sizes"])
    except (KeyError, TypeError, ValueError):
        return "?"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
