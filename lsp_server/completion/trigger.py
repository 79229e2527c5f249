"""Decide whether to complete at the cursor, and how much (the completion's shape).

``decide_shape`` looks at the cursor line and, when a syntax tree is at hand, at the
nodes around the cursor:

* ``Shape.NONE`` – the cursor sits inside an identifier with code right after it, or
  (unless the user invoked completion explicitly) inside a comment or a string;
* ``Shape.LINE`` – text follows the cursor on its line, or the cursor is inside an
  argument list, a condition or an expression, or ends a line that is not a body opener,
  or sits on a blank line between two statements of one block (the next line of code
  is at the cursor's indentation and neither closes the block nor starts a definition);
* ``Shape.BLOCK`` – any other empty/whitespace-only cursor line, or the text before the
  cursor opens a body (``def …:``, ``{``, ``then``, ``do`` …).

Without a grammar the same decisions are made from the line text alone (indentation,
brackets, quotes and common comment markers), so unknown languages never fail.
"""

from __future__ import annotations

import re

from tree_sitter import Node, Tree

from lsp_server.completion.scan import BRACKETS, QUOTES, CodeScan
from lsp_server.core import Shape
from lsp_server.languages import BLOCK_COMMENT_ENDS, line_comment_markers, spec_for
from lsp_server.syntax import byte_offset, node_at

__all__ = [
    "LINE_TOKEN_CAP",
    "decide_shape",
    "max_tokens_for",
    "opens_body",
]

LINE_TOKEN_CAP = 64
"""Most tokens a single-line completion may take (a long line is rarely longer)."""

_WORD = re.compile(r"\w")
_BODY_KEYWORD_END = re.compile(r"(?:^|[\s;)])(?:then|do|else|begin|repeat)\s*$")
_BASH_CASE_END = re.compile(r"^\s*case\b.*\bin\s*$")
_DO_BLOCK_END = re.compile(r"\bdo\s*(?:\|[^|]*\|)?\s*$")
_END_BLOCK_START = re.compile(
    r"^\s*(?:local\s+|export\s+|private\s+|public\s+|protected\s+)?"
    r"(?:def|class|module|function|if|unless|while|until|for|case|begin|struct|macro|defp?|"
    r"defmodule)\b"
)
_LUA_FUNCTION_EXPR = re.compile(r"\bfunction\b[^()]*\([^()]*\)\s*$")
_LOOKAHEAD_LINES = 20
"""Most lines looked at after a blank cursor line for the next line of code."""
_BLOCK_END = re.compile(
    r"(?:end|else|elif|elsif|elseif|except|finally|catch|rescue|ensure|fi|done|esac|until|"
    r"case|default|when|in)\b"
)
_DEFINITION_START = re.compile(
    r"(?:@\w|(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:pub(?:\([^)]*\))?\s+)?"
    r"(?:def|class|function|func|fn|impl|struct|enum|trait|interface|module|namespace|"
    r"template|sub|proc|local\s+function|public|private|protected|internal|static)\b)"
)

_BLOCK_COMMENT_ENDS = tuple(end.encode() for end in BLOCK_COMMENT_ENDS)
"""A comment node that ends with one of these is closed: the cursor after it is in code."""

# Node types (by substring) in whose text a completion is unwanted.
_STRINGY = ("string", "char_literal", "character_literal", "heredoc", "regex", "rune_literal")
# Nodes that hold code inside a string: the cursor there is in code again.
_INTERPOLATION = ("interpolation", "template_substitution", "substitution", "embedded")
# Containers whose contents are statements: a blank line there wants a block.
BLOCK_CONTAINERS = (
    "block",
    "body",
    "compound_statement",
    "declaration_list",
    "statement_list",
    "class_body",
    "chunk",
    "program",
    "module",
    "source_file",
    "translation_unit",
    "compilation_unit",
    "do_group",
    "then",
    "else",
)
# Containers whose contents are expressions: a blank line there wants one line.
_LISTISH = (
    "argument",
    "parameter",
    "condition",
    "parenthesized",
    "subscript",
    "array",
    "tuple",
    "dictionary",
    "object",
    "binary_expression",
    "expression_list",
    "initializer_list",
    "literal_value",
    "arguments",
    "type_arguments",
)


def max_tokens_for(shape: Shape, configured: int) -> int:
    """The generation limit for ``shape``: 0 for NONE, capped for LINE, as set for BLOCK."""
    if shape is Shape.NONE:
        return 0
    if shape is Shape.LINE:
        return max(1, min(configured, LINE_TOKEN_CAP))
    return max(1, configured)


