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

from engine.atomic import atomic_write, write_target
from engine.errors import (CheckpointError, ConfigError, TermnistError, os_errors, path_error, stat_path,
                           user_path)
from engine.mlp import MLP
from engine.training import TrainConfig

FORMAT = "termnist-checkpoint"
FORMAT_VERSION = 1
MAX_META_CHARS = 16 * 1024 * 1024


@dataclass
class Checkpoint:
    model: MLP
    config: TrainConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, np.ndarray] | None = None


def clone_model(model: MLP) -> MLP:
    """An independent copy of ``model`` (same architecture, copied weights)."""
    return MLP.from_weights(model.architecture(), model.params)


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
        fd, probe = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".probe", dir=directory)
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
    with os_errors(target, CheckpointError, "cannot save"):
        with atomic_write(target, "wb") as fh:
            np.savez(fh, **arrays)
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
    reasons = []
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
    """Read and validate a checkpoint. Raises CheckpointError with a specific reason."""
    p = user_path(path, "file", CheckpointError, "checkpoint file")  # OSError -> CheckpointError
    name = str(p)
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
            arch = meta["architecture"]
            try:
                config = TrainConfig.from_dict(meta.get("config", {}))
                model = MLP(
                    sizes=tuple(int(s) for s in arch["sizes"]),
                    activation=arch["activation"],
                    loss=arch["loss"],
                    init=arch.get("init", "auto"),
                    dtype=arch.get("dtype", "float32"),
                    rng=np.random.default_rng(0),
                )
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"{name}: invalid architecture or settings: {exc}") from None
            weights = {}
            for pname, expected in model.params.items():
                key = f"param/{pname}"
                if key not in files:
                    raise CheckpointError(f"{name}: missing array '{pname}' for a {_arch_str(arch)} network")
                arr = _read_array(name, npz, key)
                if arr.shape != expected.shape:
                    raise CheckpointError(
                        f"{name}: '{pname}' has shape {arr.shape}, but a {_arch_str(arch)} network needs {expected.shape}"
                    )
                if not np.all(np.isfinite(arr)):
                    raise CheckpointError(f"{name}: '{pname}' contains NaN or infinite values")
                weights[pname] = arr
            extra = {f for f in files if f.startswith("param/")} - {f"param/{k}" for k in model.params}
            if extra:
                raise CheckpointError(f"{name}: unexpected arrays {sorted(extra)} for a {_arch_str(arch)} network")
            model.set_weights(weights)
            opt_state = {f[len("optim/"):]: _read_array(name, npz, f) for f in files if f.startswith("optim/")}
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
            raise CheckpointError(f"{name}: damaged checkpoint: {exc}") from None
        except TermnistError as exc:
            raise CheckpointError(f"{name}: {exc}") from None
    return Checkpoint(model=model, config=config, metadata=dict(meta.get("metadata") or {}),
                      optimizer_state=opt_state or None)


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
    if int(meta.get("version", 0)) > FORMAT_VERSION:
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
