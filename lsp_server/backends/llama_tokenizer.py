"""Exact tokenization with a GGUF model's own vocabulary, through llama.cpp.

:class:`LlamaTokenizer` serves the in-process backend (the loaded model's vocabulary) and
the remote engines (a vocabulary-only load of the same file, so prompt budgets count
exactly the tokens the engine will see). The helpers here read a loaded vocabulary's
special tokens once and choose its FIM template.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp

from lsp_server.backends.llama_native import native_load
from lsp_server.backends.templates import (
    ALL_SPECIAL_TEXTS,
    FIM_TEMPLATES,
    SPM_SPACE,
    FimTemplate,
    detect_template,
    get_template,
    template_from_tokens,
)
from lsp_server.core import Prompt, Special
from lsp_server.errors import BackendError, ModelLoadError
from lsp_server.gguf import read_gguf_header

logger = logging.getLogger("lsp_server.backends.llama_cpp")

_PART_CACHE_SIZE = 32
_PART_CACHE_MIN_CHARS = 256
"""Prompt parts at least this long keep their tokens (the window's prefix and suffix are
the same strings from one keystroke to the next: no need to tokenize them again)."""

# User-defined tokens that look like control markers (<|…|>, <｜…｜>) count as special;
# other user-defined tokens (Gemma's HTML tags, whitespace runs) are ordinary text.
_MARKER = re.compile(r"<[|｜].*[|｜]>")


@dataclass(slots=True)
class Vocab:
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
        self, llama: llama_cpp.Llama, vocab: Vocab, bos_id: int | None, template: FimTemplate
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
        with native_load(f"llama.cpp could not read the vocabulary of {path}"):
            llama = llama_cpp.Llama(str(path), vocab_only=True, n_ctx=16, verbose=True)
        llama.verbose = False
        vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        metadata: dict[str, str] = dict(llama.metadata)
        vocab = read_vocab(vocab_p, metadata)
        chosen = choose_template(vocab_p, vocab, metadata, template, path)
        return cls(llama, vocab, bos_for(vocab_p, vocab, chosen), chosen), metadata

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
        return find_special_id(self._vocab.special_ids, text)

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

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``prompt`` evaluates to (BOS, special parts, text parts)."""
        ids: list[int] = []
        if prompt.add_bos and self._bos_id is not None:
            ids.append(self._bos_id)
        for part in prompt.parts:
            if isinstance(part, Special):
                token = find_special_id(self._vocab.special_ids, part.text)
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


def read_vocab(vocab_p: llama_cpp.llama_vocab_p, metadata: Mapping[str, str]) -> Vocab:
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
    return Vocab(
        special_ids=special_ids,
        never_emit=frozenset(never_emit),
        spm_space_prefix=spm and space_prefix,
    )


def bos_for(vocab_p: llama_cpp.llama_vocab_p, vocab: Vocab, template: FimTemplate) -> int | None:
    """The BOS id a template wants: its own BOS text's token, else the vocabulary's BOS."""
    if template.bos is None:
        return None
    bos_id = find_special_id(vocab.special_ids, template.bos)
    if bos_id is None:
        fallback = llama_cpp.llama_vocab_bos(vocab_p)
        bos_id = fallback if fallback >= 0 else None
    return bos_id


def find_special_id(special_ids: Mapping[str, int], text: str) -> int | None:
    """The id of special token ``text``, trying its SentencePiece ``▁`` spelling too."""
    stripped = text.lstrip(" ")
    for candidate in (text, SPM_SPACE + stripped, stripped):
        if candidate in special_ids:
            return special_ids[candidate]
    return None


def choose_template(
    vocab_p: llama_cpp.llama_vocab_p,
    vocab: Vocab,
    metadata: Mapping[str, str],
    forced: str | None,
    path: Path,
) -> FimTemplate:
    """The forced template (checked against the vocabulary) or the detected one."""

    def has(text: str) -> bool:
        return find_special_id(vocab.special_ids, text) is not None

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
