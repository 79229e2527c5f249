"""Choose and order the repository snippets that go in front of the current file.

:func:`select_repo_context` returns ``(display path, content)`` pairs for
``render_fim_prompt(..., repo_files=...)``. Candidates, by priority:

1. **definitions of imported symbols** the code needs: used near the cursor (the lines
   above it and below it; function-local imports near the cursor count), or imported but
   not used anywhere yet (the likeliest to be typed next), then used elsewhere in the
   file — signature, docstring and a short body (classes: header, docstring and their
   methods' signatures);
2. **imported files**, whole when small, else as an outline of their definitions;
3. **chunks similar to the cursor window** (Jaccard over identifiers) from imported
   files, files of the same folder and open documents.

Snippets that mostly repeat the current file are dropped. Python outlines read as stub
files (``def f(x: int) -> str: ...``, multi-line signatures joined): a signature with
nothing under it is not code, and the model would imitate it. The budget is filled in
priority order with token estimates; what is chosen is then counted exactly with the
model's own tokenizer (through the pipeline's memo) and the least important snippets
are dropped until it fits. The files are emitted in dependency order (a file another
selected file imports comes first); among files free to go next, the least relevant
first, so the most relevant definitions end up nearest the current file. Snippets of one
file keep their line order, joined by ``...`` lines.

:func:`repo_budget` sizes the block: a share of the prompt budget, plus what a small
current file leaves unused (:func:`local_need`).

Stability: the needs are computed from a window quantised to blocks of lines plus the
identifiers of the cursor line, so typing inside a line, or moving within a block, gives
the very same list (and the model's KV cache keeps the repository block).
"""

from __future__ import annotations

import functools
import itertools
import logging
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from tree_sitter import Tree

from lsp_server.languages import comment_marker, language_for, spec_for
from lsp_server.repo.imports import PathView, ResolvedImport, resolve_imports
from lsp_server.repo.tags import (
    BRACE_STUB,
    PYTHON_STUB,
    FileTags,
    ImportRef,
    Tag,
    body_indent,
    close_header,
    closing_line,
    cut_ending,
    imports_from_tree,
    join_header,
    opens_bracket,
    outline,
    render_definition,
)
from lsp_server.syntax import parse
from lsp_server.tokens import cached_count

logger = logging.getLogger(__name__)

__all__ = [
    "RankOptions",
    "RepoFiles",
    "RepoView",
    "local_need",
    "prewarm",
    "repo_budget",
    "select_repo_context",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT2 = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]+")
"""Identifiers of two characters or more (one-letter names say nothing about a snippet)."""
_ATTR = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?:\.|::|->)\s*([A-Za-z_][A-Za-z0-9_]*)")

_STOPWORDS = frozenset(
    [
        "self",
        "this",
        "cls",
        "def",
        "class",
        "return",
        "if",
        "else",
        "elif",
        "for",
        "while",
        "in",
        "is",
        "not",
        "and",
        "or",
        "None",
        "True",
        "False",
        "import",
        "from",
        "as",
        "pass",
        "let",
        "const",
        "var",
        "function",
        "new",
        "null",
        "undefined",
        "true",
        "false",
        "int",
        "str",
        "void",
        "public",
        "private",
        "protected",
        "static",
        "final",
        "fn",
        "pub",
        "use",
        "mod",
        "struct",
        "impl",
        "match",
        "type",
        "func",
        "go",
        "package",
        "include",
        "define",
        "auto",
        "char",
        "float",
        "double",
        "bool",
        "long",
        "unsigned",
        "signed",
        "try",
        "except",
        "catch",
        "finally",
        "raise",
        "throw",
        "throws",
        "with",
        "yield",
        "await",
        "async",
        "lambda",
        "break",
        "continue",
    ]
)


class RepoView(PathView, Protocol):
    """What snippet selection reads from the index (``WorkspaceIndex`` implements it)."""

    def refresh(self) -> None:
        """Bring open documents' tags up to date before a selection."""
        ...

    def display_path(self, path: str) -> str | None:
        """Display path of an absolute path, or None when outside the workspace."""
        ...

    def entry_tags(self, display: str) -> FileTags | None:
        """Tags of an indexed file."""
        ...

    def lines(self, display: str) -> list[str] | None:
        """Text of an indexed file as lines (an open buffer wins)."""
        ...

    def open_documents(self) -> list[str]:
        """Display paths of the open documents."""
        ...

    def file_version(self, display: str) -> tuple[int, int, int] | None:
        """A key that changes whenever the file's text changes (disk or buffer)."""
        ...

    @property
    def paths_generation(self) -> int:
        """A counter that changes whenever a file is added or removed."""
        ...


@dataclass(frozen=True, slots=True)
class RankOptions:
    """Knobs of snippet selection (the defaults are what the benchmark measured)."""

    window_before: int = 40
    """Lines above the cursor whose identifiers count as "near the cursor"."""
    window_after: int = 10
    block: int = 8
    """The window is anchored to the cursor row rounded down to this many lines."""
    body_lines: int = 6
    """Body lines shown under a definition's signature and docstring."""
    class_lines: int = 24
    """Most lines of a class shown (fields and member signatures)."""
    small_file_share: float = 0.25
    """An imported file up to this share of the budget goes in whole."""
    chunk_lines: int = 16
    max_chunks: int = 4
    min_similarity: float = 0.12
    max_similarity_files: int = 12
    max_similarity_file_chars: int = 64_000
    """Larger files are not searched for similar chunks (scanning them costs too much)."""
    repeat_threshold: float = 0.5
    """Snippets whose non-blank lines are more than this share in the current file are dropped."""
    max_examples: int = 4
    """Most usage examples (lines of other files that use a name the current file imports
    but does not use yet)."""
    examples_per_name: int = 2
    example_lines: int = 6
    """Most lines of a usage example: the statement that uses the name, whole."""


DEFAULT_OPTIONS = RankOptions()


LOCAL_NEED_QUANTUM = 128
"""The local window's need is rounded up to this many tokens, so that typing does not
change the repository budget (and with it the repository block) at every keystroke."""


