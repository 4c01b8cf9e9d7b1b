"""Verified, resumable downloads of the IDX datasets (stdlib urllib only).

``download("mnist")`` fetches the four canonical ``.gz`` files into the user cache directory
(``platformdirs.user_cache_dir("termnist")/mnist``, where ``load_dataset`` looks), or directly
into ``to`` when given. For each file the mirrors are tried in order: the caller's
``mirrors``, then ``$TERMNIST_MIRROR`` (whitespace/comma separated), then the registry's.

Each file is written to ``<final>.part``; an existing ``.part`` is resumed with an HTTP Range
request (if the server answers 200 instead of 206, the file restarts from zero). A connection
cut mid-file is resumed on the same mirror a few times. The finished ``.part`` is checked
(SHA-256 of the decompressed content where known, else the published MD5 of the .gz) and only
then renamed to the final name, so a final name always holds a verified file. A wrong checksum
deletes the ``.part``. Cancelling (a ``threading.Event``) keeps the ``.part`` for resuming.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from engine import datasets
from engine.datasets import FileCheck, verify_file
from engine.errors import DownloadError, os_errors, user_path

__all__ = ["MIRRORS", "DownloadCancelled", "download", "mirror_list", "target_dir"]

#: Canonical mirrors per dataset, tried in order. Files are ``<mirror><canonical name>.gz``.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision
        "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "kmnist": (
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
}

Progress = Callable[[str, int, "int | None"], None]  # (filename, bytes_done, bytes_total)
Log = Callable[[str], None]

_CHUNK = 64 * 1024
_RESUMES = 3  # times a cut connection is resumed on the same mirror (each must make progress)
_USER_AGENT = "termnist (Python urllib)"


class DownloadCancelled(DownloadError):
    """The cancel event was set; the partial file is kept for resuming."""


class _MirrorFailed(Exception):
    """One mirror failed for one file; the message says why."""


def target_dir(name: str, to: str | os.PathLike | None = None) -> Path:
    """Where ``download(name, to)`` puts the files."""
    if to is None:
        return datasets.cache_root() / name
    return user_path(to, "any", DownloadError, "download directory")  # the OS refusing it: an error


def mirror_list(name: str, extra: Iterable[str] = ()) -> list[str]:
    """Mirrors to try, in order: ``extra``, then $TERMNIST_MIRROR, then the registry's.

    A mirror that is a local directory path becomes a file:// URL. Duplicates are dropped.
    """
    env = re.split(r"[\s,]+", os.environ.get("TERMNIST_MIRROR", "").strip())
    out: list[str] = []
    for given in [*extra, *env, *MIRRORS.get(name, ())]:
        m = given.strip()
        if not m:
            continue
        if "://" not in m:
            try:
                m = Path(m).expanduser().resolve().as_uri()
            except (OSError, RuntimeError):   # a symlink loop, a name too long: it fails as a mirror
                m = Path(os.path.abspath(Path(m).expanduser())).as_uri()
        m = m.rstrip("/") + "/"
        if m not in out:
            out.append(m)
    return out


def download(name: str = "mnist", to: str | os.PathLike | None = None,
             mirrors: Iterable[str] = (), progress: Progress | None = None,
             cancel: threading.Event | None = None, timeout: float = 30,
             log: Log | None = None) -> Path:
    """Download and verify the four files of dataset ``name``; return the directory.

    ``progress(filename, bytes_done, bytes_total_or_None)`` is called as bytes arrive;
    ``log(line)`` receives one line per event worth telling (a mirror failed and why, a resume,
    a file already present). Files already present and verified are skipped.
    Raises DownloadError (listing every mirror's reason) or DownloadCancelled.
    """
    spec = datasets._spec(name)
    if name not in MIRRORS:
        raise DownloadError(f"{spec.title} is not downloaded by termnist "
                            f"(downloadable: {', '.join(MIRRORS)})")
    log = log or (lambda line: None)
    target = target_dir(name, to)
    with os_errors(target, DownloadError, "cannot create the directory"):
        target.mkdir(parents=True, exist_ok=True)
    urls = mirror_list(name, mirrors)
    for check in spec.files:
        _fetch_file(check, target, urls, progress, cancel, timeout, log)
    return target


def _fetch_file(check: FileCheck, target: Path, mirrors: list[str], progress: Progress | None,
                cancel: threading.Event | None, timeout: float, log: Log) -> None:
    final = target / f"{check.name}.gz"
    if final.exists():
        r = verify_file(final, check)
        if r.status in ("ok", "unverified"):
            log(f"{final.name}: already present ({r.detail})")
            return
        log(f"{final.name}: present but {r.detail}; downloading it again")
    part = final.with_name(final.name + ".part")
    reasons = []
    for base in mirrors:
        url = base + final.name
        try:
            resumed = _fetch_url(url, part, final.name, progress, cancel, timeout, log)
            r = verify_file(part, check)
            if r.status == "mismatch" and resumed:  # maybe the old .part came from elsewhere
                log(f"{final.name}: resumed file does not verify ({r.detail}); "
                    f"downloading it again from the start")
                part.unlink(missing_ok=True)
                _fetch_url(url, part, final.name, progress, cancel, timeout, log)
                r = verify_file(part, check)
            if r.status == "mismatch":
                part.unlink(missing_ok=True)
                raise _MirrorFailed(f"wrong checksum: {r.detail}")
        except _MirrorFailed as e:
            reasons.append(f"{url}: {e}")
            log(f"mirror failed: {url}: {e}")
            continue
        except OSError as e:  # local trouble (disk full, permissions): no mirror will help
            raise DownloadError(f"{part}: {e.strerror or e}") from None
        if r.status == "unverified":
            log(f"{final.name}: not verified: {r.detail}")
        with os_errors(final, DownloadError, "cannot put the downloaded file in place"):
            os.replace(part, final)
        log(f"{final.name}: downloaded from {base} ({r.detail})")
        return
    if not mirrors:
        raise DownloadError(f"{final.name}: no mirrors to try")
    raise DownloadError(f"{final.name}: every mirror failed: {'; '.join(reasons)}")


def _why(e: BaseException) -> str:
    """A short reason for a network error."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return _why(e.reason) if isinstance(e.reason, BaseException) else str(e.reason)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host ({e.strerror or e})"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, OSError):
        return e.strerror or str(e) or type(e).__name__
    return str(e) or type(e).__name__


