"""Command line: ``coder-lsp [--stdio | --tcp HOST:PORT]``, ``complete`` and ``models``.

Serving is the default. ``complete`` runs the same pipeline the server runs and prints the
completion on stdout (figures on stderr). ``models list`` / ``models pull`` manage the
registry's model files (the table and the progress bar are drawn here; the download
itself is :mod:`lsp_server.download`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lsp_server import __version__
from lsp_server.errors import CoderLspError, ModelNotDownloadedError
from lsp_server.registry import ModelSpec, Registry, is_downloaded, local_path, models_dir
from lsp_server.settings import Settings, parse_settings

if TYPE_CHECKING:
    from lsp_server.backends.base import Backend
    from lsp_server.core import DocumentSnapshot
    from lsp_server.repo.context import RepoSelection

logger = logging.getLogger("lsp_server")


def _setup_logging(level: str, log_file: str | None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )  # StreamHandler writes to stderr: stdout is the LSP transport
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger.setLevel(level.upper())


def _add_model_options(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: the same options exist before and after the subcommand; an absent one must
    # not overwrite a value given in the other place.
    opts = {"default": argparse.SUPPRESS}
    p.add_argument("--model", help="registry name (coder-lsp models list) or .gguf path", **opts)
    p.add_argument("--n-ctx", type=int, help="context window in tokens", **opts)
    p.add_argument("--n-threads", type=int, help="CPU threads (default: adapts to load)", **opts)
    p.add_argument("--n-gpu-layers", type=int, help="layers to offload to the GPU (-1 all)", **opts)
    p.add_argument("--max-tokens", type=int, help="maximum generated tokens", **opts)
    p.add_argument("--template", help="force a FIM template (deepseek, qwen, …)", **opts)
    p.add_argument(
        "--backend",
        choices=["local", "llama-server", "openai", "ollama"],
        help="the engine: in-process llama.cpp (local, default) or a shared server",
        **opts,
    )
    p.add_argument("--url", help="the shared engine's base URL (with --backend)", **opts)
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding the engine's API key (default CODER_LSP_API_KEY)",
        **opts,
    )
    p.add_argument(
        "--slot",
        type=int,
        metavar="N",
        help="llama-server slot (id_slot) this server's requests use (keeps its prompt cache)",
        **opts,
    )
    p.add_argument(
        "--tokenizer",
        metavar="NAME|PATH|remote",
        help="vocabulary for exact local token counts with a shared engine",
        **opts,
    )


def _settings_from_args(args: argparse.Namespace) -> Settings:
    raw = {
        key: value
        for key, value in {
            "model": getattr(args, "model", None),
            "nCtx": getattr(args, "n_ctx", None),
            "nThreads": getattr(args, "n_threads", None),
            "nGpuLayers": getattr(args, "n_gpu_layers", None),
            "maxTokens": getattr(args, "max_tokens", None),
            "template": getattr(args, "template", None),
            "logLevel": getattr(args, "log_level", None),
        }.items()
        if value is not None
    }
    backend = {
        key: value
        for key, value in {
            "kind": getattr(args, "backend", None),
            "url": getattr(args, "url", None),
            "apiKeyEnv": getattr(args, "api_key_env", None),
            "tokenizer": getattr(args, "tokenizer", None),
            "slot": getattr(args, "slot", None),
        }.items()
        if value is not None
    }
    if backend:
        if "kind" not in backend and "url" in backend:
            backend["kind"] = "llama-server"  # a bare --url: the most common engine
        raw["backend"] = backend
    parsed = parse_settings(raw)
    for err in parsed.errors:
        print(f"coder-lsp: {err}", file=sys.stderr)
    return parsed.settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="coder-lsp", description="Local AI code completion over the Language Server Protocol."
    )
    parser.add_argument("--version", action="version", version=f"coder-lsp {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="serve over stdin/stdout (default)")
    mode.add_argument("--tcp", metavar="HOST:PORT", help="serve over TCP")
    parser.add_argument(
        "--auth-token-env",
        metavar="VAR",
        help="with --tcp: clients must send the token held in this environment variable "
        "as initializationOptions.authToken",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="with --tcp and --auth-token-env: listen on addresses beyond this machine",
    )
    parser.add_argument("--log-file", help="write logs to this file instead of stderr")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    _add_model_options(parser)
    sub = parser.add_subparsers(dest="command")

    comp = sub.add_parser("complete", help="print the completion at FILE:LINE:COL (1-based)")
    comp.add_argument("location", help="FILE:LINE:COL, line and column counted from 1")
    comp.add_argument("--language", help="language id (default: from the file extension)")
    comp.add_argument("--pull", action="store_true", help="download the model first if missing")
    comp.add_argument("--json", action="store_true", help="print a JSON object instead")
    comp.add_argument(
        "--explain",
        action="store_true",
        help="also print the model's raw text and each post-processing rule that changed it "
        "(to stderr)",
    )
    comp.add_argument(
        "--workspace",
        metavar="DIR",
        help="index this folder first and put repository context in the prompt, as the "
        "server does for an editor's workspace folder",
    )
    comp.add_argument(
        "--show-prompt",
        action="store_true",
        help="also print the prompt exactly as the model sees it (to stderr)",
    )
    _add_model_options(comp)

    models = sub.add_parser("models", help="list or download models")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="show known models and which are downloaded")
    pull = msub.add_parser("pull", help="download a model (resumes; verifies sha256)")
    pull.add_argument("name")

    sett = sub.add_parser("settings", help="describe the server's settings")
    sett.add_argument(
        "--schema",
        action="store_true",
        required=True,
        help="print every setting as JSON Schema (types, defaults, bounds, descriptions)",
    )
    return parser


def _parse_location(location: str) -> tuple[Path, int, int]:
    try:
        file_part, line_s, col_s = location.rsplit(":", 2)
        line, col = int(line_s), int(col_s)
    except ValueError:
        raise CoderLspError(f"expected FILE:LINE:COL (1-based), got {location!r}") from None
    if line < 1 or col < 1:
        raise CoderLspError("LINE and COL count from 1")
    return Path(file_part), line, col


def cmd_complete(args: argparse.Namespace) -> int:
    """``coder-lsp complete FILE:LINE:COL``: one completion through the server's pipeline."""
    from lsp_server.backends.base import CancelToken
    from lsp_server.completion.pipeline import complete
    from lsp_server.core import CompletionRequest, DocumentSnapshot
    from lsp_server.engine import load_backend
    from lsp_server.languages import language_for
    from lsp_server.positions import UTF32, offset_at
    from lsp_server.syntax import parse

    settings = _settings_from_args(args)
    path, line, col = _parse_location(args.location)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CoderLspError(f"cannot read {path}: {err.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    t0 = time.perf_counter()
    try:
        backend = load_backend(settings)
    except ModelNotDownloadedError:
        if not args.pull:
            raise
        _pull(settings.model)
        backend = load_backend(settings)
    load_s = time.perf_counter() - t0
    offset = offset_at(text, line - 1, col - 1, UTF32)
    language_id = args.language or ""
    doc = DocumentSnapshot(path.resolve().as_uri(), text, language_id, 1, str(path.resolve()))
    language = language_for(language_id, doc.path)
    tree = parse(text, language) if language else None
    fired: list[tuple[str, str, str]] = []
    repo_context = None
    if args.workspace:
        repo_context = _workspace_context(Path(args.workspace), doc, offset, tree, backend)
    t0 = time.perf_counter()
    result = complete(
        CompletionRequest(doc, offset, invoked=True),
        backend,
        settings,
        CancelToken(),
        tree=tree,
        repo_context=repo_context,
        trace=(lambda rule, before, after: fired.append((rule, before, after)))
        if args.explain
        else None,
    )
    total_ms = (time.perf_counter() - t0) * 1000
    gen = result.generation
    text_out = result.completion.text if result.completion else ""
    if args.json:
        print(
            json.dumps(
                {
                    "completion": text_out,
                    "replace_chars": result.completion.replace_chars if result.completion else 0,
                    "shape": result.shape.value,
                    "raw": result.raw,
                    "reason": result.reason,
                    "model": backend.info.name,
                    "template": backend.info.template.name,
                    "prompt_tokens": gen.prompt_tokens if gen else 0,
                    "generated_tokens": gen.generated_tokens if gen else 0,
                    "total_ms": round(total_ms, 1),
                    "load_s": round(load_s, 2),
                    "timings": result.timings,
                }
            )
        )
    else:
        print(text_out)
    if args.show_prompt and result.prompt is not None:
        print("[coder-lsp] prompt:", file=sys.stderr)
        print(result.prompt.render(), file=sys.stderr)
        print("[coder-lsp] end of prompt", file=sys.stderr)
    if args.explain:
        print(f"[coder-lsp] raw model text: {result.raw!r}", file=sys.stderr)
        for rule, before, after in fired:
            print(f"[coder-lsp] {rule}: {before!r} -> {after!r}", file=sys.stderr)
    print(
        f"[coder-lsp] model={backend.info.name} template={backend.info.template.name} "
        f"shape={result.shape.value} prompt_tokens={gen.prompt_tokens if gen else 0} "
        f"generated_tokens={gen.generated_tokens if gen else 0} "
        f"completion_ms={total_ms:.0f} load_s={load_s:.1f}"
        + (f" ({result.reason})" if result.reason else ""),
        file=sys.stderr,
    )
    return 0 if result.completion else 3


def _workspace_context(
    root: Path, doc: DocumentSnapshot, offset: int, tree: Any, backend: Backend
) -> Callable[[int], RepoSelection]:
    """Index ``root`` (its .gitignore and secret rules apply) and return the selection
    the server would make for ``doc``: a function of the repository budget."""
    from lsp_server.repo.context import RepoContext
    from lsp_server.repo.index import WorkspaceIndex

    if not root.is_dir():
        raise CoderLspError(f"--workspace {root}: not a folder")
    index = WorkspaceIndex([root.resolve()])
    stats = index.build()
    print(
        f"[coder-lsp] indexed {stats.files} files ({stats.symbols} symbols) of {root} "
        f"in {stats.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    if doc.path:
        index.set_open_document(doc.path, doc.text)

    return RepoContext(index).for_document(doc, offset, backend.count_tokens, tree=tree)


# ---------------------------------------------------------------------------------------
# ``models``: the registry table and a download progress bar


def _human_size(spec: ModelSpec) -> str:
    text = f"{spec.size_bytes / 1e9:.2f} GB"
    return text if spec.size_exact else f"~{text}"


def format_models_table(registry: Registry, *, directory: Path | None = None) -> str:
    """The ``coder-lsp models list`` table: one row per model, the default marked ``*``.

    Columns: name, size, training context, FIM template, hardware hint, and whether the
    file is downloaded (with its path).
    """
    header = ("NAME", "SIZE", "CONTEXT", "TEMPLATE", "NEEDS (RAM / VRAM)", "DOWNLOADED")
    rows: list[tuple[str, ...]] = []
    for spec in registry:
        mark = "*" if spec.name == registry.default_name else " "
        path = local_path(spec, directory)
        status = f"yes  {path}" if is_downloaded(spec, directory) else "no"
        rows.append(
            (
                f"{mark} {spec.name}",
                _human_size(spec),
                f"{spec.context_length // 1024}K",
                spec.template or "auto",
                f"{spec.ram_gb:g} GB / {spec.vram_gb:g} GB",
                status,
            )
        )
    header = (f"  {header[0]}", *header[1:])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    where = directory if directory is not None else models_dir()
    lines.append("")
    lines.append(f"* default model; files live in {where}")
    for problem in registry.problems:
        lines.append(f"warning: {problem}")
    return "\n".join(lines)


def render_progress(
    done: int, total: int | None, label: str, speed_bps: float | None, *, width: int = 24
) -> str:
    """One progress line: label, bar, percent, MB done / total, MB/s.

    Without ``total`` the bar and percent are left out; without ``speed_bps`` the speed.
    """
    speed = f" {speed_bps / 1e6:6.1f} MB/s" if speed_bps is not None else ""
    if total:
        fraction = min(max(done / total, 0.0), 1.0)
        filled = int(fraction * width)
        bar = "#" * filled + "-" * (width - filled)
        return (
            f"{label} [{bar}] {fraction * 100:5.1f}% {done / 1e6:7.1f}/{total / 1e6:.1f} MB{speed}"
        )
    return f"{label} {done / 1e6:7.1f} MB{speed}"


class ProgressBar:
    """A :data:`ProgressCallback` that draws on stderr (or ``stream``) for the CLI.

    On a terminal it redraws one line at most every ``min_interval_s``; elsewhere (a log
    file, CI) it writes a full line every ``log_interval_s`` so logs stay readable. The
    speed counts only bytes fetched since the label first appeared, so a resumed
    download does not look impossibly fast.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        min_interval_s: float = 0.1,
        log_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Draw on ``stream`` (default ``sys.stderr``); ``clock`` is injectable for tests."""
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        try:
            self._tty = self._stream.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._interval = min_interval_s if self._tty else log_interval_s
        self._label: str | None = None
        self._label_start = 0.0
        self._label_base = 0
        self._last_draw = float("-inf")
        self._last_line = ""
        self._finished = False

    def __call__(self, done: int, total: int | None, label: str) -> None:
        """Record progress; redraw when enough time passed or the file is complete."""
        now = self._clock()
        if label != self._label:
            self._end_line()
            self._label = label
            self._label_start = now
            self._label_base = done
            self._last_draw = float("-inf")
            self._finished = False
        finished = total is not None and done >= total
        if self._finished or (not finished and now - self._last_draw < self._interval):
            return
        self._last_draw = now
        elapsed = now - self._label_start
        speed = (done - self._label_base) / elapsed if elapsed > 0 else None
        self._write(render_progress(done, total, label, speed))
        if finished:
            # Leave the finished line on screen; the next label starts a new one.
            self._end_line()
            self._finished = True

    def _write(self, line: str) -> None:
        if self._tty:
            pad = " " * max(len(self._last_line) - len(line), 0)
            self._stream.write(f"\r{line}{pad}")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        self._last_line = line

    def _end_line(self) -> None:
        if self._tty and self._last_line:
            self._stream.write("\n")
            self._stream.flush()
        self._last_line = ""

    def close(self) -> None:
        """Finish the current line."""
        self._end_line()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pull(name: str) -> Path:
    from lsp_server.download import pull
    from lsp_server.registry import load_registry

    spec = load_registry().get(name)
    print(f"coder-lsp: downloading {spec.name} ({spec.size_bytes / 1e6:.0f} MB)", file=sys.stderr)
    # Each finished file ends its own line, so no close() is needed after a success.
    path = pull(spec, progress=ProgressBar(sys.stderr))
    print(f"coder-lsp: {spec.name} ready at {path}", file=sys.stderr)
    return path


def cmd_models(args: argparse.Namespace) -> int:
    """``coder-lsp models list|pull``."""
    from lsp_server.registry import load_registry

    if args.models_command == "list":
        print(format_models_table(load_registry()))
        return 0
    _pull(args.name)
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    """``coder-lsp settings --schema``: the settings as JSON Schema, on stdout."""
    from lsp_server.settings_schema import settings_schema

    print(json.dumps(settings_schema(), indent=2))
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the language server over stdio (default) or TCP; the process exit code.

    Over TCP each connection gets its own server (documents, index, model), one client
    at a time; only loopback addresses are served unless ``--allow-remote`` and a token.
    """
    from lsp_server.server import create_server
    from lsp_server.transport import TcpOptions, parse_tcp_address, serve_stdio, serve_tcp

    settings = _settings_from_args(args)
    if args.tcp:
        host, port = parse_tcp_address(args.tcp)
        token = None
        if args.auth_token_env:
            token = os.environ.get(args.auth_token_env, "")
            if len(token) < 16:
                raise CoderLspError(
                    f"--auth-token-env {args.auth_token_env}: the variable must hold a token "
                    "of at least 16 characters"
                )
        options = TcpOptions(host, port, token, args.allow_remote)
        return serve_tcp(lambda: create_server(settings), options)
    return serve_stdio(create_server(settings))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``coder-lsp`` command."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level, args.log_file)
    try:
        if args.command == "complete":
            return cmd_complete(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "settings":
            return cmd_settings(args)
        code = serve(args)
    except CoderLspError as err:
        print(f"coder-lsp: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    # The session is over. A worker thread may still be inside llama.cpp or blocked on a
    # file; exiting without joining it is what ``exit`` asks for.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)
