"""The in-process llama.cpp backend: load a GGUF model once, generate completions from it.

It checks a model file before llama.cpp sees it (exists, readable, GGUF, not truncated —
parsed with the standard library, so a half-downloaded file gives a clear message instead
of a crash), finds the FIM template from the vocabulary, and generates token by token with
llama-cpp-python's KV cache: each generation re-evaluates only the prompt tokens after the
longest prefix it shares with the previous one, and reports how many that was.

Generation is greedy at temperature 0 (reproducible), checks the cancel token before every
token, never emits a control token, and decodes pieces incrementally without splitting a
UTF-8 sequence. One generation runs at a time.

Nothing is ever written to stdout (the LSP transport): llama.cpp's log is routed to the
``lsp_server.backends.llama_cpp.native`` logger, and file descriptors are never redirected
(llama-cpp-python's ``verbose=False`` would point fd 1 at /dev/null during a load, eating
messages other threads write meanwhile), so loading in a worker thread is safe.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import logging
import math
import mmap
import os
import re
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from lsp_server.backends.base import (
    IN_PROCESS,
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.stopping import StopPolicy
from lsp_server.backends.templates import (
    ALL_SPECIAL_TEXTS,
    FIM_TEMPLATES,
    SPM_SPACE,
    FimTemplate,
    detect_template,
    get_template,
    template_from_tokens,
)
from lsp_server.backends.threads import FixedThreads, RequestTiming, ThreadPolicy, policy_for
from lsp_server.core import Prompt, Special
from lsp_server.errors import BackendError, ModelLoadError

logger = logging.getLogger(__name__)
native_logger = logging.getLogger(__name__ + ".native")
"""llama.cpp's own log lines, routed here instead of to stderr."""

# ---------------------------------------------------------------------------------------
# GGUF header check (stdlib only: the gguf package is a dev dependency)
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# llama.cpp logging
# ---------------------------------------------------------------------------------------

# ggml's log levels (ggml.h; llama-cpp-python's own mapping predates their renumbering).
_LOG_LEVELS = {
    0: logging.DEBUG,  # NONE: raw output
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.ERROR,
}
_GGML_LOG_CONT = 5
_recent_errors: deque[str] = deque(maxlen=20)
_last_level = logging.DEBUG
_log_lock = threading.Lock()
_log_installed = False


@llama_cpp.llama_log_callback
def _on_native_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """Route one llama.cpp log line to :data:`native_logger` (never to stdout)."""
    global _last_level
    py_level = _last_level if level == _GGML_LOG_CONT else _LOG_LEVELS.get(level, logging.DEBUG)
    _last_level = py_level
    line = text.decode("utf-8", errors="replace").rstrip("\n")
    if not line:
        return
    if py_level >= logging.ERROR:
        # Kept so a refused load can say why: llama.cpp only reports it in the log.
        _recent_errors.append(line.strip())
    # llama.cpp writes hundreds of info lines per load: keep them at DEBUG.
    native_logger.log(logging.DEBUG if py_level <= logging.INFO else py_level, line)


def _install_native_logging() -> None:
    """Point llama.cpp's log at :func:`_on_native_log` (once per process)."""
    global _log_installed
    with _log_lock:
        if not _log_installed:
            llama_cpp.llama_log_set(_on_native_log, ctypes.c_void_p(0))
            _log_installed = True


# ---------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------


