"""Write a tiny, fully deterministic llama-architecture GGUF for tests.

The model is a next-token table, not a language model: every attention and FFN weight is
zero, so the hidden state after the last layer is the (one-hot) embedding of the current
token, and the output matrix maps that token straight to the next one. Greedy decoding
therefore follows a fixed chain, whatever came earlier in the prompt — only the *last*
prompt token matters.

Its vocabulary is DeepSeek-Coder-shaped so llama.cpp and the FIM detection treat it like
the real thing: the 256 GPT-2 byte-level tokens, DeepSeek-Coder's control tokens
(``<｜begin▁of▁sentence｜>``, ``<｜end▁of▁sentence｜>``, ``<｜fim▁begin｜>``,
``<｜fim▁hole｜>``, ``<｜fim▁end｜>``, ``<|EOT|>``), ``tokenizer.ggml.model = "gpt2"``,
``pre = "deepseek-coder"``, and one extra token per multi-byte text named in the chain.

The default chain: after ``<｜fim▁end｜>`` (the last token of every DeepSeek FIM prompt)
the model writes ``return`` `` a`` `` +`` `` b`` — four distinct tokens — then ``<|EOT|>``:
:data:`DEFAULT_COMPLETION` is ``"return a + b"``.

Other chains: pass ``transitions``, a mapping from a token's text to the text of the token
that follows it. Each text becomes one token: a special-token text is that token, a
one-byte text is that byte's token, ``"<0xHH>"`` is the raw byte HH (for building UTF-8
sequences split across tokens), anything longer becomes a new whole-word token. A token
that has no entry is followed by ``<|EOT|>`` (so every chain ends unless it loops). Since
the table has one successor per token, a text can appear only once in a chain unless you
want a loop. Examples::

    # a multi-line block (distinct tokens for each line piece)
    {FIM_END: "if x:", "if x:": "\\n    ", "\\n    ": "return 1", "return 1": "\\n"}
    # a special token mid-way (a backend must stop there, emitting "return")
    {FIM_END: "return", "return": FIM_HOLE}
    # a chain that never ends (for max_tokens and cancellation)
    {FIM_END: "x", "x": "x"}
    # "é" as two byte tokens (incremental UTF-8 decoding)
    {FIM_END: "<0xC3>", "<0xC3>": "<0xA9>"}

Writing one takes a few milliseconds; the file is about 2.5 MB.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"
EOT = "<|EOT|>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, FIM_BEGIN, FIM_HOLE, FIM_END, EOT)
"""DeepSeek-Coder's control tokens, in vocabulary order after the 256 byte tokens."""

DEFAULT_CHAIN: tuple[str, ...] = ("return", " a", " +", " b")
"""The tokens the default model writes after ``<｜fim▁end｜>``, before ``<|EOT|>``."""
DEFAULT_COMPLETION = "".join(DEFAULT_CHAIN)
"""``"return a + b"``: what greedy decoding of any DeepSeek FIM prompt yields."""
DEFAULT_TRANSITIONS: dict[str, str] = {
    FIM_END: "return",
    "return": " a",
    " a": " +",
    " +": " b",
    " b": EOT,
}
CONTEXT_LENGTH = 2048
"""The model's training context (``llama.context_length``)."""
MODEL_NAME = "tiny-deepseek-fim"

