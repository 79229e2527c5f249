"""Cross-file completion benchmark: does repository context help the model?

From real multi-file code that nobody here wrote — Python (installed packages and the
standard library), TypeScript and JavaScript (the sources of npm packages on this
machine, see :mod:`bench.crossfile_holes`) — it picks *holes*: lines that use a name
defined in another file of the same project and imported into this one, where the name
appears nowhere earlier in the file except in the import. Each project is copied to a
temporary folder, the hole line is removed from the copy on disk, and the server's own pipeline
(:func:`lsp_server.completion.pipeline.complete`, as for an explicit request: trigger,
KV-cache prompt layout, post-processing) completes the line twice with the real model, greedy:

* **file only** — the whole prompt budget goes to the current file;
* **repo** — the workspace is indexed and :class:`RepoContext` fills the
  repository share of the budget; the local window gets what the repository files leave.

It prints exact match and edit similarity of the completed line for both, per project and
per language, plus the repository-context retrieval time. Not a pass/fail test. Holes are
chosen round-robin over the projects, each project's files shuffled with its own seed.
``--memo FILE`` keeps the model's outputs by prompt between runs: a run that changes only
the repository selection re-runs only the prompts that changed.

    .venv/bin/python -m bench.crossfile --holes 60 --memo /tmp/crossfile-memo.json
    .venv/bin/python -m bench.crossfile --languages typescript --holes 40 --show

``--holes`` is per language; ``--languages`` picks them (default: all three).

``--index ROOT`` measures the index instead: a full build of ROOT (vendored folders such
as site-packages included, so that CPython's ``lib/python3.11`` gives 10,000+ files), its
memory, re-indexing one saved file, snippet retrieval latency, and the latency of a
completion while a build runs in the background (the builder pausing while ``busy`` is
set) against completions with no build running.

    .venv/bin/python -m bench.crossfile --index /root/.pyenv/versions/3.11.7/lib/python3.11
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.crossfile_holes import SCRIPT_EXTENSIONS, Hole, find_script_holes
from bench.scoring import edit_similarity
from lsp_server.backends.base import CancelToken, Generation, GenerationRequest, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.completion.pipeline import complete
from lsp_server.core import CompletionRequest, DocumentSnapshot, Prompt
from lsp_server.languages import language_for
from lsp_server.registry import resolve_model
from lsp_server.repo.context import RepoContext, RepoSelection
from lsp_server.repo.imports import resolve_imports
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.repo.tags import extract_tags
from lsp_server.settings import Settings
from lsp_server.syntax import parse

SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
STDLIB = Path(os.__file__).parent
DEFAULT_PROJECTS = [
    *(
        SITE / "site-packages" / name
        for name in (
            "_pytest",
            "pygls",
            "huggingface_hub",
            "click",
            "anyio",
            "h11",
            "starlette",
            "jinja2",
            "requests",
            "fsspec",
            "cattrs",
            "pluggy",
        )
    ),
    *(
        STDLIB / name
        for name in (
            "email",
            "asyncio",
            "importlib",
            "unittest",
            "multiprocessing",
            "concurrent",
            "xml",
            "http",
        )
    ),
]

# TypeScript and JavaScript: the source folders of npm packages on this machine (the
# folder alone is copied: a package's node_modules/dist/build would be skipped by the
# walker, and its bundled output is not the project's code).
_CODE_SERVER = Path(
    "/root/.cache/coder-lsp-dev/code-server-4.139.1/node_modules/code-server/lib/vscode"
    "/node_modules"
)
_VSCODE_EXT = Path(__file__).resolve().parent.parent / "editors" / "vscode" / "node_modules"
_NPM = Path("/usr/lib/node_modules/npm")
TS_PROJECTS = [
    _CODE_SERVER / "zod" / "src",
    _CODE_SERVER / "@xterm" / "xterm" / "src",
    _CODE_SERVER / "@xterm" / "addon-webgl" / "src",
    _CODE_SERVER / "@microsoft" / "applicationinsights-core-js" / "src",
    _VSCODE_EXT / "@azure" / "msal-browser" / "src",
    _VSCODE_EXT / "@azure" / "msal-common" / "src",
    _VSCODE_EXT / "@azure" / "msal-node" / "src",
    _VSCODE_EXT / "ajv" / "lib",
    _VSCODE_EXT / "cheerio" / "src",
]
JS_PROJECTS = [
    _NPM / "lib",
    *(
        _NPM / "node_modules" / name / "lib"
        for name in ("@npmcli/arborist", "undici", "cacache", "pacote", "@npmcli/config")
    ),
]
PROJECTS: dict[str, list[Path]] = {
    "python": DEFAULT_PROJECTS,
    "typescript": TS_PROJECTS,
    "javascript": JS_PROJECTS,
}
"""The default projects of each benchmark language."""


def _code_rows(text: str, name: str) -> set[int]:
    """Rows where ``name`` is used as a variable in code.

    Not in strings or comments, and not as an attribute (``ctx.command``) or a keyword
    argument's name (``f(command=...)``): those are other things that share the name.
    """
    tree = parse(text, "python")
    rows: set[int] = set()
    if tree is None:
        return rows
    wanted = name.encode()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("string", "comment"):
            continue
        if node.type == "identifier" and node.text == wanted:
            rows.add(node.start_point.row)
        for child in node.children:
            if (node.type, child) in (
                ("attribute", node.child_by_field_name("attribute")),
                ("keyword_argument", node.child_by_field_name("name")),
            ):
                continue
            stack.append(child)
    return rows


def _import_rows(text: str) -> set[int]:
    tree = parse(text, "python")
    rows: set[int] = set()
    if tree is None:
        return rows
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in ("import_statement", "import_from_statement", "future_import_statement"):
            rows.update(range(node.start_point.row, node.end_point.row + 1))
            continue
        stack.extend(node.children)
    return rows


def find_holes(index: WorkspaceIndex, project: str, root: Path, per_file: int) -> list[Hole]:
    """Lines of ``root``'s files whose first use of a cross-file imported name is there."""
    holes: list[Hole] = []
    for path in sorted(root.rglob("*.py")):
        display = index.display_path(str(path))
        if display is None or not index.has(display):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        tags = extract_tags(text, "python")
        resolved = resolve_imports(index, display, "python", tags.imports)
        lines = text.split("\n")
        skip = _import_rows(text)
        found: list[Hole] = []
        for item in resolved:
            name = item.ref.alias or item.symbol
            if not name or item.symbol is None:
                continue
            target_tags = index.tags_of(item.path)
            if not any(t.name == item.symbol and t.parent is None for t in target_tags):
                continue  # a submodule or a re-export: not a definition in that file
            pattern = re.compile(rf"\b{re.escape(name)}\b")
            in_code = _code_rows(text, name)
            for row, line in enumerate(lines):
                if row in skip or not pattern.search(line):
                    continue
                stripped = line.strip()
                # The first mention must be a use in code, on a line worth completing.
                if row not in in_code or not 6 <= len(stripped) <= 100:
                    break
                found.append(Hole(project, display, row, name, stripped))
                break
        found.sort(key=lambda h: h.row)
        holes.extend(found[:per_file])
    return holes


