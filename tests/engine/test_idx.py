"""engine.idx: round trips for every element type, and every malformed case with its message."""

from __future__ import annotations

import gzip
import os
import re
import struct
import tracemalloc

import numpy as np
import pytest

from engine.errors import DatasetError, IDXFormatError
from engine.idx import IDX_TYPES, read_idx, read_idx_header, write_idx

DTYPES = ["u1", "i1", ">i2", "<i2", ">i4", "<i4", ">f4", "<f4", ">f8", "<f8"]


def _array(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(shape).astype(dt)
        a.flat[0] = np.finfo(dt).max
        a.flat[-1] = -np.inf
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)
        a.flat[0], a.flat[-1] = info.min, info.max
    return a


def _idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + payload


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 3, 2), (2, 3, 2, 2)])
def test_round_trip_every_dtype(tmp_path, dtype, shape, suffix):
    a = _array(dtype, shape)
    p = tmp_path / f"a.idx{suffix}"
    write_idx(p, a)
    b = read_idx(p)
    assert b.shape == shape
    assert b.dtype == a.dtype.newbyteorder("=") and b.dtype.isnative
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable and b.flags.c_contiguous
    h = read_idx_header(p)
    assert h.shape == shape and h.gzipped == (suffix == ".gz")


def test_file_layout_is_big_endian_idx(tmp_path):
    p = tmp_path / "x.idx"
    write_idx(p, np.array([[1, 2, 3], [4, 5, 256]], dtype="<i4"))
    raw = p.read_bytes()
    assert raw[:4] == b"\x00\x00\x0c\x02"
    assert raw[4:12] == struct.pack(">II", 2, 3)
    assert raw[12:] == np.array([1, 2, 3, 4, 5, 256], dtype=">i4").tobytes()


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    a = _array("u1", (3, 4))
    gz_no_suffix = tmp_path / "data"
    gz_no_suffix.write_bytes(_gz(_idx_bytes(0x08, (3, 4), a.tobytes())))
    np.testing.assert_array_equal(read_idx(gz_no_suffix), a)
    raw_with_gz_suffix = tmp_path / "data.gz"
    raw_with_gz_suffix.write_bytes(_idx_bytes(0x08, (3, 4), a.tobytes()))
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), a)


def test_gzip_write_is_deterministic(tmp_path):
    a = _array("u1", (10, 28, 28))
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "b.gz", a)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_multi_member_gzip_is_read(tmp_path):
    data = _idx_bytes(0x08, (6,), bytes(range(6)))
    p = tmp_path / "m.gz"
    p.write_bytes(_gz(data[:5]) + _gz(data[5:]))
    np.testing.assert_array_equal(read_idx(p), np.arange(6, dtype=np.uint8))


# --- malformed files: each has its own message ---------------------------------------------

def _expect(tmp_path, content: bytes, pattern: str, name: str = "f.idx"):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(IDXFormatError) as ei:
        read_idx(p)
    msg = str(ei.value)
    assert msg.startswith(f"{name}: "), msg
    assert re.search(pattern, msg), msg
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, gz):
    data = b"\x01\x00\x08\x01\x00\x00\x00\x01\x07"
    _expect(tmp_path, _gz(data) if gz else data, r"bad magic 0x01000801: the first two bytes")


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_unknown_type_code(tmp_path, code):
    _expect(tmp_path, _idx_bytes(code, (1,), b"\x00"), rf"unknown element type 0x{code:02X}")


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_bad_number_of_dimensions(tmp_path, ndim):
    data = bytes([0, 0, 8, ndim]) + b"\x00\x00\x00\x01" * ndim + b"\x00"
    _expect(tmp_path, data, rf"unsupported number of dimensions {ndim} \(expected 1 to 4\)")


@pytest.mark.parametrize("gz", [False, True])
def test_zero_dimension(tmp_path, gz):
    data = _idx_bytes(0x08, (3, 0, 2), b"")
    _expect(tmp_path, _gz(data) if gz else data, r"empty array: dimension 1 of 3x0x2 is zero")


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_sizes_fail_fast_without_allocating(tmp_path, gz):
    big = 2**31
    data = _idx_bytes(0x0E, (big, big, big), b"\x00" * 64)
    p = tmp_path / "absurd.idx"
    p.write_bytes(_gz(data) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match=r"absurd.idx: truncated: header says "
                           r"2147483648x2147483648x2147483648 x 8 = \d+ bytes"):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_truncated_header_at_every_offset(tmp_path):
    full = _idx_bytes(0x0B, (2, 3), np.arange(6, dtype=">i2").tobytes())
    for k in range(len(full)):
        for gz in (False, True):
            content = _gz(full[:k]) if gz else full[:k]
            if k < 4:
                pat = rf"truncated header: expected a 4-byte magic number, found {k} bytes"
            elif k < 12:
                pat = rf"truncated header: 2 dimensions need 8 bytes of sizes, found {k - 4}"
            else:
                pat = rf"truncated: header says 2x3 x 2 = 12 bytes, found {k - 12}$"
            _expect(tmp_path, content, pat)