class _CountingLlama(llama_cpp.Llama):
    """A :class:`llama_cpp.Llama` that counts the tokens it evaluates and times itself.

    ``Llama.generate`` keeps the longest common prefix with the previous evaluation in the
    KV cache and evaluates only the rest; counting what reaches :meth:`eval` measures that
    instead of re-deriving it. ``llama_seconds`` adds up the time spent in llama.cpp
    (evaluation and sampling), so the rest of a request's time is the server's own.
    """

    evaluated_count = 0
    llama_seconds = 0.0

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` and add them to :attr:`evaluated_count`."""
        self.evaluated_count += len(tokens)
        t0 = time.perf_counter()
        try:
            super().eval(tokens)
        finally:
            self.llama_seconds += time.perf_counter() - t0

    def sample(self, *args: Any, **kwargs: Any) -> int:
        """Sample the next token (timed)."""
        t0 = time.perf_counter()
        try:
            return int(super().sample(*args, **kwargs))
        finally:
            self.llama_seconds += time.perf_counter() - t0


EVAL_CHUNK_TOKENS = 64
"""Prompt tokens evaluated at a time: a superseded request stops within one chunk
(~0.4 s at 160 tokens/s) instead of one 512-token batch, and what was evaluated stays in
the KV cache for the request that superseded it."""
_PART_CACHE_SIZE = 32
_PART_CACHE_MIN_CHARS = 256
"""Prompt parts at least this long keep their tokens (the window's prefix and suffix are
the same strings from one keystroke to the next: no need to tokenize them again)."""

# User-defined tokens that look like control markers (<|…|>, <｜…｜>) count as special;
# other user-defined tokens (Gemma's HTML tags, whitespace runs) are ordinary text.
_MARKER = re.compile(r"<[|｜].*[|｜]>")


@dataclass(slots=True)
class _Vocab:
    """Token facts read once after loading."""

    special_ids: dict[str, int]
    """Text -> id of control and user-defined tokens."""
    never_emit: frozenset[int]
    """Ids that end generation if sampled (control tokens and control-like markers)."""
    spm_space_prefix: bool
    """True for SentencePiece vocabularies that add a dummy space before each text."""
    pieces: dict[int, bytes] = field(default_factory=dict)
    """Cache of token id -> UTF-8 bytes."""


MAX_TOKENIZE_PIECE = 4096
"""Longest text handed to llama.cpp's tokenizer in one call.

llama.cpp's regex pre-tokenizers (DeepSeek-Coder's among them) recurse once per character
of a run without breaks, and past roughly 30,000 characters they overflow the stack: a
segfault that would kill the server, not an exception. Minified code and embedded base64
have such runs, so longer text is tokenized in pieces.
"""


def split_for_tokenizer(text: str, limit: int = MAX_TOKENIZE_PIECE) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters that join back to ``text``.

    Cuts fall after a line break when there is one in reach, else before a space (where a
    byte-level BPE tokenizer would start a new token anyway), else at the limit.
    """
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        cut = text.rfind("\n", start, end) + 1
        if cut <= start:
            cut = text.rfind(" ", start + 1, end)
        if cut <= start:
            cut = end
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


class LlamaTokenizer:
    """Exact tokenization with a GGUF model's own vocabulary; implements ``Tokenizer``.

    The in-process backend uses the loaded model's vocabulary; a remote engine uses a
    vocabulary-only load of the same file (:meth:`load_vocab`, under a second), which
    tokenizes exactly like the engine itself, so prompt budgets stay exact.
    """

    def __init__(
        self, llama: llama_cpp.Llama, vocab: _Vocab, bos_id: int | None, template: FimTemplate
    ) -> None:
        """Wrap an already loaded model or vocabulary."""
        self._llama = llama
        self._vocab = vocab
        self._bos_id = bos_id
        self._template = template
        self._vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        self._part_tokens: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._part_lock = threading.Lock()

    @classmethod
    def load_vocab(
        cls, path: str | Path, *, template: str | None = None
    ) -> tuple[LlamaTokenizer, dict[str, str]]:
        """Load only the vocabulary of a GGUF file (no weights) and choose its template.

        Returns the tokenizer and the GGUF metadata (values as strings).

        Raises:
            ModelLoadError: the file is missing, not GGUF, truncated, refused by
                llama.cpp, or has no FIM tokens.
        """
        path = Path(path)
        read_gguf_header(path)
        _install_native_logging()
        _recent_errors.clear()
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stderr(chatter):
                llama = llama_cpp.Llama(str(path), vocab_only=True, n_ctx=16, verbose=True)
        except (ValueError, RuntimeError, OSError) as err:
            why = "; ".join(_recent_errors) or str(err)
            message = f"llama.cpp could not read the vocabulary of {path}: {why}"
            raise ModelLoadError(message) from err
        llama.verbose = False
        vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        metadata: dict[str, str] = dict(llama.metadata)
        vocab = _read_vocab(vocab_p, metadata)
        chosen = _choose_template(vocab_p, vocab, metadata, template, path)
        return cls(llama, vocab, _bos_for(vocab_p, vocab, chosen), chosen), metadata

    @property
    def template(self) -> FimTemplate:
        """The FIM template chosen for this vocabulary."""
        return self._template

    @property
    def never_emit(self) -> frozenset[int]:
        """Ids that end generation if sampled (control tokens and control-like markers)."""
        return self._vocab.never_emit

    @property
    def n_vocab(self) -> int:
        """Number of tokens in the vocabulary."""
        return int(self._llama.n_vocab())

    def special_id(self, text: str) -> int | None:
        """The id of special token ``text`` (any spelling), or None when there is none."""
        return _special_id(self._vocab.special_ids, text)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text: no BOS, control-token texts not parsed."""
        if len(text) <= MAX_TOKENIZE_PIECE:
            return self._tokenize_piece(text)
        ids: list[int] = []
        for piece in split_for_tokenizer(text):
            ids.extend(self._tokenize_piece(piece))
        return ids

    def _tokenize_piece(self, text: str) -> list[int]:
        if not text:
            return []
        if self._vocab.spm_space_prefix and text.startswith(" "):
            # SentencePiece adds a dummy space before every text it tokenizes; let that be
            # the text's own first space instead of doubling it.
            text = text[1:]
            if not text:
                return [self._space_id()]
        try:
            return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        except RuntimeError as err:
            raise BackendError(f"tokenization failed: {err}") from err

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text (no BOS)."""
        return len(self.tokenize(text))

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; control tokens give nothing."""
        return b"".join(self.piece(i) for i in ids).decode("utf-8", errors="replace")

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``prompt`` evaluates to (BOS, special parts, text parts)."""
        ids: list[int] = []
        if prompt.add_bos and self._bos_id is not None:
            ids.append(self._bos_id)
        for part in prompt.parts:
            if isinstance(part, Special):
                token = _special_id(self._vocab.special_ids, part.text)
                if token is None:
                    raise BackendError(
                        f"the model has no special token {part.text!r} "
                        f"(template {self._template.name})"
                    )
                ids.append(token)
            elif len(part) >= _PART_CACHE_MIN_CHARS:
                ids.extend(self._part_ids(part))
            else:
                ids.extend(self.tokenize(part))
        return ids

    def _part_ids(self, part: str) -> tuple[int, ...]:
        """Tokens of a long prompt part, from a small LRU keyed by the text."""
        with self._part_lock:
            found = self._part_tokens.get(part)
            if found is not None:
                self._part_tokens.move_to_end(part)
                return found
        found = tuple(self.tokenize(part))
        with self._part_lock:
            self._part_tokens[part] = found
            while len(self._part_tokens) > _PART_CACHE_SIZE:
                self._part_tokens.popitem(last=False)
        return found

    def piece(self, token: int) -> bytes:
        """The UTF-8 bytes token ``token`` stands for (cached; control tokens: nothing)."""
        piece = self._vocab.pieces.get(token)
        if piece is None:
            piece = _token_piece(self._vocab_p, token)
            self._vocab.pieces[token] = piece
        return piece

    def _space_id(self) -> int:
        """The id of a lone space in a SentencePiece vocabulary."""
        return int(self._llama.tokenize(b" ", add_bos=False, special=False)[-1])

    def close(self) -> None:
        """Free the vocabulary (only for one loaded with :meth:`load_vocab`)."""
        self._llama.close()


class LlamaCppBackend:
    """A GGUF model running in-process on llama.cpp; implements ``Backend``."""

    def __init__(
        self,
        llama: _CountingLlama,
        info: ModelInfo,
        metadata: Mapping[str, str],
        vocab: _Vocab,
        bos_id: int | None,
    ) -> None:
        """Wrap an already loaded model; use :meth:`load` to create one."""
        self._llama = llama
        self._info = info
        self._metadata = dict(metadata)
        self._vocab = vocab
        self._vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        self._lock = threading.Lock()
        self.tokenizer = LlamaTokenizer(llama, vocab, bos_id, info.template)
        """The model's own vocabulary (exact, in-process)."""
        self.capabilities = IN_PROCESS
        """Prefix cache, per-token streaming and token-id prompts: everything."""
        self.eval_chunk_tokens = EVAL_CHUNK_TOKENS
        """Prompt tokens evaluated between two looks at the cancel token."""
        self._n_threads = int(llama.context_params.n_threads)
        self.threads: ThreadPolicy = FixedThreads(self._n_threads)
        """Chooses the thread count of each generation (lsp_server.backends.threads)."""

    # --- loading --------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        template: str | None = None,
    ) -> LlamaCppBackend:
        """Check and load a GGUF model.

        Args:
            path: The ``.gguf`` file.
            name: Name to report in :attr:`info` (default: the GGUF's ``general.name``,
                else the file name).
            n_ctx: Context size in tokens; clamped to the model's training context.
            n_threads: CPU threads (default: adapted per request between 1 and the
                available CPUs, at most 8; see lsp_server.backends.threads).
            n_gpu_layers: Layers to offload to a GPU (-1 for all).
            template: Force a FIM template by name instead of detecting it.

        Raises:
            ModelLoadError: the file is missing, unreadable, not GGUF, truncated, refused
                by llama.cpp, or has no FIM tokens (or not the forced template's).
        """
        path = Path(path)
        header = read_gguf_header(path)
        trained = header.context_length
        if trained is not None and 0 < trained < n_ctx:
            logger.info("n_ctx %d clamped to the model's training context %d", n_ctx, trained)
            n_ctx = trained
        n_ctx = max(n_ctx, 16)
        policy = policy_for(n_threads)
        threads = policy.max_threads

        _install_native_logging()
        _recent_errors.clear()
        started = time.perf_counter()
        chatter = io.StringIO()
        try:
            # verbose=False would point file descriptors 1 and 2 at /dev/null for the whole
            # load, swallowing any LSP message another thread writes meanwhile. Instead
            # llama.cpp's log goes through our callback, and llama-cpp-python's own
            # load-time prints (all to sys.stderr) are caught at the Python level.
            with contextlib.redirect_stderr(chatter):
                llama = _CountingLlama(
                    str(path),
                    n_ctx=n_ctx,
                    n_batch=min(512, n_ctx),
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers,
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as err:
            why = "; ".join(_recent_errors) or str(err)
            raise ModelLoadError(f"llama.cpp could not load {path}: {why}") from err
        finally:
            if chatter.getvalue():
                logger.debug("llama-cpp-python: %s", chatter.getvalue().strip())
        llama.verbose = False  # no per-generation prints from here on
        logger.info("loaded %s in %.0f ms", path, (time.perf_counter() - started) * 1000)

        try:
            backend = cls._from_llama(llama, path, name, template)
        except ModelLoadError:
            llama.close()
            raise
        backend.threads = policy
        return backend

    @classmethod
    def _from_llama(
        cls, llama: _CountingLlama, path: Path, name: str | None, template: str | None
    ) -> LlamaCppBackend:
        """Read the vocabulary, choose the template and build the backend."""
        vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        vocab = _read_vocab(vocab_p, llama.metadata)
        metadata: dict[str, str] = dict(llama.metadata)

        chosen = _choose_template(vocab_p, vocab, metadata, template, path)
        for text in (chosen.prefix, chosen.suffix, chosen.middle):
            if _special_id(vocab.special_ids, text) is None:
                raise ModelLoadError(f"{path}: FIM token {text!r} missing from the vocabulary")
        bos_id = _bos_for(vocab_p, vocab, chosen)
        info = ModelInfo(
            name=name or metadata.get("general.name") or path.stem,
            n_ctx=llama.n_ctx(),
            template=chosen,
            path=str(path),
        )
        logger.info(
            "model %s: template %s, n_ctx %d, vocab %d",
            info.name,
            chosen.name,
            info.n_ctx,
            llama.n_vocab(),
        )
        return cls(llama, info, metadata, vocab, bos_id)

    # --- Backend protocol -----------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """The loaded model's name, context size and FIM template."""
        return self._info

    @property
    def metadata(self) -> Mapping[str, str]:
        """The GGUF metadata as llama.cpp read it (values as strings)."""
        return self._metadata

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text: no BOS, control-token texts not parsed."""
        return self.tokenizer.tokenize(text)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text (no BOS)."""
        return self.tokenizer.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``prompt`` evaluates to (BOS, special parts, text parts)."""
        return self.tokenizer.prompt_tokens(prompt)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Generate a completion for ``request``, checking ``cancel`` before every token.

        How it ends (``stop_reason``): EOS on an end-of-generation token; STOP on any other
        control token (never put in the text), a stop sequence (``request.stop`` and
        ``prompt.stop``; the text is cut before it) or ``should_stop``; LENGTH after
        ``max_tokens`` (or when the context is full); CANCELLED when ``cancel`` is set,
        before the next token is sampled; TIMEOUT once ``time_budget_ms`` has passed since
        this call began and the text holds a complete line, or ``max_predict_ms`` has
        passed since the first token. A time limit keeps whole lines only (the text up to
        its last newline, without it) or nothing (see :mod:`~lsp_server.backends.stopping`).

        ``generated_tokens`` counts every sampled token, the ending control token
        included; ``evaluated_tokens`` the prompt tokens that were not in the KV cache.
        An unfinished UTF-8 sequence at the end is dropped.

        Raises:
            BackendError: the prompt does not fit the context, names a special token the
                model lacks, or llama.cpp failed while decoding.
        """
        started = time.perf_counter()
        with self._lock:
            return self._generate_locked(request, cancel, started)

    def close(self) -> None:
        """Free the model and its context."""
        with self._lock:
            self._llama.close()

    # --- generation -----------------------------------------------------------------

    def _generate_locked(
        self, request: GenerationRequest, cancel: CancelToken, started: float
    ) -> Generation:
        """The body of :meth:`generate`, run while holding the lock."""
        tokens = self.prompt_tokens(request.prompt)
        n_ctx = self._info.n_ctx
        if len(tokens) >= n_ctx:
            raise BackendError(
                f"prompt has {len(tokens)} tokens but the context holds {n_ctx}; "
                "lower the context budget"
            )
        max_tokens = max(0, min(request.max_tokens, n_ctx - len(tokens)))
        policy = StopPolicy(request, started)

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        generated = 0
        evaluated = 0
        reason = StopReason.LENGTH
        first_token_at: float | None = None
        threads = self._use_threads(self.threads.next_threads())
        self._llama.evaluated_count = 0
        self._llama.llama_seconds = 0.0
        if not self._eval_prompt(tokens, cancel):
            ended = time.perf_counter()
            return Generation(
                text="",
                stop_reason=StopReason.CANCELLED,
                prompt_tokens=len(tokens),
                evaluated_tokens=self._llama.evaluated_count,
                prompt_ms=(ended - started) * 1000,
                llama_ms=self._llama.llama_seconds * 1000,
            )
        gen = self._llama.generate(
            tokens,
            temp=request.temperature,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=1.0,
        )
        try:
            while True:
                if cancel.cancelled:
                    reason = StopReason.CANCELLED
                    break
                if generated >= max_tokens:
                    reason = StopReason.LENGTH
                    break
                try:
                    token = next(gen)
                except StopIteration:  # pragma: no cover - generate() never ends itself
                    reason = StopReason.EOS
                    break
                except RuntimeError as err:
                    raise BackendError(f"llama.cpp failed while generating: {err}") from err
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    policy.generation_started()
                    evaluated = self._llama.evaluated_count
                generated += 1
                if llama_cpp.llama_vocab_is_eog(self._vocab_p, token):
                    reason = StopReason.EOS
                    break
                if token in self._vocab.never_emit:
                    logger.debug("stopped at control token %d", token)
                    reason = StopReason.STOP
                    break
                seen = len(text)
                text += decoder.decode(self._piece(token))
                # Stop sequences, should_stop and both time limits (whole lines only).
                verdict = policy.check(text, seen)
                if verdict is not None:
                    text, reason = verdict.text, verdict.reason
                    break
        finally:
            gen.close()
        # Bytes still in the decoder are an unfinished UTF-8 sequence: dropped, not shown
        # as U+FFFD.
        ended = time.perf_counter()
        prompt_end = first_token_at if first_token_at is not None else ended
        result = Generation(
            text=text,
            stop_reason=reason,
            prompt_tokens=len(tokens),
            evaluated_tokens=evaluated,
            generated_tokens=generated,
            prompt_ms=(prompt_end - started) * 1000,
            generate_ms=(ended - prompt_end) * 1000,
            llama_ms=self._llama.llama_seconds * 1000,
        )
        self.threads.record(
            RequestTiming(threads, evaluated, prompt_end - started, generated, ended - prompt_end)
        )
        logger.debug(
            "generated %d tokens (%s); prompt %d tokens, %d evaluated; %.0f + %.0f ms; %d threads",
            generated,
            reason.value,
            len(tokens),
            evaluated,
            result.prompt_ms,
            result.generate_ms,
            threads,
        )
        return result

    def _use_threads(self, n: int) -> int:
        """Make llama.cpp run the next decodes on ``n`` threads (a cheap call); return n."""
        if n != self._n_threads:
            llama_cpp.llama_set_n_threads(self._llama.ctx, n, n)
            self._n_threads = n
        return n

    def _eval_prompt(self, tokens: Sequence[int], cancel: CancelToken) -> bool:
        """Evaluate all but the last prompt token in chunks; False when cancelled first.

        Only the tokens after the longest prefix shared with what the KV cache holds are
        evaluated (llama-cpp-python's ``generate`` would do the same, but in one go that
        cannot be interrupted). Chunks evaluated before a cancellation stay in the cache,
        so the request that superseded this one starts from them. The last token is left
        for ``generate``, which evaluates it and samples from its logits.
        """
        llama = self._llama
        target = len(tokens) - 1
        held = llama.n_tokens
        if target <= 0:
            return not cancel.cancelled
        n = min(held, target)
        if n:
            cached = llama.input_ids[:n]
            mismatch = np.flatnonzero(cached != np.asarray(tokens[:n], dtype=cached.dtype))
            n = int(mismatch[0]) if mismatch.size else n
        if n >= target:
            return not cancel.cancelled
        llama.n_tokens = n  # eval() drops the KV cells from here on before decoding
        chunk = max(1, self.eval_chunk_tokens)
        for i in range(n, target, chunk):
            if cancel.cancelled:
                return False
            try:
                llama.eval(tokens[i : min(target, i + chunk)])
            except RuntimeError as err:
                raise BackendError(f"llama.cpp failed while evaluating: {err}") from err
        return not cancel.cancelled

    def _piece(self, token: int) -> bytes:
        """The UTF-8 bytes token ``token`` stands for (cached)."""
        return self.tokenizer.piece(token)


def _token_piece(vocab_p: llama_cpp.llama_vocab_p, token: int) -> bytes:
    """Detokenize one token to bytes, control tokens as nothing."""
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab_p, token, buf, size, 0, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n  # llama.cpp answers with minus the size it needs


def _token_text(vocab_p: llama_cpp.llama_vocab_p, token: int) -> str:
    """A token's vocabulary text (as stored: ``▁`` / ``Ġ`` spellings included)."""
    raw = llama_cpp.llama_vocab_get_text(vocab_p, token)
    return raw.decode("utf-8", errors="replace") if raw else ""


def _read_vocab(vocab_p: llama_cpp.llama_vocab_p, metadata: Mapping[str, str]) -> _Vocab:
    """Collect the special tokens of a loaded vocabulary (one pass, ~50 ms for 150k)."""
    special_ids: dict[str, int] = {}
    never_emit: set[int] = set()
    control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    user = llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab_p)):
        attr = llama_cpp.llama_vocab_get_attr(vocab_p, token)
        if not attr & (control | user):
            continue
        text = _token_text(vocab_p, token)
        special_ids.setdefault(text, token)
        bare = text.replace(SPM_SPACE, " ").strip()
        if attr & control or _MARKER.fullmatch(bare) or bare in ALL_SPECIAL_TEXTS:
            never_emit.add(token)
    spm = llama_cpp.llama_vocab_type(vocab_p) == llama_cpp.LLAMA_VOCAB_TYPE_SPM
    space_prefix = metadata.get("tokenizer.ggml.add_space_prefix", "true").lower() != "false"
    return _Vocab(
        special_ids=special_ids,
        never_emit=frozenset(never_emit),
        spm_space_prefix=spm and space_prefix,
    )


def _bos_for(vocab_p: llama_cpp.llama_vocab_p, vocab: _Vocab, template: FimTemplate) -> int | None:
    """The BOS id a template wants: its own BOS text's token, else the vocabulary's BOS."""
    if template.bos is None:
        return None
    bos_id = _special_id(vocab.special_ids, template.bos)
    if bos_id is None:
        fallback = llama_cpp.llama_vocab_bos(vocab_p)
        bos_id = fallback if fallback >= 0 else None
    return bos_id


def _special_id(special_ids: Mapping[str, int], text: str) -> int | None:
    """The id of special token ``text``, trying its SentencePiece ``▁`` spelling too."""
    stripped = text.lstrip(" ")
    for candidate in (text, SPM_SPACE + stripped, stripped):
        if candidate in special_ids:
            return special_ids[candidate]
    return None


def _choose_template(
    vocab_p: llama_cpp.llama_vocab_p,
    vocab: _Vocab,
    metadata: Mapping[str, str],
    forced: str | None,
    path: Path,
) -> FimTemplate:
    """The forced template (checked against the vocabulary) or the detected one."""

    def has(text: str) -> bool:
        return _special_id(vocab.special_ids, text) is not None

    if forced:
        try:
            template = get_template(forced)
        except KeyError as err:
            raise ModelLoadError(str(err.args[0])) from None
        missing = [t for t in (template.prefix, template.suffix, template.middle) if not has(t)]
        if missing:
            raise ModelLoadError(
                f"{path}: template {template.name!r} was forced but the model's vocabulary "
                f"lacks {', '.join(missing)}"
            )
        return template

    detected = detect_template(has, metadata)
    if detected is not None:
        return detected
    # No known family: use the FIM tokens llama.cpp itself recognised, if any.
    ids = [
        llama_cpp.llama_vocab_fim_pre(vocab_p),
        llama_cpp.llama_vocab_fim_suf(vocab_p),
        llama_cpp.llama_vocab_fim_mid(vocab_p),
    ]
    if all(i >= 0 for i in ids):
        pre, suf, mid = (_token_text(vocab_p, i) for i in ids)
        logger.info(
            "no known FIM family; using the vocabulary's FIM tokens %s %s %s", pre, suf, mid
        )
        return template_from_tokens(pre, suf, mid)
    raise ModelLoadError(
        f"{path} has no fill-in-the-middle tokens, so it cannot complete code at the cursor "
        f"(known templates: {', '.join(sorted(FIM_TEMPLATES))}); "
        "use a FIM code model such as DeepSeek-Coder base or Qwen2.5-Coder"
    )