class GenerationMemo:
    """Raw model outputs by prompt, kept in a JSON file between runs (``--memo``).

    Greedy decoding gives the same output for the same prompt, so a run that changes only
    the repository selection re-runs the model only for prompts that changed (the
    file-only prompts never do). Keyed by the model file and the rendered prompt parts.
    """

    def __init__(self, path: Path | None) -> None:
        """Load the memo at ``path`` (None: remember nothing)."""
        self.path = path
        self.items: dict[str, str] = {}
        self.hits = 0
        if path is not None and path.exists():
            self.items = json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def key(model: str, prompt: Prompt, max_tokens: int) -> str:
        """A digest of everything that decides a greedy output."""
        text = repr((model, max_tokens, prompt.parts, prompt.stop, prompt.add_bos))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def save(self) -> None:
        """Write the memo back (when a path was given)."""
        if self.path is not None:
            self.path.write_text(json.dumps(self.items), encoding="utf-8")


class MemoBackend:
    """The real backend behind a :class:`GenerationMemo` (same ``Backend`` interface)."""

    def __init__(self, backend: LlamaCppBackend, memo: GenerationMemo | None) -> None:
        """Wrap ``backend``; ``memo`` None runs every prompt."""
        self.backend = backend
        self.memo = memo
        self.info = backend.info
        self.count_tokens = backend.count_tokens
        self.last_prompt_tokens = 0
        self.save_prompt: Path | None = None
        """Where the next prompt is written, as text with its special tokens (None: not)."""

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """The memoised output for this prompt, else the model's (greedy only)."""
        self.last_prompt_tokens = len(self.backend.prompt_tokens(request.prompt))
        if self.save_prompt is not None:
            self.save_prompt.write_text(request.prompt.render(), encoding="utf-8")
            self.save_prompt = None
        memo = self.memo
        key = GenerationMemo.key(
            self.info.path or self.info.name, request.prompt, request.max_tokens
        )
        if memo is not None and key in memo.items:
            memo.hits += 1
            return Generation(memo.items[key], StopReason.STOP, self.last_prompt_tokens)
        gen = self.backend.generate(request, cancel)
        if memo is not None:
            memo.items[key] = gen.text
        return gen