def repo_budget(
    prompt_budget: int,
    share: float = 0.4,
    min_local: int = 256,
    *,
    local_need: int | None = None,
) -> int:
    """Tokens for repository context out of ``prompt_budget``.

    Repository context gets ``share`` of the budget; the local window keeps at least
    ``min_local`` tokens (or everything, for tiny budgets). When ``local_need`` — the
    tokens of the whole current file — is given and the file needs less than the rest,
    repository context also gets what the file leaves unused (the need rounded up to
    :data:`LOCAL_NEED_QUANTUM`). The reverse flow, the local window taking what repository
    context leaves unused, is the caller's: it sizes the window after the selection.
    """
    if prompt_budget <= min_local:
        return 0
    base = max(0, min(int(prompt_budget * share), prompt_budget - min_local))
    if local_need is None or share <= 0:
        return base
    need = -(-max(1, local_need) // LOCAL_NEED_QUANTUM) * LOCAL_NEED_QUANTUM
    return max(base, prompt_budget - need)


def local_need(text: str, prompt_budget: int, count_tokens: Callable[[str], int]) -> int | None:
    """Tokens the whole current file takes, for :func:`repo_budget`'s ``local_need``.

    Counted line by line through the pipeline's memo (the local window counts the same
    lines), so a keystroke re-counts one line; within 2% of counting the text at once.
    None when the file cannot fit the budget anyway (no need to count it).
    """
    if len(text) > prompt_budget * _MAX_CHARS_PER_TOKEN:
        return None
    return sum(cached_count(count_tokens, line) for line in text.splitlines(keepends=True))


@dataclass(frozen=True, slots=True)
class _Snippet:
    path: str
    start: int
    end: int
    text: str
    group: int
    """0 definitions, 1 imported files, 2 similar chunks."""
    score: float
    whole: bool = False
    pieces: tuple[tuple[int, int, str], ...] = ()
    """For an outline: one (first line, last line, text) per definition header."""
    compact: str = ""
    """A definition's signature alone: chosen first so that every needed definition gets
    in, then upgraded to ``text`` while the budget lasts."""


# --- the current file ------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _current_imports(
    text: str, language: str | None, rows: tuple[int, int]
) -> tuple[ImportRef, ...]:
    """Imports of the current buffer when no tree is at hand (cached by the text)."""
    tree = parse(text, language)
    return imports_from_tree(tree.root_node, language, rows) if tree is not None else ()


_RESOLVED: OrderedDict[tuple[str, str | None, ImportRef, int], tuple[ResolvedImport, ...]] = (
    OrderedDict()
)
_RESOLVED_MAX = 8192
_RESOLVED_LOCK = threading.Lock()


def _resolve(
    index: RepoView, current: str, language: str | None, imports: tuple[ImportRef, ...]
) -> list[ResolvedImport]:
    """``resolve_imports``, remembered per import until a file is added or removed.

    Resolution only asks which paths exist, so edits do not invalidate it. A file with a
    hundred imports cost up to 100 ms to resolve from scratch; a keystroke or a new
    cursor position now resolves nothing again.
    """
    generation = index.paths_generation
    out: list[ResolvedImport] = []
    for ref in imports:
        # Keyed without the line: a line inserted above the imports changes nothing.
        key = (current, language, replace(ref, line=0), generation)
        with _RESOLVED_LOCK:
            found = _RESOLVED.get(key)
        if found is None:
            found = tuple(resolve_imports(index, current, language, (ref,)))
            with _RESOLVED_LOCK:
                _RESOLVED[key] = found
                while len(_RESOLVED) > _RESOLVED_MAX:
                    _RESOLVED.popitem(last=False)
        out.extend(item if item.ref == ref else replace(item, ref=ref) for item in found)
    return out


@functools.lru_cache(maxsize=8)
def _identifiers_cached(text: str) -> frozenset[str]:
    """Identifiers of a text that stays the same between keystrokes (outside the window)."""
    return frozenset(_identifiers(text))


def _identifiers(text: str) -> set[str]:
    found = set(_IDENT2.findall(text))
    found -= _STOPWORDS
    return found


def _window_rows(row: int, n_lines: int, opts: RankOptions) -> tuple[int, int]:
    """First row and end row (exclusive) of the block-anchored window around ``row``."""
    anchor = row - row % max(1, opts.block)
    return max(0, anchor - opts.window_before), min(
        n_lines, anchor + opts.block + opts.window_after
    )


def _import_rows(lines: list[str], starts: set[int]) -> set[int]:
    """Rows of the import statements that start at ``starts``, continuation lines included
    (``from x import (`` … ``)``, ``import {`` … ``} from``, Go's ``import (`` … ``)``)."""
    rows: set[int] = set()
    for start in starts:
        depth = 0
        row = start
        while row < len(lines) and row - start < 200:
            rows.add(row)
            text = lines[row]
            depth += text.count("(") + text.count("{") - text.count(")") - text.count("}")
            if depth <= 0:
                break
            row += 1
    return rows


def _window(lines: list[str], row: int, opts: RankOptions) -> tuple[str, str]:
    """(Window text without the cursor line, the cursor line), the window block-anchored."""
    top, bottom = _window_rows(row, len(lines), opts)
    window = [line for i, line in enumerate(lines[top:bottom], top) if i != row]
    return "\n".join(window), lines[row] if 0 <= row < len(lines) else ""


# --- candidates ------------------------------------------------------------------------


def _stub(display: str) -> str:
    """The body that stands for left-out code in a stub of this file's language.

    A signature with nothing under it (``def f(x):``, ``f(x) {`` straight followed by the
    next header) is broken code the model may imitate; Python's ``def f(x): ...`` and a
    brace language's ``f(x) { /* ... */ }`` are whole definitions. Other languages'
    outlines keep their headers as they are.
    """
    spec = spec_for(language_for(None, display))
    return spec.stub if spec is not None else ""


def _is_ecma(path: str) -> bool:
    """Whether ``path`` is JavaScript or TypeScript (default exports, CommonJS)."""
    spec = spec_for(language_for(None, path))
    return spec is not None and spec.imports == "ecma"


def _definition_text(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], opts: RankOptions, stub: str = ""
) -> str:
    if tag.kind == "class":
        return _class_text(lines, tag, tags, opts.class_lines, stub)
    text = render_definition(lines, tag, opts.body_lines, stub)
    # ``const webidl = {}`` followed by ``webidl.brandCheck = function (…)``: the object is
    # its members; show their signatures as a class's are.
    members = _members_outline(lines, tag, tags, opts.class_lines, stub)
    if members:
        text = f"{text}\n\n{members}" if text else members
    return text


def _members(tag: Tag, tags: tuple[Tag, ...]) -> list[Tag]:
    """Members assigned to a constant's object after its definition (``X.m = function``;
    only JavaScript / TypeScript constants have them)."""
    if tag.kind != "constant":
        return []
    return [t for t in tags if t.parent == tag.name and t.line > tag.end]


def _definition_end(tag: Tag, tags: tuple[Tag, ...]) -> int:
    """Last line a definition's text stands for: its members' too (they are shown)."""
    return max((t.end for t in _members(tag, tags)), default=tag.end)


