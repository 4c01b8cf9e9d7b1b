"""Read and write IDX files (the format of MNIST), raw or gzip-compressed.

IDX layout (big-endian): bytes 0-1 are zero, byte 2 is the element type, byte 3 the number
of dimensions; then one unsigned 32-bit size per dimension; then the elements in C order.

Reading validates before allocating: the sizes in the header are checked against the bytes
actually available (the file size for raw files; for gzip, the most that the compressed size
can possibly expand to), so a header claiming 2**31 x 2**31 x 2**31 elements fails at once
without a large allocation. The payload is then read in one pass into one freshly allocated,
writable, C-contiguous array (for gzip, in 256 KiB chunks, so peak memory is the array plus
under 1 MiB). Multi-byte types are byte-swapped to native order in place, so loading never makes
a second full-size copy. Every failure is an ``IDXFormatError`` (malformed content) or a
``DatasetError`` (the file cannot be opened/read), with the file's basename and the reason.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine.atomic import atomic_write
from engine.errors import DatasetError, IDXFormatError, path_error

#: A binary stream: an open file or a gzip.GzipFile (typeshed's BinaryIO has no readinto,
#: and GzipFile is not a BinaryIO: the private readers take either).
_Reader = Any

__all__ = ["IDXHeader", "read_idx", "read_idx_header", "write_idx", "IDX_TYPES", "MAX_NDIM"]

#: IDX element type code -> big-endian NumPy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_FOR_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}

#: Most dimensions accepted. Images with channels, (N, H, W, C), need four.
MAX_NDIM = 4

#: DEFLATE cannot expand data by more than about 1032:1; with slack for headers this bounds
#: the decompressed size of a gzip file, so absurd headers are refused before reading.
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 18
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IDXHeader:
    """What an IDX header says: element dtype (big-endian), shape, and where data starts."""

    type_code: int
    dtype: np.dtype  # big-endian, as stored in the file
    shape: tuple[int, ...]
    header_size: int  # bytes before the payload (4 + 4 * ndim)
    gzipped: bool

    @property
    def payload_size(self) -> int:
        """Bytes the header promises: prod(shape) * itemsize (a Python int, never overflows)."""
        return math.prod(self.shape) * self.dtype.itemsize

    def describe(self) -> str:
        """'10000x28x28 = 7840000 bytes' (sizes times itemsize)."""
        dims = "x".join(str(s) for s in self.shape)
        item = "" if self.dtype.itemsize == 1 else f" x {self.dtype.itemsize}"
        return f"{dims}{item} = {self.payload_size} bytes"


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not an IDX file") from None
    except PermissionError:
        raise DatasetError(f"{path}: permission denied") from None
    except OSError as e:  # a name too long, a file used as a directory, ...
        raise path_error(path, e, DatasetError, "cannot open") from None


def _read_exact(f: _Reader, n: int) -> bytes:
    """Up to n bytes; fewer only at end of stream."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _parse_header(f: _Reader, name: str, gzipped: bool) -> IDXHeader:
    magic = _read_exact(f, 4)
    if len(magic) < 4:
        raise IDXFormatError(
            f"{name}: truncated header: expected a 4-byte magic number, found {len(magic)} bytes"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{name}: bad magic 0x{magic.hex()}: the first two bytes of an IDX file must be zero"
            " (is this an IDX file?)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXFormatError(f"{name}: unknown element type 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_NDIM:
        raise IDXFormatError(
            f"{name}: unsupported number of dimensions {ndim} (expected 1 to {MAX_NDIM})"
        )
    raw = _read_exact(f, 4 * ndim)
    if len(raw) < 4 * ndim:
        raise IDXFormatError(
            f"{name}: truncated header: {ndim} dimensions need {4 * ndim} bytes of sizes,"
            f" found {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
    if 0 in shape:
        dims = "x".join(map(str, shape))
        raise IDXFormatError(f"{name}: empty array: dimension {shape.index(0)} of {dims} is zero")
    return IDXHeader(code, IDX_TYPES[code], shape, 4 + 4 * ndim, gzipped)


def is_gzip(f: BinaryIO) -> bool:
    """Does the open binary file start with the gzip magic? (Rewinds it.)"""
    head = f.read(2)
    f.seek(0)
    return head == _GZIP_MAGIC


def _gzip_error(name: str, e: BaseException) -> IDXFormatError:
    if isinstance(e, EOFError):
        return IDXFormatError(f"{name}: truncated gzip: the compressed stream ends early")
    return IDXFormatError(f"{name}: corrupt gzip data: {e}")


def _check_bound(h: IDXHeader, name: str, compressed: int) -> None:
    """Refuse a header that a gzip file of ``compressed`` bytes cannot hold (before allocating)."""
    if h.payload_size > compressed * _MAX_GZIP_RATIO:
        raise IDXFormatError(
            f"{name}: truncated: header says {h.describe()}, but a gzip file of {compressed}"
            f" bytes cannot hold more than {compressed * _MAX_GZIP_RATIO}"
        )


def read_idx_header(path: str | os.PathLike) -> IDXHeader:
    """Parse and validate the header only (cheap: reads a few bytes).

    For a raw file the payload length is checked against the file size too. For gzip only an
    upper bound is checked (the exact payload length is known only after decompressing it
    all, which ``read_idx`` does).
    """
    path = Path(path)
    name = path.name
    with _open(path) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if is_gzip(f):
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    h = _parse_header(g, name, True)
                _check_bound(h, name, size)
            else:
                h = _parse_header(f, name, False)
                _check_payload(h, name, size - h.header_size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise _gzip_error(name, e) from None
        except OSError as e:
            raise DatasetError(f"{path}: read error: {e.strerror or e}") from None
    return h


def _check_payload(h: IDXHeader, name: str, found: int) -> None:
    if found < h.payload_size:
        raise IDXFormatError(f"{name}: truncated: header says {h.describe()}, found {found}")
    if found > h.payload_size:
        raise IDXFormatError(
            f"{name}: trailing data: header says {h.describe()}, found {found}"
        )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw, or gzip detected by its magic bytes 1f 8b) into a new array.

    Returns a writable, C-contiguous array of the header's shape in native byte order:
    uint8 for MNIST (0x08), int8, int16, int32, float32 or float64. Exactly one full-size
    allocation is made. Raises IDXFormatError for malformed content and DatasetError when the
    file cannot be opened or read.
    """
    path = Path(path)
    name = path.name
    with _open(path) as f:
        try:
            if is_gzip(f):
                compressed = os.fstat(f.fileno()).st_size
                with gzip.GzipFile(fileobj=f, mode="rb") as g:
                    h = _parse_header(g, name, True)
                    _check_bound(h, name, compressed)
                    buf = np.empty(h.payload_size, dtype=np.uint8)
                    got = _fill(g, buf)
                    if got < h.payload_size:
                        raise IDXFormatError(
                            f"{name}: truncated: header says {h.describe()}, found {got}"
                        )
                    if g.read(1):  # also reads the gzip trailer and checks its CRC
                        raise IDXFormatError(
                            f"{name}: trailing data: header says {h.describe()},"
                            f" found more after it"
                        )
            else:
                h = _parse_header(f, name, False)
                _check_payload(h, name, os.fstat(f.fileno()).st_size - h.header_size)
                buf = np.empty(h.payload_size, dtype=np.uint8)
                got = _fill(f, buf)
                if got < h.payload_size:  # the file shrank while we read it
                    raise IDXFormatError(
                        f"{name}: truncated: header says {h.describe()}, found {got}"
                    )
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise _gzip_error(name, e) from None
        except OSError as e:
            raise DatasetError(f"{path}: read error: {e.strerror or e}") from None
    arr = buf.view(h.dtype).reshape(h.shape)
    if not arr.dtype.isnative:
        arr.byteswap(inplace=True)  # swap the bytes in memory, then reinterpret: no copy
        arr = arr.view(arr.dtype.newbyteorder("="))
    return arr


def _fill(f: _Reader, buf: np.ndarray) -> int:
    """Read into buf (uint8, 1-D) in chunks until full or end of stream; return bytes read."""
    mv = buf.data                     # a memoryview of the array's bytes
    got, n = 0, len(buf)
    while got < n:
        k = f.readinto(mv[got : min(n, got + _CHUNK)])
        if not k:
            break
        got += k
    return got


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compresslevel: int = 9) -> None:
    """Write ``array`` (1 to 4 dims, none empty; dtype uint8, int8, int16, int32, float32 or
    float64 in any byte order) as IDX, gzip-compressed when the path ends in ``.gz``.

    The gzip header carries no name or timestamp, so equal arrays give equal bytes. The file is
    written to a temporary name in the same directory and renamed into place.
    """
    path = Path(path)
    a = np.asarray(array)
    code = _CODE_FOR_KIND.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise IDXFormatError(f"{path.name}: cannot store dtype {a.dtype} in IDX")
    if not 1 <= a.ndim <= MAX_NDIM:
        raise IDXFormatError(f"{path.name}: cannot store {a.ndim} dimensions (1 to {MAX_NDIM})")
    if 0 in a.shape or max(a.shape) >= 2**32:
        raise IDXFormatError(f"{path.name}: cannot store shape {a.shape} in IDX")
    data = np.ascontiguousarray(a, dtype=IDX_TYPES[code])  # no copy for uint8/int8 C arrays
    header = bytes([0, 0, code, a.ndim]) + b"".join(s.to_bytes(4, "big") for s in a.shape)
    with atomic_write(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                               compresslevel=compresslevel, mtime=0) as g:
                g.write(header)
                g.write(data.reshape(-1).view(np.uint8).data)
        else:
            raw.write(header)
            raw.write(data.reshape(-1).view(np.uint8))
