"""Fill-in-the-middle (FIM) templates per model family, and detecting one from a vocabulary.

A FIM code model is trained on documents cut into prefix / suffix / middle and glued back
together with control tokens. Every family uses its own token texts (and some want a BOS
token first); this module knows them as data (:data:`FIM_TEMPLATES`) and picks the right
one for a loaded model by looking at which control-token texts its vocabulary holds.

Token texts are exact vocabulary texts, so they are full of look-alike characters:
DeepSeek-Coder's use the fullwidth vertical line U+FF5C and the lower one-eighth block
U+2581 (``<｜fim▁begin｜>``), not ``|`` and ``_``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SPM_SPACE = "\u2581"
"""SentencePiece's visible space; CodeLlama's vocabulary spells its FIM tokens ``▁<SUF>``."""


@dataclass(frozen=True, slots=True)
class FimTemplate:
    """How one model family spells a prefix-suffix-middle (PSM) prompt.

    The prompt is ``[bos] prefix_token {prefix} suffix_token {suffix} middle_token`` and the
    model writes the middle after it. Token fields hold the exact text a renderer puts into
    a :class:`~lsp_server.core.Special` part; a text starting with a space (CodeLlama's
    ``" <SUF>"``) names the SentencePiece token spelled with ``▁``.
    """

    name: str
    prefix: str
    """The token that opens the prefix (the text before the cursor)."""
    suffix: str
    """The token that opens the suffix (the text after the cursor)."""
    middle: str
    """The token after which the model writes the missing middle."""
    bos: str | None = None
    """Text of the BOS token to put first, or None when the family wants none."""
    stop: tuple[str, ...] = ()
    """Texts that end a completion (end-of-text and file/document separators)."""
    repo_name: str | None = None
    """Token that introduces a repository name in the repo-level format, if any."""
    file_sep: str | None = None
    """Token that introduces each file (then its path on one line) in the repo format."""
    prefix_space: bool = False
    """True when the family puts one space between the prefix token and the prefix
    (CodeLlama's ``<PRE> {prefix}``: its tokenizer's dummy-prefix space)."""

    @property
    def special_texts(self) -> tuple[str, ...]:
        """Every control-token text this template uses or stops on."""
        texts = [self.prefix, self.suffix, self.middle, *self.stop]
        texts += [t for t in (self.bos, self.repo_name, self.file_sep) if t is not None]
        return tuple(dict.fromkeys(texts))


DEEPSEEK = FimTemplate(
    name="deepseek",
    prefix="<｜fim▁begin｜>",
    suffix="<｜fim▁hole｜>",
    middle="<｜fim▁end｜>",
    bos="<｜begin▁of▁sentence｜>",
    stop=("<|EOT|>", "<｜end▁of▁sentence｜>"),
)
QWEN = FimTemplate(
    name="qwen",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    stop=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>", "<|repo_name|>"),
    repo_name="<|repo_name|>",
    file_sep="<|file_sep|>",
)
STARCODER = FimTemplate(
    name="starcoder",
    prefix="<fim_prefix>",
    suffix="<fim_suffix>",
    middle="<fim_middle>",
    stop=("<|endoftext|>", "<file_sep>"),
)
CODELLAMA = FimTemplate(
    name="codellama",
    prefix="<PRE>",
    suffix=" <SUF>",
    middle=" <MID>",
    bos="<s>",
    stop=(" <EOT>", "<EOT>", "</s>"),
    prefix_space=True,
)
CODEGEMMA = FimTemplate(
    name="codegemma",
    prefix="<|fim_prefix|>",
    suffix="<|fim_suffix|>",
    middle="<|fim_middle|>",
    bos="<bos>",
    stop=("<|file_separator|>", "<eos>", "<end_of_turn>"),
)

FIM_TEMPLATES: dict[str, FimTemplate] = {
    t.name: t for t in (DEEPSEEK, QWEN, STARCODER, CODELLAMA, CODEGEMMA)
}
"""Known templates by name (the names ``models.toml`` and the settings accept)."""

ALL_SPECIAL_TEXTS: frozenset[str] = frozenset(
    text.strip() for t in FIM_TEMPLATES.values() for text in t.special_texts
)
"""Every control-token text any known family uses (stripped of CodeLlama's space)."""

# Metadata words that name a family, for models whose vocabulary fits several families
# (CodeGemma and Qwen both spell their FIM tokens <|fim_prefix|>).
_FAMILY_HINTS: dict[str, tuple[str, ...]] = {
    "deepseek": ("deepseek",),
    "qwen": ("qwen",),
    "starcoder": ("starcoder", "refact", "granite", "bigcode"),
    "codellama": ("codellama", "code-llama", "code llama", "llama"),
    "codegemma": ("codegemma", "gemma"),
}


def get_template(name: str) -> FimTemplate:
    """Return the template called ``name`` (case-insensitive).

    Raises:
        KeyError: no template has that name; the message lists the known names.
    """
    try:
        return FIM_TEMPLATES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(FIM_TEMPLATES))
        raise KeyError(f"unknown FIM template {name!r}; known templates: {known}") from None


