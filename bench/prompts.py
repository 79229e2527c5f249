"""Snapshot the prompts the pipeline builds for the benchmarks' holes, and compare two.

A refactor of prompt building or repository context must not change a single byte of
what the model sees. This script builds, for every hole of the quality benchmark
(``bench/quality.py``: familiar and fresh corpora, every language and hole shape) and of
the cross-file benchmark (``bench/crossfile.py``: real projects with repository context),
the exact prompt text the server's pipeline would send — with the real model's
tokenizer, but without running the model — and writes one JSON line per prompt.

    python -m bench.prompts --out before.jsonl
    ... change the code ...
    python -m bench.prompts --out after.jsonl
    python -m bench.prompts --compare before.jsonl after.jsonl   # exit 1 on any difference

The model's output is never generated: the recording backend answers every generation
with an empty text, so a prompt is what the pipeline builds before the model speaks.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.crossfile import PROJECTS, _holes_of_projects, _select, hole_in_place
from bench.crossfile_holes import Hole as CrossfileHole
from bench.quality import N_CTX, collect_holes
from lsp_server.backends.base import CancelToken, Generation, GenerationRequest, StopReason
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.completion.pipeline import complete
from lsp_server.core import CompletionRequest, DocumentSnapshot
from lsp_server.registry import resolve_model
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.settings import Settings
from lsp_server.syntax import parse


class RecordingBackend:
    """The real model's tokenizer; every generation is recorded and answered empty."""

    def __init__(self, backend: LlamaCppBackend) -> None:
        """Wrap a loaded backend (its tokenizer and context size are what prompts use)."""
        self.backend = backend
        self.info = backend.info
        self.count_tokens = backend.count_tokens
        self.tokenize = backend.tokenize
        self.prompts: list[str] = []

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Record the prompt as the model would see it; generate nothing."""
        self.prompts.append(request.prompt.render())
        return Generation("", StopReason.STOP, 0)


def _complete(
    backend: RecordingBackend,
    path: str,
    text: str,
    offset: int,
    language: str,
    settings: Settings,
    repo_context: object = None,
) -> list[str]:
    backend.prompts = []
    doc = DocumentSnapshot(Path(path).as_uri(), text, language, 1, path)
    complete(
        CompletionRequest(doc, offset, invoked=True),
        backend,
        settings,
        CancelToken(),
        tree=parse(text, language),
        repo_context=repo_context,  # type: ignore[arg-type]
    )
    return backend.prompts


def quality_prompts(
    backend: RecordingBackend, limit: int, seed: int
) -> Iterator[tuple[str, list[str]]]:
    """The pipeline's prompts for the quality benchmark's holes, at two budgets."""
    budgets = {
        "q512": Settings(prompt_tokens=512, n_ctx=N_CTX, time_budget_ms=None, cache_size=0),
        "default": Settings(time_budget_ms=None, cache_size=0),
    }
    for corpus in ("familiar", "fresh"):
        for language in ("python", "javascript", "typescript", "go", "java"):
            for shape in ("line", "line0", "block"):
                holes = collect_holes(language, shape, limit, seed, corpus)
                for hole in holes:
                    for tag, settings in budgets.items():
                        key = f"{corpus}/{language}/{shape}/{hole.name}/{tag}"
                        yield (
                            key,
                            _complete(
                                backend, hole.path, hole.text, hole.offset, hole.language, settings
                            ),
                        )


def crossfile_prompts(
    backend: RecordingBackend, holes: int, seed: int
) -> Iterator[tuple[str, list[str]]]:
    """The pipeline's prompts, with repository context, for the cross-file holes."""
    settings = Settings(time_budget_ms=None, cache_size=0, repo_share=0.4)
    scratch = Path(tempfile.mkdtemp(prefix="coder-lsp-prompts-"))
    try:
        for language, projects in PROJECTS.items():
            chosen = _holes_of_projects(projects, scratch, holes, 1, seed, language)
            for n, (name, workspace, index, hole) in enumerate(chosen):
                prompts = _crossfile_hole(backend, settings, workspace, index, hole)
                # Scratch folders differ between runs: compare paths relative to them.
                yield (
                    f"crossfile/{language}/{name}/{n}",
                    [p.replace(str(scratch), "<scratch>") for p in prompts],
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _crossfile_hole(
    backend: RecordingBackend,
    settings: Settings,
    workspace: Path,
    index: WorkspaceIndex,
    hole: CrossfileHole,
) -> list[str]:
    """The prompts for one cross-file hole, set up as ``bench/crossfile.py`` does."""
    with hole_in_place(workspace, index, hole) as (path, text, offset, _):
        select = functools.partial(
            _select, index, str(path), text, offset, hole.language, backend.count_tokens
        )
        return _complete(backend, str(path), text, offset, hole.language, settings, select)


def snapshot(args: argparse.Namespace) -> int:
    """Write every prompt to ``args.out``."""
    model = resolve_model(args.model)
    loaded = LlamaCppBackend.load(model.path, name=model.name, n_ctx=4096, n_threads=1)
    backend = RecordingBackend(loaded)
    count = 0
    digest = hashlib.sha256()
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            sources = [quality_prompts(backend, args.limit, args.seed)]
            if args.crossfile:
                sources.append(crossfile_prompts(backend, args.crossfile, args.seed))
            for source in sources:
                for key, prompts in source:
                    line = json.dumps({"key": key, "prompts": prompts}, ensure_ascii=False)
                    out.write(line + "\n")
                    digest.update(line.encode())
                    count += 1
    finally:
        loaded.close()
    print(f"{count} holes, sha256 {digest.hexdigest()[:16]} -> {args.out}")
    return 0


def compare(a: Path, b: Path) -> int:
    """Print how two snapshots differ; 0 when they are identical."""

    def load(path: Path) -> dict[str, list[str]]:
        with open(path, encoding="utf-8") as handle:
            return {d["key"]: d["prompts"] for d in map(json.loads, handle)}

    before, after = load(a), load(b)
    missing = sorted(before.keys() - after.keys())
    extra = sorted(after.keys() - before.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    print(
        f"{len(before)} holes before, {len(after)} after: {len(changed)} prompts differ, "
        f"{len(missing)} missing, {len(extra)} new"
    )
    for key in changed[:3]:
        print(f"--- {key}")
        old, new = "\n\x00\n".join(before[key]), "\n\x00\n".join(after[key])
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
        print("\n".join(list(diff)[:40]))
    for key in missing[:5] + extra[:5]:
        print(f"only in one: {key}")
    return 1 if changed or missing or extra else 0


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--out", type=Path, help="write the snapshot here")
    parser.add_argument("--limit", type=int, default=8, help="quality holes per set")
    parser.add_argument(
        "--crossfile", type=int, default=12, help="cross-file holes per language (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    if args.out is None:
        parser.error("--out or --compare is required")
    sys.exit(snapshot(args))


if __name__ == "__main__":
    main()