def decide_shape(
    text: str,
    offset: int,
    language: str | None,
    *,
    invoked: bool,
    tree: Tree | None = None,
) -> Shape:
    """Decide the completion shape at ``offset`` (a ``str`` index into ``text``).

    ``tree`` is the document's syntax tree for ``text`` when a grammar is known; it
    sharpens the comment/string and argument-list checks but is never required.
    """
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end < 0:
        line_end = len(text)
    before = text[line_start:offset]
    after = text[offset:line_end].rstrip("\r")

    prev_char = before[-1:] if before else ""
    next_char = after[:1]
    if prev_char and next_char and _WORD.match(prev_char) and _WORD.match(next_char):
        # Completing inside an identifier would split it.
        return Shape.NONE

    node = None
    if tree is not None:
        node = node_at(tree, byte_offset(text, offset))

    if not invoked:
        if next_char and _WORD.match(next_char):
            # Code starts right at the cursor: an insertion would run into it.
            return Shape.NONE
        if _in_comment_or_string(text, offset, before, language, tree, node):
            return Shape.NONE

    if after.strip():
        return Shape.LINE

    stripped = before.rstrip()
    if not stripped:
        if node is not None and _innermost_container(node, offset, text, tree) == "list":
            return Shape.LINE
        if _between_statements(text, line_end, before):
            return Shape.LINE
        return Shape.BLOCK
    if opens_body(stripped, language):
        return Shape.BLOCK
    return Shape.LINE


def _between_statements(text: str, line_end: int, before: str) -> bool:
    """True when the next code line continues the cursor's block at the cursor's level.

    A blank line opened between two statements of one block is where a single
    statement goes: the code after it already carries the block on. A next line that
    closes the block (a dedent, a closer, ``end``/``else``…) or starts a new definition
    leaves room for a whole body instead.
    """
    width = len(before.expandtabs(4))
    pos = line_end
    for _ in range(_LOOKAHEAD_LINES):
        if pos >= len(text):
            return False
        nxt = text.find("\n", pos + 1)
        line = text[pos + 1 : nxt if nxt >= 0 else len(text)].rstrip("\r")
        pos = nxt if nxt >= 0 else len(text)
        body = line.strip()
        if not body:
            continue
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if len(indent.expandtabs(4)) != width:
            return False
        return not (body[0] in ")]}" or _BLOCK_END.match(body) or _DEFINITION_START.match(body))
    return False


def opens_body(stripped: str, language: str | None) -> bool:
    """True when the line text before the cursor opens a body (block) to fill in."""
    last = stripped[-1]
    if last == "{":
        return True
    if last == ":" and not stripped.endswith("::"):
        return True
    if _BODY_KEYWORD_END.search(stripped) or _DO_BLOCK_END.search(stripped):
        return True
    if language in ("bash", "fish", None) and _BASH_CASE_END.match(stripped):
        return True
    spec = spec_for(language)
    if language is None or (spec is not None and spec.blocks == "end"):
        if _END_BLOCK_START.match(stripped) and not re.search(r"\bend\b", stripped):
            return True
        if language in ("lua", "luau") and _LUA_FUNCTION_EXPR.search(stripped):
            return True
    return False


def _innermost_container(node: Node, offset: int, text: str, tree: Tree | None) -> str:
    """Classify the innermost node around the cursor as ``"block"``, ``"list"`` or ``""``."""
    byte = byte_offset(text, offset)
    current: Node | None = node
    while current is not None:
        # Only containers that strictly enclose the cursor count; a node that ends at the
        # cursor is a finished sibling before it.
        if current.start_byte < byte < current.end_byte or current.parent is None:
            kind = current.type
            if any(part in kind for part in BLOCK_CONTAINERS):
                return "block"
            if any(part in kind for part in _LISTISH):
                return "list"
        current = current.parent
    return ""


def _in_comment_or_string(
    text: str,
    offset: int,
    before: str,
    language: str | None,
    tree: Tree | None,
    node: Node | None,
) -> bool:
    """True when the cursor is inside a comment or a string literal."""
    if node is not None and tree is not None:
        byte = byte_offset(text, offset)
        current: Node | None = node
        while current is not None:
            kind = current.type
            if any(part in kind for part in _INTERPOLATION):
                if current.start_byte < byte < current.end_byte:
                    return False
            elif "comment" in kind:
                if current.start_byte < byte < current.end_byte:
                    return True
                if byte == current.end_byte and current.start_byte < byte:
                    # A line comment runs to the end of its line, so its end is inside.
                    body = current.text or b""
                    if not body.rstrip().endswith(_BLOCK_COMMENT_ENDS):
                        return True
            elif any(part in kind for part in _STRINGY) and current.start_byte < byte < (
                current.end_byte
            ):
                return True
            current = current.parent
    return _line_in_comment_or_string(before, language)


def _line_in_comment_or_string(before: str, language: str | None) -> bool:
    """Line-only check: an open quote or a line-comment marker before the cursor."""
    markers = line_comment_markers(language)
    # A lone apostrophe in Rust lifetimes / Lisp quotes is not a string; only treat it as
    # a quote when the language uses it for strings or characters.
    spec = spec_for(language)
    apostrophe_quotes = spec is None or spec.apostrophe_quotes
    scan = CodeScan(
        before,
        markers,
        quotes=QUOTES if apostrophe_quotes else QUOTES.replace("'", ""),
        is_comment=_hash_comment if language is None else None,
    )
    for _, tok in scan:
        if tok not in BRACKETS:
            return True
    return scan.open_quote is not None


def _hash_comment(text: str, i: int) -> bool:
    """Unknown language: ``a#b`` is more likely an operator than a comment."""
    return text[i] != "#" or i == 0 or text[i - 1] in " \t"