def _has_special(has_token: Callable[[str], bool], text: str) -> bool:
    """Whether the vocabulary has ``text`` as one token, in plain or SentencePiece spelling."""
    stripped = text.lstrip(" ")
    return any(has_token(t) for t in (text, stripped, SPM_SPACE + stripped))


def _fits(template: FimTemplate, has_token: Callable[[str], bool]) -> bool:
    """Whether the vocabulary holds all three FIM tokens of ``template``."""
    return all(
        _has_special(has_token, t) for t in (template.prefix, template.suffix, template.middle)
    )


def _hint_score(template: FimTemplate, metadata: Mapping[str, str]) -> int:
    """How strongly the GGUF metadata points at ``template``'s family (0 = not at all)."""
    score = 0
    pre = metadata.get("tokenizer.ggml.pre", "").lower()
    name = " ".join(
        metadata.get(k, "") for k in ("general.name", "general.basename", "general.architecture")
    ).lower()
    for word in _FAMILY_HINTS.get(template.name, ()):
        # The pre-tokenizer name is set by the converter from the tokenizer itself, so it
        # outranks the free-form model name.
        if word in pre:
            score += 2
        if word in name:
            score += 1
    return score


def detect_template(
    has_token: Callable[[str], bool], metadata: Mapping[str, str]
) -> FimTemplate | None:
    """Pick the FIM template whose control tokens exist in a model's vocabulary.

    Args:
        has_token: True when the vocabulary holds the given text as a single token.
        metadata: GGUF metadata (``tokenizer.ggml.pre``, ``general.name`` …), used to break
            ties between families that spell their FIM tokens alike.

    Returns:
        The template, or None when the vocabulary has no known FIM tokens.
    """
    candidates = [t for t in FIM_TEMPLATES.values() if _fits(t, has_token)]
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]

    def rank(template: FimTemplate) -> tuple[int, int]:
        # Tokens only one family has (Qwen's <|fim_pad|>, CodeGemma's <|file_separator|>)
        # decide first; metadata words only break what the vocabulary leaves tied.
        extra = sum(_has_special(has_token, t) for t in template.special_texts)
        return (extra, _hint_score(template, metadata))

    best = max(candidates, key=rank)
    logger.debug("FIM template candidates %s; chose %s", [t.name for t in candidates], best.name)
    return best


def template_from_tokens(
    prefix: str, suffix: str, middle: str, stop: tuple[str, ...] = ()
) -> FimTemplate:
    """A template for a model of no known family, from its vocabulary's own FIM tokens.

    llama.cpp finds the FIM tokens of many models by their text (``llama_vocab_fim_pre``
    …); this builds a template from those when no family in :data:`FIM_TEMPLATES` fits.
    """
    return FimTemplate(name="gguf", prefix=prefix, suffix=suffix, middle=middle, stop=stop)