@dataclass(frozen=True)
class Answer:
    """One completed line and how it came about."""

    line: str
    raw: str
    prompt_tokens: int
    repo_files: list[tuple[str, str]]
    repo_ms: float


def complete_line(
    backend: MemoBackend,
    text: str,
    offset: int,
    path: str,
    budget: int | None,
    repo_context: Callable[[int], RepoSelection] | None,
    share: float,
    language: str = "python",
) -> Answer:
    """The first line the server's pipeline (:func:`complete`) produces at ``offset``.

    Exactly what the server runs on an explicit request — KV-cache layout, trigger,
    repository budget, generation limits, post-processing — with greedy decoding and no
    time limits. ``language`` is the document's languageId (a grammar name).
    """
    settings = Settings(
        prompt_tokens=budget,
        temperature=0.0,
        time_budget_ms=None,
        max_predict_ms=None,
        repo_share=share,
        cache_size=0,
    )
    doc = DocumentSnapshot(Path(path).as_uri(), text, language, 1, path)
    chosen: list[tuple[str, str]] = []

    def select(tokens: int) -> RepoSelection:
        assert repo_context is not None
        selection = repo_context(tokens)
        chosen.extend(selection.files)
        return selection

    result = complete(
        CompletionRequest(doc, offset, invoked=True),
        backend,
        settings,
        CancelToken(),
        tree=parse(text, language),
        repo_context=select if repo_context is not None else None,
    )
    completion = result.completion
    line = "" if completion is None else completion.text.split("\n", 1)[0]
    return Answer(
        line,
        result.raw,
        backend.last_prompt_tokens if result.generation else 0,
        chosen,
        result.timings.get("repo_ms", 0.0),
    )


def _select(
    index: WorkspaceIndex,
    path: str,
    text: str,
    offset: int,
    language: str,
    count_tokens: Callable[[str], int],
    tokens: int,
) -> RepoSelection:
    """Repository context as the server selects it (with the tree it keeps up to date).

    One :class:`RepoContext` per index, kept while the index lives: as in the server,
    its caches serve every request in that workspace.
    """
    repo = _CONTEXTS.get(index)
    if repo is None:
        repo = _CONTEXTS[index] = RepoContext(index)
    return repo.select(
        path, text, offset, language, tokens, count_tokens, tree=parse(text, language)
    )


