"""Tests for FIM templates and detecting the family from a vocabulary."""

from __future__ import annotations

import pytest

from lsp_server.backends.templates import (
    ALL_SPECIAL_TEXTS,
    FIM_TEMPLATES,
    detect_template,
    get_template,
    template_from_tokens,
)

DEEPSEEK_VOCAB = {
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜fim▁begin｜>",
    "<｜fim▁hole｜>",
    "<｜fim▁end｜>",
    "<|EOT|>",
}
QWEN_VOCAB = {
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
}
STARCODER_VOCAB = {"<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<file_sep>"}
# CodeLlama's GGUF spells its FIM tokens with SentencePiece's ▁ (U+2581).
CODELLAMA_VOCAB = {"<s>", "</s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"}
CODEGEMMA_VOCAB = {
    "<bos>",
    "<eos>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|file_separator|>",
    "<end_of_turn>",
}


@pytest.mark.parametrize(
    ("vocab", "expected"),
    [
        (DEEPSEEK_VOCAB, "deepseek"),
        (QWEN_VOCAB, "qwen"),
        (STARCODER_VOCAB, "starcoder"),
        (CODELLAMA_VOCAB, "codellama"),
        (CODEGEMMA_VOCAB, "codegemma"),
    ],
)
def test_detects_family_from_vocabulary(vocab: set[str], expected: str) -> None:
    template = detect_template(vocab.__contains__, {})
    assert template is not None
    assert template.name == expected


def test_vocabulary_without_fim_tokens_gives_none() -> None:
    chat_only = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    assert detect_template(chat_only.__contains__, {}) is None


def test_partial_fim_tokens_are_not_enough() -> None:
    # Two of three tokens: rendering would fail, so no template.
    vocab = {"<|fim_prefix|>", "<|fim_suffix|>"}
    assert detect_template(vocab.__contains__, {}) is None


def test_ascii_lookalikes_do_not_count_as_deepseek() -> None:
    # "|" and "_" instead of U+FF5C and U+2581: not DeepSeek's tokens.
    vocab = {"<|fim_begin|>", "<|fim_hole|>", "<|fim_end|>"}
    assert detect_template(vocab.__contains__, {}) is None


def test_metadata_breaks_a_tie_the_vocabulary_leaves() -> None:
    # Only the three shared <|fim_*|> tokens: Qwen and CodeGemma fit equally.
    vocab = {"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"}
    qwen = detect_template(vocab.__contains__, {"tokenizer.ggml.pre": "qwen2"})
    gemma = detect_template(vocab.__contains__, {"general.name": "codegemma-2b"})
    assert qwen is not None and qwen.name == "qwen"
    assert gemma is not None and gemma.name == "codegemma"


def test_family_specific_tokens_outrank_a_misleading_name() -> None:
    template = detect_template(QWEN_VOCAB.__contains__, {"general.name": "gemma-finetune"})
    assert template is not None and template.name == "qwen"


def test_deepseek_tokens_use_fullwidth_bar_and_lower_block() -> None:
    ds = get_template("deepseek")
    assert ds.prefix == "<\uff5cfim\u2581begin\uff5c>"
    assert ds.suffix == "<\uff5cfim\u2581hole\uff5c>"
    assert ds.middle == "<\uff5cfim\u2581end\uff5c>"
    assert ds.bos == "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
    assert "<|EOT|>" in ds.stop


def test_qwen_has_repo_tokens_and_no_bos() -> None:
    qwen = get_template("qwen")
    assert qwen.bos is None
    assert (qwen.repo_name, qwen.file_sep) == ("<|repo_name|>", "<|file_sep|>")
    assert {"<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>"} <= set(qwen.stop)


def test_get_template_is_case_insensitive_and_lists_names_on_error() -> None:
    assert get_template(" Qwen ") is FIM_TEMPLATES["qwen"]
    with pytest.raises(KeyError) as err:
        get_template("gpt-4")
    message = str(err.value)
    for name in ("deepseek", "qwen", "starcoder", "codellama"):
        assert name in message


def test_special_texts_and_union() -> None:
    ds = get_template("deepseek")
    assert ds.special_texts[:3] == (ds.prefix, ds.suffix, ds.middle)
    assert ds.bos in ds.special_texts
    assert len(set(ds.special_texts)) == len(ds.special_texts)
    # CodeLlama's " <SUF>" is listed stripped, so a ▁-spelled token text can be matched.
    assert "<SUF>" in ALL_SPECIAL_TEXTS
    assert "<|file_sep|>" in ALL_SPECIAL_TEXTS


def test_template_from_tokens() -> None:
    t = template_from_tokens("<pre>", "<suf>", "<mid>", stop=("<eot>",))
    assert (t.name, t.prefix, t.suffix, t.middle, t.stop, t.bos) == (
        "gguf",
        "<pre>",
        "<suf>",
        "<mid>",
        ("<eot>",),
        None,
    )