def test_truncated_payload_message_names_file_and_sizes(tmp_path):
    payload = bytes(7_839_000)
    data = _idx_bytes(0x08, (10000, 28, 28), payload)
    _expect(tmp_path, _gz(data),
            r"^t10k-images-idx3-ubyte.gz: truncated: header says 10000x28x28 = 7840000 bytes,"
            r" found 7839000$", name="t10k-images-idx3-ubyte.gz")
    _expect(tmp_path, data,
            r"^t10k-images-idx3-ubyte: truncated: header says 10000x28x28 = 7840000 bytes,"
            r" found 7839000$", name="t10k-images-idx3-ubyte")


def test_trailing_bytes(tmp_path):
    data = _idx_bytes(0x08, (2, 2), b"\x01\x02\x03\x04") + b"\xff\xff"
    _expect(tmp_path, data, r"trailing data: header says 2x2 = 4 bytes, found 6$")
    _expect(tmp_path, _gz(data), r"trailing data: header says 2x2 = 4 bytes, found more")


def test_gzip_garbage(tmp_path):
    rng = np.random.default_rng(1)
    garbage = b"\x1f\x8b" + rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    _expect(tmp_path, garbage, r"corrupt gzip data|truncated gzip")
    bad_method = b"\x1f\x8b\x07" + bytes(20)
    _expect(tmp_path, bad_method, r"corrupt gzip data: .*compression method")


def test_gzip_bad_crc(tmp_path):
    gz = bytearray(_gz(_idx_bytes(0x08, (4,), b"\x01\x02\x03\x04")))
    gz[-8] ^= 0xFF  # CRC32 of the trailer
    _expect(tmp_path, bytes(gz), r"corrupt gzip data: CRC check failed")


def test_truncated_gzip(tmp_path):
    a = _array("u1", (50, 28, 28))
    gz = _gz(_idx_bytes(0x08, a.shape, a.tobytes()))
    for cut in (len(gz) // 2, len(gz) - 4, 12):
        _expect(tmp_path, gz[:cut], r"truncated gzip: the compressed stream ends early$")


def test_missing_file_and_directory_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"nope.idx: no such file$") as ei:
        read_idx(tmp_path / "nope.idx")
    assert not isinstance(ei.value, IDXFormatError)
    with pytest.raises(DatasetError, match=r"is a directory"):
        read_idx(tmp_path)
    with pytest.raises(DatasetError, match=r"no such file$"):
        read_idx_header(tmp_path / "nope.idx")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path):
    p = tmp_path / "secret.idx"
    write_idx(p, np.zeros(3, np.uint8))
    p.chmod(0)
    with pytest.raises(DatasetError, match=r"secret.idx: permission denied$"):
        read_idx(p)


def test_header_only_read_checks_raw_payload_size(tmp_path):
    p = tmp_path / "h.idx"
    p.write_bytes(_idx_bytes(0x0D, (3, 2), bytes(20)))
    with pytest.raises(IDXFormatError, match=r"truncated: header says 3x2 x 4 = 24 bytes, found 20"):
        read_idx_header(p)
    p.write_bytes(_idx_bytes(0x0D, (3, 2), bytes(24)))
    h = read_idx_header(p)
    assert (h.type_code, h.shape, h.header_size, h.payload_size) == (0x0D, (3, 2), 12, 24)
    assert h.dtype == IDX_TYPES[0x0D]


@pytest.mark.parametrize("bad", [np.zeros(3, np.uint16), np.zeros(3, np.int64),
                                 np.zeros(3, bool), np.zeros(3, np.float16), np.zeros(3, "U1")])
def test_write_refuses_types_idx_cannot_hold(tmp_path, bad):
    with pytest.raises(IDXFormatError, match="cannot store dtype"):
        write_idx(tmp_path / "x.idx", bad)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [np.uint8(3), np.zeros((0, 3), np.uint8), np.zeros((1,) * 5, np.uint8)])
def test_write_refuses_bad_shapes(tmp_path, bad):
    with pytest.raises(IDXFormatError, match="cannot store"):
        write_idx(tmp_path / "x.idx", bad)


@pytest.mark.parametrize("dtype", ["u1", ">i2", ">f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_reading_makes_one_full_size_allocation(tmp_path, dtype, suffix):
    """Peak memory while reading is the result plus under 1 MiB of chunks (no second copy)."""
    a = np.ones((2000, 28, 28), dtype=dtype)  # 1.5 MB .. 12.5 MB: a second copy would show
    p = tmp_path / f"m.idx{suffix}"
    write_idx(p, a)
    tracemalloc.start()
    try:
        b = read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(a, b)
    assert peak < b.nbytes + (1 << 20), (peak, b.nbytes)


@pytest.mark.full_mnist
def test_real_mnist_loads_as_uint8(full_mnist_dir):
    x = read_idx(full_mnist_dir / "t10k-images-idx3-ubyte.gz")
    y = read_idx(full_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert x.max() == 255 and set(np.unique(y)) == set(range(10))