def _fetch_url(url: str, part: Path, label: str, progress: Progress | None,
               cancel: threading.Event | None, timeout: float, log: Log) -> bool:
    """Download ``url`` into ``part``, resuming an existing ``part``. Returns True when the
    result builds on bytes that were already in ``part``. Raises _MirrorFailed."""
    resumed = False
    resumes_left = _RESUMES
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": _USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # nothing left to send: the .part may be complete
                return True
            raise _MirrorFailed(_why(e)) from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise _MirrorFailed(_why(e)) from None
        with resp:
            status = getattr(resp, "status", None)
            if offset and status == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:  # not the range asked for: start over
                    part.unlink()
                    log(f"{label}: the server sent the wrong range; starting again")
                    continue
                resumed, done, mode = True, offset, "ab"
                log(f"{label}: resuming at byte {offset}")
            else:
                if offset:
                    log(f"{label}: the server ignored the range request; starting again")
                done, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = done + int(length) if length and length.isdigit() else None
            start = done
            error = None
            with open(part, mode) as f:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(f"{label}: download cancelled; {part.name} "
                                                f"kept for resuming")
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        error = _why(e)
                        break
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(label, done, total)
        if error is None and (total is None or done >= total):
            return resumed
        why = error or "connection closed early"
        if done > start and resumes_left > 0:
            resumes_left -= 1
            log(f"{label}: {why} after {done} of {total or '?'} bytes; resuming")
            continue
        raise _MirrorFailed(f"{why} after {done} of {total or '?'} bytes")