def _members_outline(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], max_lines: int, stub: str
) -> str:
    """Signatures of the members assigned to ``tag``'s object after its definition, up to
    ``max_lines`` lines (whole signatures; a ``...`` line says when some were left out)."""
    members = _members(tag, tags)
    out: list[str] = []
    for member in members:
        text = outline(lines, (member,), stub=stub)
        size = text.count("\n") + 1
        if out and len(out) + size > max_lines:
            out.extend(cut_ending(lines, "", -1, stub))  # (top-level: no closing line)
            break
        out.extend(text.split("\n"))
    return "\n".join(out)


def _class_text(
    lines: list[str], tag: Tag, tags: tuple[Tag, ...], max_lines: int, stub: str = ""
) -> str:
    """A class with its fields and its members' signatures (member bodies left out).

    With ``stub`` (see :func:`_stub`), the class reads as a stub: each member's signature
    gets ``stub`` as its body when that is left out (a Python signature is joined onto
    one line first), statements spanning several lines (``__slots__ = (`` …) are left
    out — a cut one is not code — and a brace class keeps its closing ``}``. The
    ``max_lines`` cap falls between members, never inside a signature.
    """
    skip: set[int] = set()
    stubbed: set[int] = set()
    headers: dict[int, int] = {}
    for member in tags:
        if member.line > tag.header_end and member.end <= tag.end and member is not tag:
            headers[member.line] = member.header_end
            # (A docstring under the header; a brace language's doc comment is above it.)
            short_doc = (
                member.doc_start > member.header_end and member.doc_end - member.doc_start < 3
            )
            for row in range(member.header_end + 1, member.end + 1):
                if not (short_doc and member.doc_start <= row <= member.doc_end):
                    skip.add(row)
            if stub and not short_doc and member.end > member.header_end:
                stubbed.add(member.header_end)
    start = tag.doc_start if 0 <= tag.doc_start < tag.line else tag.line
    out: list[str] = []
    last_end = min(tag.end, len(lines) - 1)
    row = start - 1
    while row < last_end:
        row += 1
        if row in skip:
            continue
        line = lines[row]
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        entry = [line]
        header_end = headers.get(row)
        if stub and header_end is not None and header_end > row:
            header = lines[row : header_end + 1]
            entry = join_header(header) if stub == PYTHON_STUB else header
            row = header_end
        elif stub and header_end is None and row > tag.header_end and opens_bracket(line):
            first = row  # a statement that goes on below: skip all of it
            while row < last_end and opens_bracket("\n".join(lines[first : row + 1])):
                row += 1
            continue
        if len(out) + len(entry) > max_lines:
            out.extend(
                cut_ending(lines, body_indent(lines, tag.header_end + 1, last_end), tag.end, stub)
            )
            break
        if row in stubbed:
            entry[-1] = close_header(entry[-1], stub)
        out.extend(entry)
    return "\n".join(out).rstrip()


def _find_tag(tags: tuple[Tag, ...], name: str, parent: str | None = None) -> Tag | None:
    for tag in tags:
        if tag.name == name and tag.parent == parent:
            return tag
    return None


def _mostly_in(text: str, haystack: set[str], threshold: float) -> bool:
    lines = [line.strip() for line in text.split("\n") if len(line.strip()) > 3]
    if not lines:
        return True
    repeated = sum(1 for line in lines if line in haystack)
    return repeated / len(lines) > threshold


@dataclass(frozen=True, slots=True)
class _Chunks:
    """A file's identifiers by half-chunk: chunk ``k`` is halves ``k`` and ``k + 1``.

    Chunks overlap by half; keeping the halves (each line scanned once) and the chunks'
    sizes is much cheaper than a set per chunk, and enough for Jaccard similarity.
    """

    step: int
    """Lines per half."""
    halves: tuple[frozenset[str], ...]
    sizes: tuple[int, ...]
    """Distinct identifiers of each chunk."""


