"""Read an image to classify: PGM (P2/P5, parsed with NumPy), PNG and other formats through
Pillow when it is installed (``pip install 'termnist[image]'``), or a text file of ASCII art as
the preview draws it. Returns a 2-D float64 array in [0, 1] with the ink bright, as MNIST.

Paper-like images (dark ink on a light background: the border is mostly bright) are inverted.
"""

from __future__ import annotations

import os
import re

import numpy as np

from engine.errors import TermnistError
from engine.insight.drawing import read_ascii_art

MAX_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 40_000_000
_PGM_TOKEN = re.compile(rb"(#[^\n]*\n?)|(\S+)")


class ImageReadError(TermnistError):
    """An image file that cannot be read; the message names the file."""


def _fail(path: str, why: str) -> ImageReadError:
    return ImageReadError(f"{path}: cannot read: {why}")


def parse_pgm(data: bytes, path: str = "<pgm>") -> np.ndarray:
    """Pixels of a binary (P5) or plain (P2) PGM, float64 in [0, 1] (as stored: 0 is black)."""
    kind = data[:2]
    if kind not in (b"P2", b"P5"):
        raise _fail(path, "not a PGM file (no P2/P5 header)")
    header: list[int] = []
    pos = 2
    while len(header) < 3:
        m = _PGM_TOKEN.search(data, pos)
        if m is None:
            raise _fail(path, "truncated PGM header")
        pos = m.end()
        if m.group(2) is None:
            continue
        try:
            header.append(int(m.group(2)))
        except ValueError:
            raise _fail(path, f"bad PGM header value {m.group(2)[:20]!r}") from None
    w, h, maxval = header
    if w < 1 or h < 1 or not 1 <= maxval <= 65535 or w * h > MAX_PIXELS:
        raise _fail(path, f"bad PGM size or maximum ({w}x{h}, max {maxval})")
    if kind == b"P5":
        start = pos + 1              # exactly one whitespace byte after maxval
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype("u1")
        need = w * h * dtype.itemsize
        raw = data[start : start + need]
        if len(raw) < need:
            raise _fail(path, f"truncated PGM data ({len(raw)} of {need} bytes)")
        values = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    else:
        body = re.sub(rb"#[^\n]*", b" ", data[pos:])
        try:
            values = np.array(body.split()[: w * h], dtype=np.float64)
        except ValueError:
            raise _fail(path, "non-numeric PGM pixel") from None
        if values.size < w * h:
            raise _fail(path, f"truncated PGM data ({values.size} of {w * h} pixels)")
    return np.clip(values.reshape(h, w) / maxval, 0.0, 1.0)


def _read_with_pillow(path: str, kind: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise _fail(path, f"{kind} images need Pillow: pip install 'termnist[image]' (or convert it to PGM)") from None
    try:
        with Image.open(path) as im:
            im.load()
            if im.width * im.height > MAX_PIXELS:
                raise _fail(path, f"too large ({im.width}x{im.height})")
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                # transparent background: composite on white, so strokes read as on paper
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im2 = Image.alpha_composite(bg, rgba).convert("L")
            else:
                im2 = im.convert("L")
            return np.asarray(im2, dtype=np.float64) / 255.0
    except ImageReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a bad file
        raise _fail(path, f"{type(exc).__name__}: {exc}") from None


def ink_bright(image: np.ndarray) -> np.ndarray:
    """``image`` with the ink bright: inverted when its border is mostly light (paper)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return 1.0 - image if np.median(border) > 0.5 else image


def read_image_file(path: str | os.PathLike[str]) -> np.ndarray | None:
    """A file's image as float64 in [0, 1] with bright ink; None when it holds no ink (blank
    ASCII art). Raises ImageReadError naming the file."""
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
        if size > MAX_BYTES:
            raise _fail(name, f"too large ({size:,} bytes)")
        with open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise _fail(name, exc.strerror or str(exc)) from None
    if data[:2] in (b"P2", b"P5") and data[2:3].isspace():
        return ink_bright(parse_pgm(data, name))
    if data.startswith(b"\x89PNG"):
        return ink_bright(_read_with_pillow(name, "PNG"))
    if data[:3] == b"\xff\xd8\xff" or data[:4] in (b"GIF8", b"II*\x00", b"MM\x00*") or data[:2] == b"BM":
        return ink_bright(_read_with_pillow(name, "this format's"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(name, "not a PGM, PNG or ASCII-art text file") from None
    if "\x00" in text:
        raise _fail(name, "not a PGM, PNG or ASCII-art text file")
    return read_ascii_art(text)