_CONTEXTS: weakref.WeakKeyDictionary[WorkspaceIndex, RepoContext] = weakref.WeakKeyDictionary()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def synthetic_benchmark(n_files: int) -> None:
    """Build an index of ``n_files`` tiny files with the default limits: time, cap, log."""
    scratch = Path(tempfile.mkdtemp(prefix="coder-lsp-synthetic-"))
    try:
        t0 = time.perf_counter()
        per_dir = 1000
        for d in range((n_files + per_dir - 1) // per_dir):
            folder = scratch / f"d{d:03d}"
            folder.mkdir()
            for i in range(min(per_dir, n_files - d * per_dir)):
                (folder / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
        made = time.perf_counter() - t0
        index = WorkspaceIndex([scratch])
        stats = index.build()
        print(f"\nsynthetic workspace: {n_files} files (created in {made:.0f} s)")
        print(f"| indexed | {stats.files} files in {stats.elapsed_s:.1f} s |")
        print(f"| truncated | {stats.truncated}: {'; '.join(stats.notes)} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def index_benchmark(root: Path, backend: LlamaCppBackend, max_files: int, runs: int) -> None:
    """Print build time, memory, update and retrieval latency, and completion delay."""
    import gc
    import threading

    from lsp_server.repo.walk import SKIP_DIRS, WalkLimits

    limits = WalkLimits(max_files=max_files, skip_dirs=SKIP_DIRS - {"site-packages"})
    gc.collect()
    rss0 = _rss_mb()
    index = WorkspaceIndex([root], limits=limits)
    stats = index.build()
    gc.collect()
    rss1 = _rss_mb()
    print(f"\nindex of {root} (max_files {max_files})")
    print("| figure | value |")
    print("|---|---:|")
    print(f"| files indexed | {stats.files} |")
    print(f"| symbols | {stats.symbols} |")
    print(f"| source bytes | {stats.bytes / 1e6:.1f} MB |")
    print(f"| build time | {stats.elapsed_s:.1f} s |")
    print(f"| index memory (RSS growth after gc) | {rss1 - rss0:.0f} MB |")

    rng = random.Random(1)
    displays = sorted(index._by_display)
    sample = rng.sample(displays, min(60, len(displays)))
    update_ms: list[float] = []
    for display in sample[:30]:
        path = index._by_display[display]
        os.utime(path)
        t0 = time.perf_counter()
        index.update_file(path)
        update_ms.append((time.perf_counter() - t0) * 1000)
    print(
        f"| re-index one saved file | median {statistics.median(update_ms):.1f} ms, "
        f"p95 {_pct(update_ms, 0.95):.1f} ms |"
    )

    repo = RepoContext(index)

    def timed_select(path: str, text: str, offset: int) -> float:
        """One selection as the server runs it (the document's tree kept up to date)."""
        tree = parse(text, language_for(None, path))
        t0 = time.perf_counter()
        repo.select(path, text, offset, None, 800, backend.count_tokens, tree=tree)
        return (time.perf_counter() - t0) * 1000

    cold_ms: list[float] = []
    warm_ms: list[float] = []
    for display in sample:
        path = index._by_display[display]
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for frac in (0.3, 0.6, 0.9):
            offset = int(len(text) * frac)
            cold_ms.append(timed_select(path, text, offset))
            # The next keystroke: one more character typed at the cursor.
            typed = text[:offset] + "x" + text[offset:]
            warm_ms.append(timed_select(path, typed, offset + 1))
    # As the server does it: the document is warmed up when opened (off the request
    # path), then requested at. Other files than above, so nothing is warm from there.
    others = [d for d in displays if d not in set(sample)]
    opened_ms: list[float] = []
    after_open_ms: list[float] = []
    for display in rng.sample(others, min(60, len(others))):
        path = index._by_display[display]
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        t0 = time.perf_counter()
        repo.prewarm(path, text, None, 800)
        opened_ms.append((time.perf_counter() - t0) * 1000)
        for frac in (0.3, 0.6, 0.9):
            after_open_ms.append(timed_select(path, text, int(len(text) * frac)))
    for label, values in (
        ("new position, cold", cold_ms),
        ("next keystroke", warm_ms),
        ("didOpen warm-up (background, once per file)", opened_ms),
        ("new position after the didOpen warm-up", after_open_ms),
    ):
        print(
            f"| snippet retrieval, {label} ({len(values)} calls, budget 800) | median "
            f"{statistics.median(values):.1f} ms, p95 {_pct(values, 0.95):.1f} ms |"
        )

    if runs <= 0:
        return
    # Completion latency with and without a build running beside it.
    text = Path(index._by_display[sample[0]]).read_text(encoding="utf-8", errors="replace")
    offset = len(text) // 2

    def one_completion(busy: threading.Event | None) -> float:
        if busy is not None:
            busy.set()
        try:
            t0 = time.perf_counter()
            complete_line(MemoBackend(backend, None), text, offset, "/x.py", 512, None, 0.0)
            return (time.perf_counter() - t0) * 1000
        finally:
            if busy is not None:
                busy.clear()

    one_completion(None)  # warm-up
    quiet: list[float] = []
    loaded: list[float] = []
    for _ in range(runs):
        backend._llama.reset()
        quiet.append(one_completion(None))
        fresh = WorkspaceIndex([root], limits=limits)
        stop = threading.Event()
        worker = threading.Thread(target=fresh.build, kwargs={"cancel": stop}, daemon=True)
        worker.start()
        time.sleep(1.0)  # the walk is done and files are being parsed
        backend._llama.reset()
        loaded.append(one_completion(fresh.busy))
        stop.set()
        worker.join()
    med_q = statistics.median(quiet)
    med_l = statistics.median(loaded)
    print(f"| completion, no build running ({runs} runs) | median {med_q:.0f} ms |")
    print(
        f"| completion, build running (busy pauses it) | median {med_l:.0f} ms "
        f"({100 * (med_l - med_q) / med_q:+.1f}%) |"
    )


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument(
        "--holes", type=int, default=60, help="holes per language (spread over its projects)"
    )
    parser.add_argument("--per-file", type=int, default=1)
    parser.add_argument(
        "--budget",
        type=int,
        default=None,
        help="prompt tokens in all (default: the server's, n_ctx 4096 less the output reserve)",
    )
    parser.add_argument(
        "--share", type=float, default=0.4, help="share of the budget for repo context"
    )
    # One thread: with two, llama.cpp's spinning threads slow down by 10-20x as soon as
    # another process wants one of the two cores (measured: 7 s vs 176 s, 959 tokens).
    parser.add_argument("--n-threads", type=int, default=1)
    parser.add_argument("--memo", type=Path, help="JSON file of outputs by prompt, reused")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print every hole's predictions")
    parser.add_argument(
        "--prompts",
        type=Path,
        help="write each hole's two prompts to this folder (LANGUAGE-NNN-file.txt, -repo.txt)",
    )
    parser.add_argument(
        "--languages",
        nargs="+",
        choices=sorted(PROJECTS),
        default=list(PROJECTS),
        help="benchmark languages (default: all)",
    )
    parser.add_argument("--index", type=Path, help="measure the index of this folder instead")
    parser.add_argument("--max-files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--synthetic", type=int, default=0, help="with --index: also a workspace of N tiny files"
    )
    parser.add_argument(
        "projects",
        nargs="*",
        type=Path,
        help="project folders (default: each language's list); the language of each is "
        "the one most of its files are in",
    )
    args = parser.parse_args()

    model = resolve_model(args.model)
    backend = LlamaCppBackend.load(
        model.path,
        name=model.name,
        n_ctx=args.budget + 256 if args.budget else Settings().n_ctx,
        n_threads=args.n_threads,
    )
    if args.index is not None:
        try:
            index_benchmark(args.index, backend, args.max_files, args.runs)
            if args.synthetic:
                synthetic_benchmark(args.synthetic)
        finally:
            backend.close()
        return
    memo = GenerationMemo(args.memo)
    try:
        quality_benchmark(args, backend, memo)
    finally:
        memo.save()
        backend.close()


_LANGUAGE_SUFFIXES: dict[str, tuple[str, ...]] = {"python": (".py",), **SCRIPT_EXTENSIONS}


def project_language(folder: Path) -> str | None:
    """The benchmark language most of ``folder``'s files are in (None: no such files)."""
    counts = dict.fromkeys(_LANGUAGE_SUFFIXES, 0)
    for path in folder.rglob("*"):
        for language, suffixes in _LANGUAGE_SUFFIXES.items():
            if path.suffix in suffixes and not path.name.endswith(".d.ts"):
                counts[language] += 1
    best = max(counts, key=lambda language: counts[language])
    return best if counts[best] else None


def projects_by_language(projects: list[Path], languages: list[str]) -> dict[str, list[Path]]:
    """The projects of each wanted language: the given ones, else the default lists."""
    if not projects:
        return {language: PROJECTS[language] for language in languages}
    out: dict[str, list[Path]] = {language: [] for language in languages}
    for project in projects:
        language = project_language(project) if project.is_dir() else None
        if language is None:
            print(f"skip {project}: no Python, TypeScript or JavaScript files", file=sys.stderr)
        elif language in out:
            out[language].append(project)
    return out


def _holes_of_projects(
    projects: list[Path],
    scratch: Path,
    wanted: int,
    per_file: int,
    seed: int,
    language: str = "python",
) -> list[tuple[str, Path, WorkspaceIndex, Hole]]:
    """Copy each project to ``scratch``, index it, and pick holes round-robin."""
    per_project: list[tuple[str, Path, WorkspaceIndex, list[Hole]]] = []
    for source in projects:
        if not source.is_dir():
            print(f"skip {source}: not a folder", file=sys.stderr)
            continue
        name = f"{source.parent.name}/{source.name}"
        folder = f"{len(per_project)}-{source.name}"
        workspace = scratch / (folder if language == "python" else f"{language}-{folder}")
        shutil.copytree(
            source,
            workspace / source.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "node_modules"),
        )
        index = WorkspaceIndex([workspace])
        index.build()
        if language == "python":
            holes = find_holes(index, name, workspace / source.name, per_file)
        else:
            holes = find_script_holes(index, name, workspace / source.name, per_file, language)
        # One generator per project: adding a project does not change the others' holes.
        random.Random(f"{seed}:{name}").shuffle(holes)
        per_project.append((name, workspace, index, holes))
    # Round-robin over projects so that no single project dominates the set.
    chosen: list[tuple[str, Path, WorkspaceIndex, Hole]] = []
    while len(chosen) < wanted and any(p[3] for p in per_project):
        for name, workspace, index, holes in per_project:
            if holes and len(chosen) < wanted:
                chosen.append((name, workspace, index, holes.pop()))
    return chosen


def defines_name(block: str, name: str) -> bool:
    """Whether ``block`` holds a definition of ``name`` (a def, class, function, type,
    declaration or top-level assignment), not just a mention."""
    keyword = r"(?:def|class|function|interface|type|enum|const|let|var)"
    pattern = (
        rf"^\s*(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?"
        rf"{keyword}\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*(?::[^=\n]*)?="
    )
    return re.search(pattern, block, re.MULTILINE) is not None


Result = tuple[bool, float, bool, float]
"""Exact match and edit similarity, file only and with repository context."""


@dataclass
class LanguageRun:
    """One benchmark language's results."""

    rows: dict[str, list[Result]]
    """Results by project."""
    repo_tokens: list[int]
    retrieval_ms: list[float]
    prompt_tokens: dict[str, list[int]]
    defined: list[bool] = field(default_factory=list)
    """Per hole: whether the repository block holds the definition of the hole's name
    (retrieval recall, whatever the model then does with it)."""


def quality_benchmark(
    args: argparse.Namespace, model: LlamaCppBackend, memo: GenerationMemo
) -> None:
    """Complete every hole file-only and with repository context; print the tables."""
    backend = MemoBackend(model, memo)
    if args.prompts is not None:
        args.prompts.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="coder-lsp-crossfile-"))
    try:
        runs: dict[str, LanguageRun] = {}
        started = time.perf_counter()
        count = 0
        for language, projects in projects_by_language(args.projects, args.languages).items():
            chosen = _holes_of_projects(
                projects, scratch, args.holes, args.per_file, args.seed, language
            )
            run = runs[language] = LanguageRun({}, [], [], {"file": [], "repo": []})
            for n, (name, workspace, index, hole) in enumerate(chosen, 1):
                _one_hole(args, backend, run, name, workspace, index, hole, n, len(chosen))
                count += 1
                if count % 10 == 0:
                    memo.save()
            if not args.show:
                print(file=sys.stderr)
        elapsed = time.perf_counter() - started
        _print_quality(args, backend, runs)
        print(f"{elapsed:.0f} s for {count} holes ({memo.hits} generations from --memo)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def hole_in_place(
    workspace: Path, index: WorkspaceIndex, hole: Hole
) -> Iterator[tuple[Path, str, int, str]]:
    """Make ``hole`` real for the duration: yields ``(path, text, offset, indent)``.

    On disk (and in ``index``) the project lacks the hole's line; in the editor (``text``)
    the line holds only its indentation and the cursor (``offset``) is after it. The file
    is restored afterwards.
    """
    path = workspace / hole.rel
    original = path.read_text(encoding="utf-8")
    lines = original.split("\n")
    line = lines[hole.row]
    indent = line[: len(line) - len(line.lstrip())]
    path.write_text("\n".join(lines[: hole.row] + lines[hole.row + 1 :]), encoding="utf-8")
    index.update_file(path)
    text = "\n".join([*lines[: hole.row], indent, *lines[hole.row + 1 :]])
    offset = sum(len(x) + 1 for x in lines[: hole.row]) + len(indent)
    try:
        yield path, text, offset, indent
    finally:
        path.write_text(original, encoding="utf-8")
        index.update_file(path)


