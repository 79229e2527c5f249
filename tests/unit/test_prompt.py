"""Tests for rendering FIM prompts in each family's template."""

from __future__ import annotations

import pytest

from lsp_server.backends.templates import get_template
from lsp_server.completion.prompt import render_fim_prompt
from lsp_server.core import FimContext, Special

CTX = FimContext(prefix="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n")


@pytest.mark.parametrize(
    ("family", "pre", "suf", "mid", "prefix_text"),
    [
        ("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", CTX.prefix),
        ("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", CTX.prefix),
        ("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", CTX.prefix),
        ("codellama", "<PRE>", " <SUF>", " <MID>", " " + CTX.prefix),
        ("codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", CTX.prefix),
    ],
)
def test_exact_parts_per_family(
    family: str, pre: str, suf: str, mid: str, prefix_text: str
) -> None:
    template = get_template(family)
    prompt = render_fim_prompt(template, CTX)
    assert prompt.parts == (Special(pre), prefix_text, Special(suf), CTX.suffix, Special(mid))
    assert prompt.stop == template.stop
    assert prompt.add_bos == (template.bos is not None)


def test_deepseek_wants_bos_qwen_does_not() -> None:
    assert render_fim_prompt(get_template("deepseek"), CTX).add_bos is True
    assert render_fim_prompt(get_template("qwen"), CTX).add_bos is False


def test_codellama_renders_its_documented_spacing() -> None:
    prompt = render_fim_prompt(get_template("codellama"), FimContext(prefix="a = ", suffix="\nb"))
    assert prompt.render() == "<PRE> a =  <SUF>\nb <MID>"


def test_control_token_text_in_user_code_stays_plain_text() -> None:
    code = 'marker = "<|fim_prefix|>"\n'
    prompt = render_fim_prompt(
        get_template("qwen"), FimContext(prefix=code, suffix="<|endoftext|>")
    )
    specials = [p for p in prompt.parts if isinstance(p, Special)]
    assert specials == [
        Special("<|fim_prefix|>"),
        Special("<|fim_suffix|>"),
        Special("<|fim_middle|>"),
    ]
    assert code in prompt.parts
    assert "<|endoftext|>" in prompt.parts


def test_empty_prefix_and_suffix_leave_only_control_tokens() -> None:
    prompt = render_fim_prompt(get_template("deepseek"), FimContext(prefix="", suffix=""))
    assert prompt.parts == (
        Special("<｜fim▁begin｜>"),
        Special("<｜fim▁hole｜>"),
        Special("<｜fim▁end｜>"),
    )


def test_qwen_repo_format() -> None:
    ctx = FimContext(prefix="from utils import add\n", suffix="", path="/home/u/demo/src/main.py")
    prompt = render_fim_prompt(
        get_template("qwen"),
        ctx,
        repo_files=[("src/utils.py", "def add(a, b):\n    return a + b"), ("README.md", "# x\n")],
        repo_name="demo",
        current_path="src/main.py",
    )
    assert prompt.parts == (
        Special("<|repo_name|>"),
        "demo\n",
        Special("<|file_sep|>"),
        "src/utils.py\ndef add(a, b):\n    return a + b\n",
        Special("<|file_sep|>"),
        "README.md\n# x\n",
        Special("<|file_sep|>"),
        "src/main.py\n",
        Special("<|fim_prefix|>"),
        "from utils import add\n",
        Special("<|fim_suffix|>"),
        Special("<|fim_middle|>"),
    )


def test_current_file_is_named_without_its_absolute_path() -> None:
    ctx = FimContext(prefix="x = 1\n", suffix="", path="/home/u/demo/src/main.py")
    files = [("src/utils.py", "U = 1\n")]
    for template in ("qwen", "deepseek"):
        text = render_fim_prompt(get_template(template), ctx, files).render()
        assert "main.py\n" in text and "/home/u" not in text, text


def test_deepseek_repo_format_puts_files_as_comment_lines_in_the_prefix() -> None:
    ctx = FimContext(prefix="x = add(1, 2)\n", suffix="\n", path="main.py", language="python")
    prompt = render_fim_prompt(
        get_template("deepseek"), ctx, repo_files=[("utils.py", "def add(a, b):\n    ...\n")]
    )
    assert prompt.parts == (
        Special("<｜fim▁begin｜>"),
        "#utils.py\ndef add(a, b):\n    ...\n#main.py\n",
        "x = add(1, 2)\n",
        Special("<｜fim▁hole｜>"),
        "\n",
        Special("<｜fim▁end｜>"),
    )


def test_repo_files_keep_the_static_part_first_for_the_kv_cache() -> None:
    template = get_template("qwen")
    files = [("a.py", "A = 1\n")]
    one = render_fim_prompt(template, FimContext(prefix="x", suffix="", path="m.py"), files)
    two = render_fim_prompt(template, FimContext(prefix="xy", suffix="z", path="m.py"), files)
    # Everything before the current file's prefix is identical between keystrokes.
    cut = one.parts.index(Special("<|fim_prefix|>")) + 1
    assert one.parts[:cut] == two.parts[:cut]


def test_render_is_pure() -> None:
    template = get_template("starcoder")
    assert render_fim_prompt(template, CTX) == render_fim_prompt(template, CTX)


def test_middle_head_goes_after_the_middle_token() -> None:
    ctx = FimContext(prefix="def f():\n", suffix="\n\nprint(f())\n")
    prompt = render_fim_prompt(get_template("qwen"), ctx, middle_head="    ret")
    assert prompt.parts == (
        Special("<|fim_prefix|>"),
        "def f():\n",
        Special("<|fim_suffix|>"),
        "\n\nprint(f())\n",
        Special("<|fim_middle|>"),
        "    ret",
    )


def test_typing_changes_only_the_end_of_the_prompt() -> None:
    template = get_template("qwen")
    ctx = FimContext(prefix="def f():\n", suffix="\n", path="m.py")
    files = [("a.py", "A = 1\n")]
    one = render_fim_prompt(template, ctx, files, middle_head="    r")
    two = render_fim_prompt(template, ctx, files, middle_head="    re")
    assert one.parts[:-1] == two.parts[:-1]
    assert one.render() + "e" == two.render()
