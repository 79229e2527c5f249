"""GGUF file headers, read with the standard library alone.

:func:`read_gguf_header` checks a model file before llama.cpp sees it (exists, readable,
GGUF, a supported version, not truncated) so that a half-downloaded or wrong file gives a
clear :class:`~lsp_server.errors.ModelLoadError` instead of a crash in native code. The
``gguf`` package is only a dev dependency, hence this small reader. The downloader checks
the magic bytes with :data:`GGUF_MAGIC` too.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lsp_server.errors import ModelLoadError

GGUF_MAGIC = b"GGUF"
_OLD_MAGICS = (b"ggml", b"ggmf", b"ggjt", b"lmgg", b"fmgg", b"tjgg")
_DEFAULT_ALIGNMENT = 32

# GGUF metadata value types -> (struct format, size) for the fixed-size ones.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING = 8
_ARRAY = 9

# ggml tensor types -> (elements per block, bytes per block), for the size check.
_GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}

MetadataValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class GgufHeader:
    """What the header of a GGUF file says, as far as loading checks need."""

    version: int
    tensor_count: int
    metadata: dict[str, MetadataValue]
    """Scalar and string metadata; arrays (the vocabulary, merges …) are left out."""
    data_offset: int
    """Where the tensor data starts."""
    expected_size: int
    """The smallest file size that holds every tensor (a lower bound when a tensor has a
    type this module does not know)."""
    file_size: int

    @property
    def architecture(self) -> str:
        """``general.architecture`` ("llama", "qwen2" …), or "" when absent."""
        return str(self.metadata.get("general.architecture", ""))

    @property
    def context_length(self) -> int | None:
        """The training context (``<arch>.context_length``), or None when absent."""
        value = self.metadata.get(f"{self.architecture}.context_length")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


_MAX_ARRAY_NESTING = 16
"""Real models nest metadata arrays at most once; deeper means a crafted file."""


class _Truncated(Exception):
    """The header runs past the end of the file."""


class _Reader:
    """A cursor over the mapped file that raises :class:`_Truncated` at the end."""

    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)

    def take(self, fmt: str, size: int) -> tuple[int | float | bool, ...]:
        """Read one struct value of ``size`` bytes."""
        if self.pos + size > self.size:
            raise _Truncated
        value = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self) -> int:
        """Read a little-endian uint32."""
        return int(self.take("<I", 4)[0])

    def u64(self) -> int:
        """Read a little-endian uint64."""
        return int(self.take("<Q", 8)[0])

    def skip(self, n: int) -> None:
        """Advance ``n`` bytes."""
        if n < 0 or self.pos + n > self.size:
            raise _Truncated
        self.pos += n

    def string(self) -> str:
        """Read a GGUF string (uint64 length, UTF-8 bytes)."""
        n = self.u64()
        start = self.pos
        self.skip(n)
        return self.buf[start : start + n].decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        """Skip a GGUF string without decoding it."""
        self.skip(self.u64())

    def value(self, vtype: int, depth: int = 0) -> MetadataValue | None:
        """Read a metadata value; arrays are skipped and give None."""
        if depth > _MAX_ARRAY_NESTING:
            raise ValueError("arrays nested too deep")
        if vtype in _SCALARS:
            fmt, size = _SCALARS[vtype]
            return self.take(fmt, size)[0]
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type = self.u32()
            count = self.u64()
            if item_type in _SCALARS:
                self.skip(count * _SCALARS[item_type][1])
            elif item_type == _STRING:
                for _ in range(count):
                    self.skip_string()
            else:
                for _ in range(count):
                    self.value(item_type, depth + 1)
            return None
        raise ValueError(f"unknown metadata value type {vtype}")


def read_gguf_header(path: str | Path) -> GgufHeader:
    """Parse a GGUF file's header and work out how big the file must be.

    Raises:
        ModelLoadError: the file is missing, unreadable, empty, not GGUF (or an old GGML
            file), of an unsupported GGUF version, or shorter than its header says.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 4:
                raise ModelLoadError(f"{path} is not a GGUF model file (only {size} bytes)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse_header(path, buf, size)
    except PermissionError as err:
        raise ModelLoadError(f"model file is not readable: {path} ({err.strerror})") from err
    except OSError as err:
        raise ModelLoadError(f"cannot read model file {path}: {err}") from err


def _parse_header(path: Path, buf: mmap.mmap, size: int) -> GgufHeader:
    """Parse the header from the mapped file; see :func:`read_gguf_header`."""
    magic = bytes(buf[:4])
    if magic != GGUF_MAGIC:
        if magic in _OLD_MAGICS:
            raise ModelLoadError(
                f"{path} is an old GGML-format model; llama.cpp needs GGUF (convert it "
                "or download a .gguf file)"
            )
        # Never echo the bytes: the path may be anything a client named.
        raise ModelLoadError(f"{path} is not a GGUF model file")
    reader = _Reader(buf)
    reader.skip(4)
    try:
        version = reader.u32()
        if version not in (2, 3):
            raise ModelLoadError(
                f"{path}: unsupported GGUF version {version} (expected 2 or 3; a huge "
                "number means a big-endian file)"
            )
        tensor_count = reader.u64()
        kv_count = reader.u64()
        # Every key-value pair and tensor takes more than 8 bytes, so a count beyond the
        # file size can only come from a damaged header.
        if tensor_count > size // 8 or kv_count > size // 8:
            raise ModelLoadError(f"{path}: GGUF header is damaged (impossible counts)")
        metadata: dict[str, MetadataValue] = {}
        for _ in range(kv_count):
            key = reader.string()
            value = reader.value(reader.u32())
            if value is not None:
                metadata[key] = value
        tensors: list[tuple[int, int, int]] = []  # (offset, element count, type)
        for _ in range(tensor_count):
            reader.skip_string()
            n_dims = reader.u32()
            if n_dims > 8:
                raise ModelLoadError(f"{path}: GGUF header is damaged (tensor rank {n_dims})")
            n_elements = math.prod(reader.u64() for _ in range(n_dims))
            ggml_type = reader.u32()
            tensors.append((reader.u64(), n_elements, ggml_type))
    except _Truncated:
        raise ModelLoadError(
            f"{path} is truncated: the file ends inside its GGUF header ({size} bytes); "
            "download it again"
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path}: GGUF header is damaged ({err})") from err

    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = _DEFAULT_ALIGNMENT
    data_offset = -(-reader.pos // alignment) * alignment
    expected = data_offset
    for offset, n_elements, ggml_type in tensors:
        block = _GGML_BLOCKS.get(ggml_type)
        n_bytes = n_elements // block[0] * block[1] if block else 0
        expected = max(expected, data_offset + offset + n_bytes)
    if size < expected:
        raise ModelLoadError(
            f"{path} is truncated: {size:,} bytes, but its header describes {expected:,} "
            "bytes of tensors; download it again"
        )
    return GgufHeader(
        version=version,
        tensor_count=tensor_count,
        metadata=metadata,
        data_offset=data_offset,
        expected_size=expected,
        file_size=size,
    )
