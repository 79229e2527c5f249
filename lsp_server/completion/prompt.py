"""Render a FIM context into a model prompt in the model family's template.

The prompt is a tuple of parts: plain ``str`` parts hold code and are tokenized as text,
:class:`~lsp_server.core.Special` parts hold control tokens and are looked up as single
tokens. Keeping them apart means a literal ``<|fim_prefix|>`` typed in the user's code is
never read as a control token.

Layout, when repository files are given, puts them first (they change rarely) and the
current file's prefix/suffix last, so the KV cache of a previous request covers as much of
the prompt as possible. With ``middle_head`` (the text typed on the cursor line so far,
possibly with a few whole lines above it), that text goes *after* the middle token — the
layout llama.cpp's ``/infill`` uses for its ``prompt`` field: the model then continues it,
and typing a character only appends tokens at the very end of the prompt instead of
changing the prefix and so forcing the whole suffix to be evaluated again:

* families with repo tokens (Qwen2.5-Coder)::

    <|repo_name|>name\\n<|file_sep|>path\\ncontent … <|file_sep|>current/path\\n
    <|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>middle_head

* the others (DeepSeek-Coder's repository format): each file as a comment line with its
  path then its content, inside the prefix section before the current file::

    <｜fim▁begin｜>#utils.py\\ncontent … #main.py\\nprefix<｜fim▁hole｜>suffix<｜fim▁end｜>
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from lsp_server.backends.templates import FimTemplate
from lsp_server.core import FimContext, Prompt, PromptPart, Special
from lsp_server.languages import comment_marker

DEFAULT_REPO_NAME = "project"
"""Repository name used in the repo format when the caller gives none."""


def _with_newline(text: str) -> str:
    """``text`` ending in exactly one newline, so the next path line starts a new line."""
    return text if text.endswith("\n") else text + "\n"


def _repo_parts_tokens(
    template: FimTemplate,
    repo_files: Sequence[tuple[str, str]],
    repo_name: str,
    current_path: str | None,
) -> list[PromptPart]:
    """Repository files in the family's own repo format (repo_name / file_sep tokens)."""
    assert template.file_sep is not None
    parts: list[PromptPart] = []
    if template.repo_name is not None:
        parts += [Special(template.repo_name), f"{repo_name}\n"]
    for path, content in repo_files:
        parts += [Special(template.file_sep), f"{path}\n{_with_newline(content)}"]
    parts += [Special(template.file_sep), f"{current_path or 'untitled'}\n"]
    return parts


def _repo_text_comments(
    repo_files: Sequence[tuple[str, str]], current_path: str | None, language: str | None
) -> str:
    """Repository files as ``<comment><path>`` lines followed by their content."""
    chunks = [
        f"{comment_marker(path)}{path}\n{_with_newline(content)}" for path, content in repo_files
    ]
    if current_path:
        chunks.append(f"{comment_marker(current_path, language)}{current_path}\n")
    return "".join(chunks)


def render_fim_prompt(
    template: FimTemplate,
    ctx: FimContext,
    repo_files: Sequence[tuple[str, str]] = (),
    repo_name: str = DEFAULT_REPO_NAME,
    *,
    middle_head: str = "",
    current_path: str | None = None,
) -> Prompt:
    """Render ``ctx`` (and optional repository files) as a prompt in ``template``'s format.

    Args:
        template: The model family's FIM template.
        ctx: Prefix and suffix around the cursor (and the current file's path/language).
        repo_files: ``(path, content)`` pairs of other files to show first, most useful
            last (nearest to the cursor); empty for a plain FIM prompt.
        repo_name: Repository name for families whose repo format names it.
        middle_head: Text the middle starts with, put after the middle token (the code
            between the end of ``ctx.prefix`` and the cursor); empty for the plain
            prefix-suffix-middle layout.
        current_path: How the repository block names the current file: relative to the
            workspace root, like the other files (default: the file's name; an absolute
            path is not what the model saw in training, and says more than needed).

    Returns:
        A prompt whose text parts are code and whose :class:`Special` parts are control
        tokens; ``stop`` holds the template's stop texts and ``add_bos`` says whether the
        family wants its BOS token first. Empty text parts are left out.
    """
    before: list[PromptPart] = []
    prefix_head = ""
    if repo_files:
        shown = current_path or (posixpath.basename(ctx.path) if ctx.path else None)
        if template.file_sep is not None:
            before = _repo_parts_tokens(template, repo_files, repo_name, shown)
        else:
            prefix_head = _repo_text_comments(repo_files, shown, ctx.language)

    prefix = (" " if template.prefix_space else "") + ctx.prefix
    parts: list[PromptPart] = [
        *before,
        Special(template.prefix),
        prefix_head,
        prefix,
        Special(template.suffix),
        ctx.suffix,
        Special(template.middle),
        middle_head,
    ]
    return Prompt(
        parts=tuple(p for p in parts if not (isinstance(p, str) and p == "")),
        stop=template.stop,
        add_bos=template.bos is not None,
    )