def _one_hole(
    args: argparse.Namespace,
    backend: MemoBackend,
    run: LanguageRun,
    name: str,
    workspace: Path,
    index: WorkspaceIndex,
    hole: Hole,
    n: int,
    total: int,
) -> None:
    """Complete one hole both ways and add its scores to ``run``."""
    with hole_in_place(workspace, index, hole) as (path, text, offset, indent):
        repo_context = functools.partial(
            _select, index, str(path), text, offset, hole.language, backend.count_tokens
        )
        if args.prompts is not None:
            backend.save_prompt = args.prompts / f"{hole.language}-{n:03d}-file.txt"
        plain = complete_line(
            backend, text, offset, str(path), args.budget, None, args.share, hole.language
        )
        if args.prompts is not None:
            backend.save_prompt = args.prompts / f"{hole.language}-{n:03d}-repo.txt"
        with_repo = complete_line(
            backend, text, offset, str(path), args.budget, repo_context, args.share, hole.language
        )
    repo_files = with_repo.repo_files
    run.retrieval_ms.append(with_repo.repo_ms)
    run.repo_tokens.append(sum(backend.count_tokens(c) for _, c in repo_files))
    run.defined.append(defines_name("\n".join(c for _, c in repo_files), hole.name))
    run.prompt_tokens["file"].append(plain.prompt_tokens)
    run.prompt_tokens["repo"].append(with_repo.prompt_tokens)
    got_plain = (indent + plain.line).strip()
    got_repo = (indent + with_repo.line).strip()
    run.rows.setdefault(name, []).append(
        (
            got_plain == hole.target,
            edit_similarity(got_plain, hole.target),
            got_repo == hole.target,
            edit_similarity(got_repo, hole.target),
        )
    )
    if args.show:
        print(f"[{n}] {hole.rel}:{hole.row + 1} uses {hole.name}")
        print(f"    target : {hole.target}")
        print(f"    file   : {got_plain}   ({plain.prompt_tokens} tok)")
        print(
            f"    repo   : {got_repo}   ({with_repo.prompt_tokens} tok, repo "
            f"{run.repo_tokens[-1]}: {[p for p, _ in repo_files]})"
        )
        for label, answer in (("file", plain), ("repo", with_repo)):
            if not answer.line.strip():
                print(f"    raw {label}: {answer.raw[:120]!r}")
        sys.stdout.flush()
    else:
        print(f"\r{n}/{total} {hole.language} holes", end="", file=sys.stderr, flush=True)