def _chunks(lines: list[str], size: int) -> _Chunks:
    step = max(1, size // 2)
    halves = tuple(
        frozenset(_identifiers("\n".join(lines[start : start + step])))
        for start in range(0, len(lines), step)
    )
    if len(halves) < 2:
        return _Chunks(step, halves, tuple(len(h) for h in halves))
    sizes = tuple(len(h) + len(n) - len(h & n) for h, n in itertools.pairwise(halves))
    return _Chunks(step, halves, sizes)


_CHUNK_CACHE: OrderedDict[tuple[str, tuple[int, int, int], int], _Chunks] = OrderedDict()
_CHUNK_CACHE_MAX = 512
_CHUNK_LOCK = threading.Lock()


def _cached_chunks(index: RepoView, display: str, lines: list[str], size: int) -> _Chunks:
    """Chunks of one file, cached by the file's version (disk stamp or buffer edit count)."""
    version = index.file_version(display)
    if version is None:
        return _chunks(lines, size)
    key = (display, version, size)
    with _CHUNK_LOCK:
        found = _CHUNK_CACHE.get(key)
        if found is not None:
            _CHUNK_CACHE.move_to_end(key)
            return found
    found = _chunks(lines, size)
    with _CHUNK_LOCK:
        _CHUNK_CACHE[key] = found
        while len(_CHUNK_CACHE) > _CHUNK_CACHE_MAX:
            _CHUNK_CACHE.popitem(last=False)
    return found


class RepoFiles(list[tuple[str, str]]):
    """The chosen ``(display path, content)`` pairs, and the current file's display path.

    A list, so it goes wherever repository files do; ``current`` is how the prompt names
    the current file after them (relative to its workspace root, like the others).
    """

    current: str | None = None


def select_repo_context(
    index: RepoView | None,
    path: str | None,
    text: str,
    offset: int,
    language: str | None,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    options: RankOptions = DEFAULT_OPTIONS,
    *,
    tree: Tree | None = None,
) -> list[tuple[str, str]]:
    """Repository snippets for a completion at ``offset`` in ``text``, in dependency order.

    Args:
        index: The workspace index (None: no repository context).
        path: Absolute path of the current file (None for an untitled buffer).
        text: The current buffer's text (it wins over the file on disk).
        offset: Cursor offset into ``text``.
        language: LSP languageId or grammar name of the current file.
        budget_tokens: Most tokens the returned files may take, path lines included.
        count_tokens: The model's tokenizer (number of tokens of a text).
        options: Selection knobs.
        tree: The current buffer's syntax tree, when the caller keeps one up to date
            (saves parsing the whole buffer at every request).

    Returns:
        ``(display path, content)`` pairs, dependencies first and the most specific last;
        empty when nothing useful was found or the budget is too small.
    """
    if index is None or budget_tokens <= 0:
        return []
    index.refresh()
    grammar = language_for(language, path)
    current = index.display_path(path) if path else None
    if current is None:
        current = posixpath.basename(path) if path else "untitled"
    offset = max(0, min(offset, len(text)))
    lines = text.split("\n")
    row = text.count("\n", 0, offset)
    window_text, cursor_line = _window(lines, row, options)
    local_lines = {line.strip() for line in lines if len(line.strip()) > 3}

    top, bottom = _window_rows(row, len(lines), options)
    if tree is not None and grammar is not None:
        imports = imports_from_tree(tree.root_node, grammar, (top, bottom))
    else:
        imports = _current_imports(text, grammar, (top, bottom))
    resolved = _resolve(index, current, grammar, imports)
    import_lines = _import_rows(lines, {ref.line for ref in imports})
    # Identifiers used in the file (imports left out). The part outside the cursor window
    # does not change while typing, so its (large) scan is cached.
    outside = "\n".join(
        line for i, line in enumerate(lines) if (i < top or i >= bottom) and i not in import_lines
    )
    window_code = [
        (i, line) for i, line in enumerate(lines[top:bottom], top) if i not in import_lines
    ]
    inside = "\n".join(line for _, line in window_code)
    # Names used above the cursor. One imported but not used yet is the likeliest to be
    # typed next (used further down or not at all).
    above = "\n".join(line for i, line in enumerate(lines[:top]) if i not in import_lines)
    above_inside = "\n".join(line for i, line in window_code if i < row)
    # (The cursor line is left out: typing on it must not change the block.)
    used_above = set(_identifiers_cached(above)) | _identifiers(above_inside)
    body_text = outside + "\n" + inside
    # Names in import statements are not uses: an import in the window does not make
    # its names "needed near the cursor".
    near = _identifiers(inside) | _identifiers(cursor_line)
    attrs_near: dict[str, set[str]] = {}
    attrs_any: dict[str, set[str]] = {}
    for source, target in (
        (window_text + "\n" + cursor_line, attrs_near),
        (body_text, attrs_any),
    ):
        for base, attr in _ATTR.findall(source):
            target.setdefault(base, set()).add(attr)

    candidates: list[_Snippet] = []
    seen_defs: set[tuple[str, int]] = set()
    target_order: dict[str, int] = {}
    for order, item in enumerate(resolved):
        target_order.setdefault(item.path, order)
        candidates.extend(
            _definition_candidates(
                index, item, near, used_above, attrs_near, attrs_any, seen_defs, options
            )
        )

    budget_chars = budget_tokens * 3
    for display, order in sorted(target_order.items(), key=lambda kv: kv[1]):
        snippet = _file_candidate(index, display, order, budget_chars, options)
        if snippet is not None:
            candidates.append(snippet)

    unused = [
        name
        for item in resolved
        if item.symbol is not None
        and (name := item.ref.alias or item.symbol) not in used_above
        and name != "default"  # ``export { default } from``: no name to look for
    ]
    if unused:
        candidates.extend(
            _usage_examples(
                index, current, tuple(dict.fromkeys(unused)), list(target_order), options
            )
        )
    # Import rows say nothing about the code to write: other files' import headers are
    # what they match, and the import resolution above covers what they name.
    query = _identifiers("\n".join(line for i, line in window_code if i != row))
    candidates.extend(_similar_chunks(index, current, query, list(target_order), options))

    chosen = _fill_budget(candidates, budget_tokens, local_lines, options)
    files = _render(index, chosen, target_order, grammar) if chosen else []
    # The exact count of what was chosen: drop the least important snippets until it fits.
    while files and _exact_cost(files, count_tokens) > budget_tokens:
        chosen.pop()
        files = _render(index, chosen, target_order, grammar) if chosen else []
    out = RepoFiles(files)
    out.current = current
    return out


def prewarm(
    index: RepoView | None,
    path: str | None,
    text: str,
    language: str | None,
    budget_tokens: int | None,
    options: RankOptions = DEFAULT_OPTIONS,
    *,
    tree: Tree | None = None,
) -> int:
    """Do the work of a document's first selection that does not depend on the cursor.

    Meant for when a document is opened, off the request path: it resolves all the
    document's imports (function-local ones too), locates the definition of every name it
    imports (and of every ``module.member`` it uses), builds the imported files' whole or
    outline candidates and their own imports, and scans the files the similarity search
    would read. All of it lands in the caches :func:`select_repo_context` reads, so the
    first completion in a file costs about what a later one does. ``budget_tokens`` is
    the repository budget requests will use (the file candidates depend on it); None
    when it is not known yet (no model loaded): those are left for the first request.

    Returns:
        The number of definitions located (0 when there is nothing to do).
    """
    if index is None or not path or (budget_tokens is not None and budget_tokens <= 0):
        return 0
    index.refresh()
    grammar = language_for(language, path)
    current = index.display_path(path)
    if current is None or grammar is None:
        return 0
    rows = (0, text.count("\n") + 1)
    if tree is not None:
        imports = imports_from_tree(tree.root_node, grammar, rows)
    else:
        imports = _current_imports(text, grammar, rows)
    resolved = _resolve(index, current, grammar, imports)
    names = {ref.alias or ref.name or ref.binding for ref in imports}
    attrs: dict[str, set[str]] = {}
    for base, attr in _ATTR.findall(text):
        attrs.setdefault(base, set()).add(attr)
    located = 0
    seen: set[tuple[str, int]] = set()
    targets: list[str] = []
    for item in resolved:
        if item.path not in targets:
            targets.append(item.path)
        located += len(
            _definition_candidates(index, item, names, set(), attrs, attrs, seen, options)
        )
    for order, display in enumerate(targets):
        if budget_tokens is not None:
            _file_candidate(index, display, order, budget_tokens * 3, options)
        _imports_of(index, display)
    for display, lines in _similarity_files(index, current, targets, options):
        _cached_chunks(index, display, lines, options.chunk_lines)
    return located


def _definition_candidates(
    index: RepoView,
    item: ResolvedImport,
    near: set[str],
    used_above: set[str],
    attrs_near: dict[str, set[str]],
    attrs_any: dict[str, set[str]],
    seen: set[tuple[str, int]],
    opts: RankOptions,
) -> list[_Snippet]:
    """Definitions in ``item.path`` that the current file imports and needs."""
    tags_info = index.entry_tags(item.path)
    js = _is_ecma(item.path)
    # (A file of re-exports alone — an ``index.ts``, a package ``__init__.py`` — has no
    # tags of its own: its imports lead to the definitions.)
    if tags_info is None or not (tags_info.tags or tags_info.imports):
        return []
    tags = tags_info.tags
    binding = item.ref.binding
    wanted: list[tuple[str, float]] = []
    if item.symbol is not None:
        local = item.ref.alias or item.symbol
        if local in near:
            score = 3.0
        elif local not in used_above:
            score = 2.5  # imported but not used above the cursor: likely what comes next
        else:
            score = 1.0
        wanted.append((item.symbol, score))
        if item.symbol == "default" and js:
            # A default import (or a CommonJS ``require``) binds an object as often as a
            # class: its members count as a whole module's do (``_locate`` finds them).
            near_attrs = attrs_near.get(local, set())
            for attr in sorted(near_attrs):
                wanted.append((f"default.{attr}", 3.0))
            for attr in sorted(attrs_any.get(local, set()) - near_attrs):
                wanted.append((f"default.{attr}", 0.8))
        else:
            # Members of an imported class used as ``Name.member`` near the cursor.
            for attr in attrs_near.get(local, ()):
                wanted.append((f"{item.symbol}.{attr}", 2.0))
    else:
        for attr in sorted(attrs_near.get(binding, ())):
            wanted.append((attr, 3.0))
        for attr in sorted(attrs_any.get(binding, set()) - attrs_near.get(binding, set())):
            wanted.append((attr, 0.8))
        if item.ref.name == "*" or item.ref.kind == "module":
            for tag in tags:
                if tag.parent is None and tag.name in near:
                    wanted.append((tag.name, 2.8))
    out: list[_Snippet] = []
    version = index.file_version(item.path)
    for name, score in wanted:
        parent, _, member = name.rpartition(".")
        found = _cached_definition(index, item.path, version, tags_info, member, parent, opts)
        if found is None:
            continue
        path, start, end, body, compact = found
        if (path, start) in seen:
            continue
        seen.add((path, start))
        out.append(_Snippet(path, start, end, body, 0, score, compact=compact))
    return out


_Definition = tuple[str, int, int, str, str]
"""(path, first line, last line, text, compact text) of a located definition."""
_DEFINITIONS: OrderedDict[
    tuple[str, tuple[int, int, int], str, str, RankOptions],
    tuple[_Definition | None, tuple[int, int, int] | None],
] = OrderedDict()
_DEFINITIONS_MAX = 2048
_DEFINITIONS_LOCK = threading.Lock()


def _cached_definition(
    index: RepoView,
    path: str,
    version: tuple[int, int, int] | None,
    info: FileTags,
    name: str,
    parent: str,
    opts: RankOptions,
) -> _Definition | None:
    """Where ``name`` (a member of ``parent`` when not empty) is defined, and its texts.

    Remembered by the importing file's version and checked against the version of the
    file it was found in (re-exports lead elsewhere): the same definitions are wanted at
    every keystroke, and following re-exports and cutting texts cost more than the rest.
    """
    key = (path, version, name, parent, opts) if version is not None else None
    if key is not None:
        with _DEFINITIONS_LOCK:
            hit = _DEFINITIONS.get(key)
        if hit is not None:
            found, where = hit
            if found is None or index.file_version(found[0]) == where:
                return found
    located = _locate(index, path, info, name, parent or None)
    found = None
    where = None
    if located is not None:
        at, tag, file_tags = located
        where = index.file_version(at)
        lines = index.lines(at)
        if lines is not None:
            stub = _stub(at)
            body = _definition_text(lines, tag, file_tags, opts, stub)
            if body:
                compact = _compact_text(lines, tag, file_tags, stub) or body
                found = (at, tag.line, _definition_end(tag, file_tags), body, compact)
    if key is not None:
        with _DEFINITIONS_LOCK:
            _DEFINITIONS[key] = (found, where)
            while len(_DEFINITIONS) > _DEFINITIONS_MAX:
                _DEFINITIONS.popitem(last=False)
    return found


def _compact_text(lines: list[str], tag: Tag, tags: tuple[Tag, ...], stub: str = "") -> str:
    """Signature (and one-line docstring); a class adds its constructor's signature."""
    shown = [tag]
    if tag.kind == "class":
        shown += [
            t
            for t in tags
            if t.parent == tag.name
            and t.name in ("__init__", "constructor", "new")
            and tag.line < t.line <= tag.end
        ][:1]
    # Whole signatures (up to 12 lines): a cut parameter list reads as broken code.
    return outline(lines, tuple(shown), max_header_lines=12, stub=stub)


def _locate(
    index: RepoView, path: str, info: FileTags, name: str, parent: str | None, hops: int = 2
) -> tuple[str, Tag, tuple[Tag, ...]] | None:
    """The definition of ``name`` (a member of ``parent`` when given) in ``path``.

    Follows re-exports — ``from .x import name`` in a package's ``__init__``, ``export
    { name } from`` and ``export * from`` in an ``index.ts`` — up to ``hops`` files
    further, renaming through ``as`` clauses. JavaScript / TypeScript: ``default`` is the
    file's default export (``export default class Name``, ``module.exports = Name``), an
    export alias (``export { Name as Other }``) leads to its local name, and the members
    of a default export that names no definition (``module.exports = { a, b }``,
    ``exports.a = …``) are the file's top-level definitions.
    """
    language = language_for(None, path)
    js = _is_ecma(path)
    if info.exports:
        local = dict(info.exports)
        if parent is None:
            name = local.get(name, name)
        else:
            parent = local.get(parent, parent)
    tag = _find_tag(info.tags, name, parent)
    if tag is None and js and parent == "default":
        tag = _find_tag(info.tags, name, None)
    if tag is not None:
        return path, tag, info.tags
    if hops <= 0 or not info.imports:
        return None
    head = parent or name
    # ``export * from`` passes on every name but the default export.
    star = not (js and head == "default")
    refs = tuple(ref for ref in info.imports if ref.binding == head or (star and ref.name == "*"))
    if not refs:
        return None
    for item in resolve_imports(index, path, language, refs):
        target = index.entry_tags(item.path)
        if target is None or (item.symbol is None and item.ref.name != "*"):
            continue
        real = item.symbol if item.symbol and item.ref.name != "*" else head
        if parent is None:
            found = _locate(index, item.path, target, real, None, hops - 1)
        else:
            found = _locate(index, item.path, target, name, real, hops - 1)
        if found is not None:
            return found
    return None


_FILE_CACHE: dict[tuple[str, tuple[int, int, int], int], _Snippet | None] = {}


def _file_candidate(
    index: RepoView, display: str, order: int, budget_chars: int, opts: RankOptions
) -> _Snippet | None:
    """An imported file whole (when small) or its outline (cached by file version)."""
    version = index.file_version(display)
    lines = index.lines(display) if version is None else None
    if version is not None:
        key = (display, version, budget_chars)
        if key not in _FILE_CACHE:
            if len(_FILE_CACHE) > 1024:
                _FILE_CACHE.clear()
            _FILE_CACHE[key] = _file_candidate_uncached(index, display, budget_chars, opts)
        found = _FILE_CACHE[key]
    else:
        found = _file_candidate_uncached(index, display, budget_chars, opts, lines)
    if found is None:
        return None
    factor = 1.0 if found.whole else 0.5
    return replace(found, score=factor / (1 + order))


def _file_candidate_uncached(
    index: RepoView,
    display: str,
    budget_chars: int,
    opts: RankOptions,
    lines: list[str] | None = None,
) -> _Snippet | None:
    lines = lines if lines is not None else index.lines(display)
    if lines is None:
        return None
    size = sum(map(len, lines)) + len(lines)
    score = 1.0
    if size <= budget_chars * opts.small_file_share:
        return _Snippet(display, 0, len(lines) - 1, "\n".join(lines).rstrip("\n"), 1, score, True)
    info = index.entry_tags(display)
    if info is None or not info.tags:
        return None
    shown: list[Tag] = []
    last_row = -1
    for tag in info.tags:
        if (tag.parent is not None and tag.kind != "method") or tag.line <= last_row:
            continue
        if tag.kind == "constant" and (tag.end > tag.line or tag.name.startswith("__")):
            continue  # a long literal or a dunder shows nothing useful in an outline
        shown.append(tag)
        last_row = min(tag.header_end, tag.line + 1)
    stub = _stub(display)
    pieces = []
    # An outline longer than the whole budget can never be chosen: stop building it.
    most = budget_chars // 3 * _MAX_CHARS_PER_TOKEN
    total = 0
    for i, tag in enumerate(shown):
        # A class whose methods follow in the outline has a body already.
        after = shown[i + 1] if i + 1 < len(shown) else None  # ``shown`` is in line order
        nested = after is not None and after.line > tag.header_end and after.end <= tag.end
        text = outline(lines, (tag,), max_header_lines=2, stub="" if nested else stub)
        if text:
            pieces.append((tag.line, tag.header_end, text))
            total += len(text) + 1
            if total > most:
                return None
        closer = closing_line(lines, tag.end) if nested and stub == BRACE_STUB else None
        if closer is not None:
            pieces.append((tag.end, tag.end, closer))  # the class's own ``}``
    if not pieces:
        return None
    text = "\n".join(piece[2] for piece in pieces)
    return _Snippet(display, 0, len(lines) - 1, text, 1, score * 0.5, False, tuple(pieces))


_Example = tuple[str, int, int]
"""(name, first row, last row) of one usage example."""
_EXAMPLES: OrderedDict[tuple[str, tuple[int, int, int], tuple[str, ...]], tuple[_Example, ...]] = (
    OrderedDict()
)
_EXAMPLES_MAX = 1024
_EXAMPLES_LOCK = threading.Lock()
_NOT_A_USE = re.compile(
    r"\s*(?:#|//|/?\*|from\s|import\s|export\s+(?:\{|\*|default\s+\w+\s*;?\s*$)"
    r"|module\.exports\b|exports\.\w+\s*=\s*\w+\s*;?\s*$|[A-Za-z_]\w*\s*=\s*None\b"
    r"|(?:const|let|var)\s[^=]*=\s*require\()"
)
"""Lines that mention a name without showing how it is used: comments, imports (and
``require``), exports (``module.exports = X`` at the end of a sibling is copied, not
learnt from), ``Name = None`` fallbacks."""
_DEFINES = re.compile(r"\s*(?:async\s+)?(?:def|class|function|interface|type)\s+(\w+)")
"""A line that defines a name (a definition of the imported name itself is no use)."""
_DECLARES = re.compile(r"\s*(?:export\s+)?(?:const|let|var)\s+(\w+)\s*[=:;]")
"""A JavaScript / TypeScript variable declaration (``const webidl = {}``): a definition too."""
_DEFINES_MEMBER = re.compile(
    r"\s*(\w+)(?:\.\w+)+\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>)"
)
"""``webidl.check = function (…)``: a member defined, not the name used."""
_GOES_ON = ("(", "[", "{", ",", "\\")
"""Line endings after which a statement goes on on the next line."""


def _usage_examples(
    index: RepoView,
    current: str,
    names: tuple[str, ...],
    imported: list[str],
    opts: RankOptions,
) -> list[_Snippet]:
    """How other files use the names the current file imports but does not use yet.

    A name imported and not used is the likeliest to be typed next, and a sibling file
    that uses it (``class JsonConverter(Converter):`` beside ``msgpack.py``;
    ``app: ASGIApp,`` in every middleware) shows the model the exact shape of that use,
    which a definition does not. Searched in the files the similarity search reads (the
    current folder, open documents, imported files), the current folder first.
    """
    if opts.max_examples <= 0:
        return []
    # Files the current one does not import first: the imported ones already show the
    # names in their definitions.
    searched = _similarity_files(index, current, imported, opts)
    files = sorted(searched, key=lambda f: f[0] in imported)  # stable: order kept otherwise
    out: list[_Snippet] = []
    per_name: dict[str, int] = {}
    for display, lines in files:
        for name, start, end in _file_examples(index, display, lines, names, opts):
            if per_name.get(name, 0) >= opts.examples_per_name:
                continue
            per_name[name] = per_name.get(name, 0) + 1
            text = "\n".join(lines[start : end + 1])
            stub = _stub(display)
            if stub and _DEFINES.match(lines[start]):
                text = close_header(text, stub)  # a class or def header: body left out
            # Below definitions (2.5-3), above whole files and outlines (<= 1).
            out.append(_Snippet(display, start, end, text, 1, 2.0 - 0.1 * len(out)))
            if len(out) >= opts.max_examples:
                return out
    return out


def _file_examples(
    index: RepoView, display: str, lines: list[str], names: tuple[str, ...], opts: RankOptions
) -> tuple[_Example, ...]:
    """``(name, first row, last row)`` of the first use of each of ``names`` in a file
    (cached by the file's version)."""
    version = index.file_version(display)
    key = (display, version, names) if version is not None else None
    if key is not None:
        with _EXAMPLES_LOCK:
            found = _EXAMPLES.get(key)
        if found is not None:
            return found
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    # The file's own import statements, continuation lines included: a name listed in
    # ``from . import (`` … ``)`` is imported there, not used.
    info = index.entry_tags(display)
    imports = _import_rows(lines, {ref.line for ref in info.imports}) if info else set()
    seen: set[str] = set()
    examples: list[_Example] = []
    for row, line in enumerate(lines):
        match = pattern.search(line)
        if match is None or match.group(1) in seen or _NOT_A_USE.match(line):
            continue
        if row in imports:
            continue
        defines = _DEFINES.match(line) or _DECLARES.match(line) or _DEFINES_MEMBER.match(line)
        if defines is not None and defines.group(1) == match.group(1):
            continue  # another definition of the name, not a use
        if match.start() > 0 and line[match.start() - 1] == ".":
            continue  # ``x.name``: an attribute that shares the name
        head = line[: match.start()]
        if head.lstrip()[:1] in ("'", '"', "`") or any(head.count(q) % 2 for q in "'\"`"):
            continue  # in a string or a docstring
        # The whole statement: from where it starts above (``def f(`` over ``app: T,``)
        # to where its brackets close below.
        first = row
        while (
            first > 0
            and row - first < 3
            and first - 1 not in imports
            and lines[first - 1].rstrip().endswith(_GOES_ON)
        ):
            first -= 1
        end = row
        while opens_bracket("\n".join(lines[first : end + 1])) and end + 1 < len(lines):
            if end - first + 1 >= opts.example_lines:
                break
            end += 1
        if opens_bracket("\n".join(lines[first : end + 1])):
            continue  # too long to show whole; a later use may do
        if lines[end].rstrip().endswith(":") and not _DEFINES.match(lines[first]):
            # ``except EndOfStream:`` — show what the block does, not a stub body.
            indent = len(lines[first]) - len(lines[first].lstrip())
            while end + 1 < len(lines) and end - first + 1 < opts.example_lines:
                after = lines[end + 1]
                if after.strip() and len(after) - len(after.lstrip()) <= indent:
                    break
                end += 1
            while end > first and not lines[end].strip():
                end -= 1
        seen.add(match.group(1))
        examples.append((match.group(1), first, end))
        if len(seen) == len(names):
            break
    found = tuple(examples)
    if key is not None:
        with _EXAMPLES_LOCK:
            _EXAMPLES[key] = found
            while len(_EXAMPLES) > _EXAMPLES_MAX:
                _EXAMPLES.popitem(last=False)
    return found


def _similarity_files(
    index: RepoView, current: str, imported: list[str], opts: RankOptions
) -> list[tuple[str, list[str]]]:
    """The files searched for similar chunks, with their lines: imported files, open
    documents, then the current file's folder; files too large to scan left out."""
    files: list[str] = []
    for display in [
        *imported,
        *index.open_documents(),
        *sorted(index.files_in_dir(posixpath.dirname(current))),
    ]:
        if display != current and display not in files:
            files.append(display)
        if len(files) >= opts.max_similarity_files:
            break
    out: list[tuple[str, list[str]]] = []
    for display in files:
        version = index.file_version(display)
        if version is not None and version[1] > opts.max_similarity_file_chars:
            continue  # generated or data-like: costly to scan, rarely what the cursor needs
        lines = index.lines(display)
        if lines:
            out.append((display, lines))
    return out


def _similar_chunks(
    index: RepoView, current: str, query: set[str], imported: list[str], opts: RankOptions
) -> list[_Snippet]:
    if not query:
        return []
    scored: list[tuple[float, str, int, int]] = []
    size = len(query)
    for display, lines in _similarity_files(index, current, imported, opts):
        chunks = _cached_chunks(index, display, lines, opts.chunk_lines)
        # Most halves share nothing with the query: test that without building a set.
        shared = [None if query.isdisjoint(half) else half for half in chunks.halves]
        for k, n in enumerate(chunks.sizes):
            a = shared[k]
            b = shared[k + 1] if k + 1 < len(shared) else None
            if a is None and b is None:
                continue
            if a is not None and b is not None:
                inter = len(query & a) + len(query & b) - len(query & a & b)
            else:
                inter = len(query & (a if a is not None else b))
            score = inter / (size + n - inter)
            if score >= opts.min_similarity:
                start = k * chunks.step
                end = min(len(lines), start + 2 * chunks.step) - 1
                scored.append((score, display, start, end))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    out: list[_Snippet] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for score, display, start, end in scored:
        spans = taken.setdefault(display, [])
        if any(start <= e and end >= s for s, e in spans):
            continue
        lines = index.lines(display) or []
        spans.append((start, end))
        out.append(_Snippet(display, start, end, "\n".join(lines[start : end + 1]), 2, score))
        if len(out) >= opts.max_chunks:
            break
    return out


_MAX_CHARS_PER_TOKEN = 8
"""No code tokenizer averages more characters per token: a text longer than this many
characters per remaining token cannot fit, and is skipped without tokenizing it."""
ESTIMATE_CHARS_PER_TOKEN = 3.5
"""Selection estimates a snippet's tokens from its length (Qwen2.5-Coder's tokenizer on
Python: 4.2 characters per token at the median, 2.4 at the 5th percentile); only the
files finally chosen are tokenized, and snippets are dropped until that exact count fits.
Tokenizing every candidate cost more than the rest of the selection on a first request."""


def _estimate(text: str) -> int:
    """Estimated tokens of ``text`` (see :data:`ESTIMATE_CHARS_PER_TOKEN`)."""
    return int(len(text) / ESTIMATE_CHARS_PER_TOKEN) + 1


def _exact_cost(files: list[tuple[str, str]], count_tokens: Callable[[str], int]) -> int:
    """Tokens the rendered files take: path line, content and separator of each.

    Counted through the pipeline's own memo, so its count of the same contents is free.
    """
    return sum(
        cached_count(count_tokens, content) + cached_count(count_tokens, path) + 2
        for path, content in files
    )


def _is_example(snippet: _Snippet) -> bool:
    """A usage example (see :func:`_usage_examples`): lines of a file, in group 1."""
    return snippet.group == 1 and not snippet.whole and not snippet.pieces


def _fill_budget(
    candidates: list[_Snippet],
    budget: int,
    local_lines: set[str],
    opts: RankOptions,
) -> list[_Snippet]:
    """Greedy fill in priority order: group, then score, then a stable tie-break.

    Costs are estimates (:func:`_estimate`); the caller checks the exact count of what
    is chosen. The list is in the order the snippets were taken, so dropping from its
    end drops the least important first.
    """
    count_tokens = _estimate

    def hopeless(text: str) -> bool:
        return len(text) > (budget - used) * _MAX_CHARS_PER_TOKEN

    ordered = sorted(candidates, key=lambda s: (s.group, -s.score, s.path, s.start))
    chosen: list[_Snippet] = []
    used = 0
    files: set[str] = set()
    whole: set[str] = set()

    def path_cost(path: str) -> int:
        return 0 if path in files else count_tokens(path) + 2

    def take(snippet: _Snippet) -> None:
        """Choose ``snippet`` if it fits what is left."""
        nonlocal used
        if hopeless(snippet.text):
            return
        cost = count_tokens(snippet.text) + 2 + path_cost(snippet.path)
        if used + cost <= budget:
            chosen.append(snippet)
            files.add(snippet.path)
            used += cost

    definitions = [s for s in ordered if s.group == 0]
    # Pass 1: every needed definition as a signature; pass 2: full text while it fits.
    for snippet in definitions:
        if not _mostly_in(snippet.text, local_lines, opts.repeat_threshold):
            take(replace(snippet, text=snippet.compact or snippet.text))
    # Usage examples next: a few short lines, and the shape of the likeliest next use.
    for snippet in ordered:
        if _is_example(snippet):
            take(snippet)
    for i, small in enumerate(chosen):
        if small.group != 0:
            continue
        full = next(s for s in definitions if (s.path, s.start) == (small.path, small.start))
        if full.text == small.text or hopeless(full.text):
            continue
        extra = count_tokens(full.text) - count_tokens(small.text)
        if used + extra <= budget:
            chosen[i] = full
            used += extra

    for snippet in ordered:
        if snippet.group == 0 or _is_example(snippet) or snippet.path in whole:
            continue
        if hopeless(snippet.text) and not snippet.whole:
            continue
        if _mostly_in(snippet.text, local_lines, opts.repeat_threshold):
            continue
        if snippet.group == 2 and any(
            c.path == snippet.path and c.start <= snippet.end and snippet.start <= c.end
            for c in chosen
            if not c.whole and not c.pieces
        ):
            continue  # overlaps a definition already shown
        cost = count_tokens(snippet.text) + 2 + path_cost(snippet.path)
        if snippet.whole:
            # The whole file replaces the parts of it already chosen.
            freed = [c for c in chosen if c.path == snippet.path]
            saved = sum(count_tokens(c.text) + 2 for c in freed)
            if used - saved + cost > budget:
                continue
            chosen = [c for c in chosen if c.path != snippet.path]
            used -= saved
            whole.add(snippet.path)
        elif used + cost > budget:
            continue
        chosen.append(snippet)
        files.add(snippet.path)
        used += cost
    return chosen


def _render(
    index: RepoView, chosen: list[_Snippet], target_order: dict[str, int], language: str | None
) -> list[tuple[str, str]]:
    by_file: dict[str, list[_Snippet]] = {}
    for snippet in chosen:
        by_file.setdefault(snippet.path, []).append(snippet)
    # Most relevant last, nearest the current file: the best snippet of each file, by
    # group (definitions first) then score.
    relevance = {
        display: max((-s.group, s.score) for s in snippets) for display, snippets in by_file.items()
    }
    paths = _dependency_order(index, list(by_file), target_order, relevance)
    out: list[tuple[str, str]] = []
    for display in paths:
        snippets = sorted(by_file[display], key=lambda s: (s.start, s.end))
        whole = next((s for s in snippets if s.whole), None)
        if whole is not None:
            out.append((display, whole.text))
            continue
        detailed = [s for s in snippets if not s.pieces]
        # (first row, last row, text, cut out of the file's middle, a fixed-size chunk)
        pieces: list[tuple[int, int, str, bool, bool]] = [
            (s.start, s.end, s.text, s.group != 0, s.group == 2) for s in detailed
        ]
        for snippet in snippets:
            for start, end, text in snippet.pieces:
                if not any(d.start <= start <= d.end for d in detailed):
                    pieces.append((start, end, text, False, False))
        # (Of pieces that start on the same line, the widest is shown: a definition that
        # stands for its members too covers a usage example on its first line.)
        pieces.sort(key=lambda p: (p[0], -p[1]))
        marker = comment_marker(display)
        parts: list[str] = []
        last_end = -1
        last_chunk = False
        for start, end, text, cut, chunk in pieces:
            if start <= last_end:
                continue
            if cut and (parts or start > 0):
                # A chunk cut out of the middle of a file: say that code was left out.
                parts.append(f"{marker} ...")
            elif (
                parts
                and start > last_end + 1
                and parts[-1].strip()
                and text.strip()
                and not text.lstrip().startswith("}")
            ):
                # Definitions that are apart in the file stay apart (as in any real file,
                # ``return x`` is not followed straight by the next ``def``).
                parts.append("")
            parts.append(text)
            last_end = end
            last_chunk = chunk
        if last_chunk and last_end < len(index.lines(display) or ()) - 1:
            # A chunk ends where its line count does, often mid-block. The file goes on:
            # say so, or the model reads a file that stops mid-code (and may write its
            # ending, ``module.exports = AddUser``, into the current file).
            parts.append(f"{marker} ...")
        out.append((display, "\n".join(parts)))
    return out


_IMPORTS_CACHE: dict[tuple[str, tuple[int, int, int], int], frozenset[str]] = {}


def _imports_of(index: RepoView, display: str) -> frozenset[str]:
    """Files an indexed file imports, cached by the file's version."""
    version = index.file_version(display)
    key = (display, version or (0, 0, 0), index.paths_generation)
    found = _IMPORTS_CACHE.get(key) if version is not None else None
    if found is not None:
        return found
    info = index.entry_tags(display)
    targets: frozenset[str] = frozenset()
    if info is not None and info.imports:
        language = language_for(None, display)
        targets = frozenset(r.path for r in _resolve(index, display, language, info.imports))
    if version is not None:
        if len(_IMPORTS_CACHE) >= 4096:
            _IMPORTS_CACHE.pop(next(iter(_IMPORTS_CACHE)))
        _IMPORTS_CACHE[key] = targets
    return targets


def _dependency_order(
    index: RepoView,
    paths: list[str],
    target_order: dict[str, int],
    relevance: dict[str, tuple[int, float]] | None = None,
) -> list[str]:
    """Topological order (imported before importer); among files free to go next, the
    least relevant first (so the most relevant end up nearest the current file), then
    the current file's import order."""
    selected = set(paths)
    deps: dict[str, set[str]] = {}
    for display in paths:
        deps[display] = {p for p in _imports_of(index, display) if p in selected and p != display}

    def rank(display: str) -> tuple[tuple[int, float], int, int, str]:
        order = target_order.get(display)
        return (
            (relevance or {}).get(display, (0, 0.0)),
            0 if order is not None else 1,
            order if order is not None else 0,
            display,
        )

    out: list[str] = []
    placed: set[str] = set()
    remaining = sorted(paths, key=rank)
    while remaining:
        ready = [p for p in remaining if deps[p] <= placed]
        # A cycle: take the first by rank and go on.
        pick = ready[0] if ready else remaining[0]
        out.append(pick)
        placed.add(pick)
        remaining.remove(pick)
    return out