_BYTE_NAME = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_LOGIT = 4.0
"""Output weight of the successor; with the RMS-normed one-hot state its logit is
4·sqrt(n_embd) ≈ 70 against 0, so even sampling at temperature 1 follows the chain."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, others shift up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping: dict[int, str] = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


_BYTE_CHARS = _bytes_to_unicode()


def _encode(text: str) -> str:
    """A text in the byte-level alphabet the GGUF vocabulary stores."""
    return "".join(_BYTE_CHARS[b] for b in text.encode("utf-8"))


class _Vocab:
    """The token list under construction, with lookups from a chain text to its id."""

    def __init__(self, special_tokens: Sequence[str]) -> None:
        self.special = tuple(special_tokens)
        self.tokens: list[str] = [_BYTE_CHARS[b] for b in range(256)]
        self.types: list[int] = [TokenType.NORMAL] * 256
        for text in self.special:
            self.tokens.append(text)
            self.types.append(TokenType.CONTROL)
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    def id_of(self, text: str) -> int:
        """The id of the token a chain text names, adding a word token when needed."""
        if text in self.special:
            return self._ids[text]
        match = _BYTE_NAME.fullmatch(text)
        if match:
            return int(match.group(1), 16)
        raw = text.encode("utf-8")
        if not raw:
            raise ValueError("a chain token cannot be empty")
        if len(raw) == 1:
            return raw[0]
        encoded = _encode(text)
        if encoded not in self._ids:
            self._ids[encoded] = len(self.tokens)
            self.tokens.append(encoded)
            self.types.append(TokenType.NORMAL)
        return self._ids[encoded]


def write_tiny_model(
    path: Path,
    transitions: Mapping[str, str] | None = None,
    *,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    end_token: str = EOT,
    pre: str = "deepseek-coder",
    name: str = MODEL_NAME,
) -> Path:
    """Write the tiny next-token-table model to ``path`` and return ``path``.

    Args:
        path: Where to write the ``.gguf`` file (its folder must exist).
        transitions: Token text -> next token text (see the module docstring); None for
            :data:`DEFAULT_TRANSITIONS`.
        special_tokens: The control tokens of the vocabulary (default DeepSeek-Coder's);
            pass another family's to shape the model like it, e.g. Qwen's
            ``<|endoftext|>``, ``<|fim_prefix|>`` … with ``end_token="<|endoftext|>"`` and
            ``pre="qwen2"``, or leave the FIM tokens out for a model without FIM.
        end_token: The end-of-generation token, which follows every unmapped token; it must
            be one of ``special_tokens``.
        pre: ``tokenizer.ggml.pre``, the pre-tokenizer llama.cpp uses.
        name: ``general.name``.
    """
    table = dict(DEFAULT_TRANSITIONS if transitions is None else transitions)
    if FIM_END in table:
        # The server puts the cursor line's indentation after the middle token (less its
        # last space), so a prompt may end in a space: it starts the same chain.
        table.setdefault(" ", table[FIM_END])
    vocab = _Vocab(special_tokens)
    edges = [(vocab.id_of(a), vocab.id_of(b)) for a, b in table.items()]
    # llama.cpp refuses a BPE vocabulary without merges; "Ġ Ġ" (two spaces) is harmless.
    merges = ["Ġ Ġ"]
    vocab.tokens.append("ĠĠ")
    vocab.types.append(TokenType.NORMAL)

    n_vocab = len(vocab.tokens)
    n_embd = -(-n_vocab // 64) * 64  # one dimension per token, rounded up for the heads
    n_head = n_embd // 64
    n_ff = 64
    if end_token not in vocab.special:
        raise ValueError(f"end_token {end_token!r} is not among special_tokens")
    eot_id = vocab.id_of(end_token)

    embeddings = np.zeros((n_vocab, n_embd), dtype=np.float32)
    embeddings[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    output[eot_id, :n_vocab] = _LOGIT  # every token without an entry is followed by EOT
    for src, dst in edges:
        output[:, src] = 0.0
        output[dst, src] = _LOGIT

    writer = GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(merges)
    has_bos = BOS in vocab.special
    if has_bos:
        writer.add_bos_token_id(vocab.id_of(BOS))
    writer.add_eos_token_id(vocab.id_of(EOS) if EOS in vocab.special else eot_id)
    writer.add_eot_token_id(eot_id)
    writer.add_add_bos_token(has_bos)
    writer.add_add_eos_token(False)

    zeros = np.zeros
    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    blk = "blk.0"
    writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"{blk}.{name}.weight", zeros((n_embd, n_embd), dtype=np.float32))
    writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor(f"{blk}.ffn_gate.weight", zeros((n_ff, n_embd), dtype=np.float32))
    writer.add_tensor(f"{blk}.ffn_up.weight", zeros((n_ff, n_embd), dtype=np.float32))
    writer.add_tensor(f"{blk}.ffn_down.weight", zeros((n_embd, n_ff), dtype=np.float32))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