def _print_quality(
    args: argparse.Namespace, backend: LlamaCppBackend, runs: dict[str, LanguageRun]
) -> None:
    def line(label: str, results: list[Result]) -> str:
        k = len(results)
        em_f = 100 * sum(r[0] for r in results) / k
        es_f = 100 * statistics.mean(r[1] for r in results)
        em_r = 100 * sum(r[2] for r in results) / k
        es_r = 100 * statistics.mean(r[3] for r in results)
        return (
            f"| {label:<30} | {k:>5} | {em_f:>6.1f} | {em_r:>6.1f} | {em_r - em_f:>+6.1f} "
            f"| {es_f:>6.1f} | {es_r:>6.1f} |"
        )

    print(
        f"\nmodel {backend.info.name}, n_ctx {backend.info.n_ctx}, prompt budget "
        f"{args.budget or 'the server default'} tokens, repo share "
        f"{args.share}, greedy, "
        f"{args.n_threads} thread(s)"
    )
    summary: list[str] = []
    for language, run in runs.items():
        every = [r for results in run.rows.values() for r in results]
        if not every:
            print(f"\n{language}: no holes")
            continue
        print(f"\n{language}")
        print("| project | holes | EM file | EM repo | ΔEM | ES file | ES repo |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, results in run.rows.items():
            print(line(name, results))
        print(line("**all**", every))
        summary.append(line(language, every))
        print(
            f"\nrepo block: median {statistics.median(run.repo_tokens):.0f} tokens; prompt "
            f"tokens median file-only {statistics.median(run.prompt_tokens['file']):.0f}, repo "
            f"{statistics.median(run.prompt_tokens['repo']):.0f}; retrieval median "
            f"{statistics.median(run.retrieval_ms):.1f} ms, "
            f"p95 {_pct(run.retrieval_ms, 0.95):.1f} ms; the hole's name is defined in the "
            f"block for {100 * sum(run.defined) / len(run.defined):.0f}% of the holes"
        )
    if summary:
        print("\nper language")
        print("| language | holes | EM file | EM repo | ΔEM | ES file | ES repo |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
