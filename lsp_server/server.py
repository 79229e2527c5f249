"""The language server: thin pygls handlers around the engine and the document store.

Each handler converts LSP types to core records, calls one function, and converts the
result back. Errors the product raises on purpose are turned into ``window/showMessage``
here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import uuid
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_server import __version__
from lsp_server.completion.pipeline import PipelineResult, repo_tokens
from lsp_server.core import Completion, CompletionRequest
from lsp_server.documents import MAX_PARSE_CHARS, Document, DocumentStore, uri_to_path
from lsp_server.engine import Engine, ModelState
from lsp_server.errors import CoderLspError
from lsp_server.languages import WATCHED_FILES_GLOB
from lsp_server.positions import normalize_encoding, offset_at, position_at
from lsp_server.repo.context import RepoContext
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.settings import Settings, language_enabled, parse_settings
from lsp_server.transport import CoderProtocol

logger = logging.getLogger(__name__)

STATUS_NOTIFICATION = "coder-lsp/status"
"""Custom notification ``{state, model, detail}`` that editor clients show in a status bar."""
READY_NOTIFICATION = "coder-lsp/completionReady"
"""Custom notification ``{textDocument: {uri, version}, position}``: a completion a time
limit had cut short (the client got an empty answer) is now in the server's cache; a
client whose document version and cursor still match asks again and is answered at once."""
CMD_PULL_MODEL = "coder-lsp.pullModel"
CMD_STATUS = "coder-lsp.status"
CMD_STATS = "coder-lsp.stats"


_MESSAGE_TYPES = (
    (logging.ERROR, types.MessageType.Error),
    (logging.WARNING, types.MessageType.Warning),
    (logging.INFO, types.MessageType.Info),
)


def message_type(level: int) -> types.MessageType:
    """The ``window/logMessage`` type of a logging level (DEBUG and below: Debug)."""
    for threshold, kind in _MESSAGE_TYPES:
        if level >= threshold:
            return kind
    return types.MessageType.Debug


class ClientLogHandler(logging.Handler):
    """Sends log records to the client as ``window/logMessage``, typed by their level.

    Editors show a server's stderr as errors (VS Code's output channel marks every line
    ``[error]``; Neovim writes it to its log at ERROR); a typed logMessage lets them show
    INFO as info. Records may come from any thread: they are sent from the event loop.
    """

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._server = server
        self._loop = loop
        self._sending = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record for the client (dropped when the loop is gone)."""
        if getattr(self._sending, "active", False):
            return  # a record logged while sending one: never loop
        try:
            params = types.LogMessageParams(
                type=message_type(record.levelno), message=client_text(record)
            )
            self._loop.call_soon_threadsafe(self._send, params)
        except RuntimeError:  # the loop is closed: the session is over
            pass

    def _send(self, params: types.LogMessageParams) -> None:
        self._sending.active = True
        try:
            self._server.window_log_message(params)
        except Exception:  # the transport may be closing; nowhere left to report it
            pass
        finally:
            self._sending.active = False


def client_text(record: logging.LogRecord) -> str:
    """The line a client sees for ``record``: never a traceback.

    A traceback names files and lines of this machine and tells an editor user nothing
    (pygls logs one for every request whose params fail validation); the exception's type
    and message are kept, the full traceback stays in ``--log-file``.
    """
    message = record.getMessage()
    cut = message.find("Traceback (most recent call last)")
    if cut >= 0:  # a library that formats its traceback into the message (pygls)
        message = message[: message.rfind("\n", 0, cut) + 1].rstrip() or message[:cut].rstrip()
    text = f"{record.name}: {message}"
    if record.exc_info and record.exc_info[1] is not None:
        err = record.exc_info[1]
        first = str(err).strip().split("\n", 1)[0]
        text += f" ({type(err).__name__}: {first})" if first else f" ({type(err).__name__})"
    return text


def log_to_client(server: LanguageServer) -> None:
    """Send the log to the client from now on, instead of stderr.

    A log file given with ``--log-file`` keeps being written; only the handler that writes
    to stderr is replaced (uncaught errors still reach stderr, where they belong).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        to_stderr = isinstance(handler, logging.StreamHandler) and getattr(
            handler, "stream", None
        ) in (sys.stderr, sys.__stderr__)
        if to_stderr or isinstance(handler, ClientLogHandler):
            root.removeHandler(handler)
    root.addHandler(ClientLogHandler(server, asyncio.get_running_loop()))


class CoderLanguageServer(LanguageServer):
    """pygls server holding the document store, the engine and the settings."""

    def __init__(self, base_settings: Settings | None = None, engine: Engine | None = None):
        super().__init__("coder-lsp", __version__, protocol_cls=CoderProtocol)
        self.base_settings = base_settings or Settings()
        self.settings = self.base_settings
        self.engine = engine or Engine()
        self.docs = DocumentStore()
        self.encoding = "utf-16"
        self.plain_docs = False
        """Whether the client renders plain-text completion documentation."""
        self._pending_errors: tuple[str, ...] = ()
        self.index: WorkspaceIndex | None = None
        """The workspace index (None until initialized with a workspace folder)."""
        self.repo: RepoContext | None = None
        """Repository context over :attr:`index` (created with it, handed to the engine)."""
        self.prewarmed = 0
        """Documents whose repository context was warmed up (see :meth:`prewarm`)."""
        self._index_task: asyncio.Future[None] | None = None
        self._watch_task: asyncio.Future[None] | None = None
        self._shown_errors: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._load_task: asyncio.Task[Any] | None = None
        self._index_cancel = threading.Event()
        self.engine.add_listener(self._on_state)
        self.engine.add_ready_listener(self._on_ready)

    def close_session(self) -> None:
        """The client left: stop generating and indexing, and let the model go.

        Called by the transport when a session ends; over TCP the next client gets a
        fresh server, so nothing of this session (documents, index, cache) reaches it.
        """
        for task in (self._load_task, self._index_task, self._watch_task):
            if task is not None and not task.done():
                task.cancel()
        self._index_cancel.set()
        self.engine.repo = None
        self.engine.shutdown()

    # -- helpers used by handlers --------------------------------------------------------
    def show_error_once(self, message: str) -> None:
        """``window/showMessage`` an error, once per distinct message."""
        if message in self._shown_errors:
            return
        self._shown_errors.add(message)
        logger.error("%s", message)
        self.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Error, message=f"coder-lsp: {message}")
        )

    def apply_settings(self, raw: Any, base: Settings) -> None:
        """Convert and adopt settings; report bad values; reload the model when needed."""
        parsed = parse_settings(raw, base)
        for err in parsed.errors:
            logger.warning("%s", err)
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=f"coder-lsp: {err}")
            )
        self.settings = parsed.settings
        logging.getLogger("lsp_server").setLevel(self.settings.log_level.upper())
        if self.engine.configure(self.settings):
            self._shown_errors.clear()
            self.start_loading()

    def start_loading(self) -> None:
        """Load the model in the background, with ``$/progress`` when the client supports it."""
        self._loop = asyncio.get_running_loop()
        self._load_task = asyncio.ensure_future(self._load_with_progress())

    async def _load_with_progress(self) -> None:
        token = await self._begin_progress(f"Loading model {self.settings.model}")
        t0 = time.perf_counter()
        state = await self.engine.load()
        elapsed = time.perf_counter() - t0
        if state is ModelState.READY:
            message = f"Model ready ({elapsed:.1f} s)"
            logger.info("model %s loaded in %.2f s", self.settings.model, elapsed)
        else:
            message = f"Model failed: {self.engine.error}"
            self.show_error_once(str(self.engine.error))
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def _on_state(self, state: ModelState, detail: str) -> None:
        """Forward engine state changes (from any thread) to the client."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        params = {"state": state.value, "model": self.settings.model, "detail": detail}
        loop.call_soon_threadsafe(self._notify_status, params)

    def _notify_status(self, params: dict[str, Any]) -> None:
        try:
            self.protocol.notify(STATUS_NOTIFICATION, params)
        except Exception:  # the transport may be closing
            logger.debug("could not send status", exc_info=True)

    def _on_ready(self, request: CompletionRequest, result: PipelineResult) -> None:
        """A follow-up put a completion in the cache: tell the client where (event loop)."""
        params = ready_params(request, self.docs.get(request.document.uri), self.encoding)
        if params is None:
            return  # edited or closed since: the client has moved on
        try:
            self.protocol.notify(READY_NOTIFICATION, params)
        except Exception:  # the transport may be closing
            logger.debug("could not send completionReady", exc_info=True)

    # -- repository context ----------------------------------------------------------------
    def workspace_roots(self) -> list[str]:
        """Filesystem paths of the workspace folders (or the root URI)."""
        uris = [f.uri for f in self.workspace.folders.values()] or (
            [self.workspace.root_uri] if self.workspace.root_uri else []
        )
        return [p for p in (uri_to_path(u) for u in uris) if p]

    def start_indexing(self) -> None:
        """Index the workspace in the background (``$/progress``); completions go on meanwhile."""
        if not self.settings.repo_context or self.index is not None:
            return
        roots = self.workspace_roots()
        if not roots:
            logger.info("no workspace folder: completions use the current file only")
            return
        self.index = WorkspaceIndex(roots, max_files=self.settings.index_max_files)
        for doc in self.docs.all():
            if doc.path and len(doc.text) <= MAX_PARSE_CHARS:
                self.index.set_open_document(doc.path, doc.text)
        self.repo = RepoContext(self.index)
        self.engine.repo = self.repo
        self.engine.busy = self.index.busy
        self._index_task = asyncio.ensure_future(self._index_with_progress(self.index))
        self._watch_task = asyncio.ensure_future(self.watch_files())

    def prewarm(self, doc: Document) -> None:
        """Warm the repository caches for a document the user just opened.

        Resolving its imports and locating the definitions they name costs up to tens of
        milliseconds the first time; done now, in the background, the first completion
        request finds them ready. Skipped while the index is still being built (it is
        done for every open document when the build ends).
        """
        index, repo = self.index, self.repo
        if index is None or repo is None or not doc.path or index.building:
            return
        backend = self.engine.backend
        budget = repo_tokens(self.settings, backend.info.n_ctx) if backend is not None else None
        loop = asyncio.get_running_loop()
        path, text = doc.path, doc.text

        def warm() -> int:
            index.add_imported_files(path, text)  # imports the file cap left out, first
            return repo.prewarm(path, text, doc.language_id, budget)

        future = loop.run_in_executor(None, warm)
        future.add_done_callback(self._prewarmed)

    def _prewarmed(self, future: asyncio.Future[int]) -> None:
        """Count a finished warm-up (``coder-lsp.stats``), or log why it failed."""
        if future.cancelled():
            return
        err = future.exception()
        if err is not None:
            logger.warning("warming up repository context failed: %r", err)
        else:
            self.prewarmed += 1

    async def _index_with_progress(self, index: WorkspaceIndex) -> None:
        loop = asyncio.get_running_loop()
        token = await self._begin_progress("Indexing workspace")
        last = [0.0]

        def progress(done: int, total: int | None, message: str) -> None:
            now = time.monotonic()
            if token is None or now - last[0] < 0.5:
                return
            last[0] = now
            pct = min(99, int(done * 100 / total)) if total else None
            loop.call_soon_threadsafe(
                self.work_done_progress.report,
                token,
                types.WorkDoneProgressReport(message=message, percentage=pct),
            )

        stats = await loop.run_in_executor(None, lambda: index.build(progress, self._index_cancel))
        for doc in self.docs.all():
            self.prewarm(doc)
        message = (
            f"Indexed {stats.files} files ({stats.symbols} symbols) in {stats.elapsed_s:.1f} s"
        )
        if stats.truncated:
            message += f"; stopped at the {self.settings.index_max_files}-file limit"
        logger.info("%s", message)
        for note in stats.notes:
            logger.info("index: %s", note)
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    async def _begin_progress(self, message: str) -> str | None:
        """Create and begin a ``$/progress`` token when the client supports it."""
        caps = self.client_capabilities
        if caps.window is None or not caps.window.work_done_progress:
            return None
        token = f"coder-lsp-{uuid.uuid4().hex[:8]}"
        try:
            await self.work_done_progress.create_async(token)
        except Exception as err:  # the client refused the token: carry on without progress
            logger.debug("workDoneProgress/create failed: %s", err)
            return None
        self.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title="coder-lsp", message=message)
        )
        return token

    async def watch_files(self) -> None:
        """Ask the client for ``workspace/didChangeWatchedFiles`` (dynamic registration)."""
        caps = self.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if watched is None or not watched.dynamic_registration:
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[
                types.FileSystemWatcher(glob_pattern=WATCHED_FILES_GLOB),
                types.FileSystemWatcher(glob_pattern="**/.gitignore"),
            ]
        )
        try:
            await self.client_register_capability_async(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="coder-lsp-watch",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=options,
                        )
                    ]
                )
            )
        except Exception as err:  # not fatal: saves and edits still update the index
            logger.info("file watcher registration refused: %s", err)

    async def run_completion(
        self, uri: str, position: types.Position, invoked: bool
    ) -> tuple[Completion | None, int, str]:
        """Complete at a position; returns (completion, cursor offset, document text)."""
        doc = self.docs.get(uri)
        if doc is None:
            logger.info("completion for a document that is not open: %s", uri)
            return None, 0, ""
        if not language_enabled(self.settings, doc.language_id):
            return None, 0, ""
        if "\x00" in doc.text:
            logger.info("no completion in a binary document (it contains NUL bytes): %s", uri)
            return None, 0, ""
        offset = offset_at(doc.text, position.line, position.character, self.encoding, doc.starts())
        snapshot = doc.snapshot()
        tree = doc.parsed.tree.copy() if doc.parsed is not None else None
        t0 = time.perf_counter()
        result = await self.engine.complete(CompletionRequest(snapshot, offset, invoked), tree)
        current = self.docs.get(uri)
        if current is None or current.version != snapshot.version or current.text != snapshot.text:
            logger.info("discarding a completion for an outdated version of %s", uri)
            return None, offset, snapshot.text
        if result.prompt is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("prompt for %s:\n%s", uri, result.prompt.render())
        gen = result.generation
        logger.info(
            "complete %s:%d:%d shape=%s %s cache=%s prompt=%s evaluated=%s generated=%s "
            "total_ms=%.0f %s",
            uri.rsplit("/", 1)[-1],
            position.line,
            position.character,
            result.shape.value,
            "ok" if result.completion else f"empty ({result.reason})",
            result.cache.value,
            gen.prompt_tokens if gen else "-",
            gen.evaluated_tokens if gen else "-",
            gen.generated_tokens if gen else "-",
            (time.perf_counter() - t0) * 1000,
            " ".join(f"{k}={v:.1f}" for k, v in result.timings.items()),
        )
        return result.completion, offset, snapshot.text

    def range_for(self, text: str, offset: int, completion: Completion) -> types.Range:
        """The LSP range a completion replaces (empty at the cursor unless it replaces chars)."""
        line, char = position_at(text, offset, self.encoding)
        end_line, end_char = position_at(text, offset + completion.replace_chars, self.encoding)
        return types.Range(
            start=types.Position(line=line, character=char),
            end=types.Position(line=end_line, character=end_char),
        )


def ready_params(
    request: CompletionRequest, current: Document | None, encoding: str
) -> dict[str, Any] | None:
    """The ``coder-lsp/completionReady`` params for ``request``, or None when the document
    is closed or no longer the version the request saw."""
    snap = request.document
    if current is None or current.version != snap.version or current.text != snap.text:
        return None
    line, character = position_at(snap.text, request.offset, encoding)
    return {
        "textDocument": {"uri": snap.uri, "version": snap.version},
        "position": {"line": line, "character": character},
    }


def create_server(base_settings: Settings | None = None, engine: Engine | None = None):
    """Build the server with every handler registered."""
    server = CoderLanguageServer(base_settings, engine)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CoderLanguageServer, params: types.InitializeParams) -> None:
        """initialize: negotiate the position encoding and read initializationOptions."""
        log_to_client(ls)
        ls.encoding = normalize_encoding(ls.workspace.position_encoding)
        item_caps = (
            params.capabilities.text_document
            and params.capabilities.text_document.completion
            and params.capabilities.text_document.completion.completion_item
        )
        formats = (item_caps and item_caps.documentation_format) or ()
        ls.plain_docs = types.MarkupKind.PlainText in formats
        parsed = parse_settings(params.initialization_options, ls.base_settings)
        ls.settings = parsed.settings
        ls._pending_errors = parsed.errors  # shown once the client is initialized
        logging.getLogger("lsp_server").setLevel(ls.settings.log_level.upper())
        logger.info("initialize: encoding=%s model=%s", ls.encoding, ls.settings.model)

    @server.feature(types.INITIALIZED)
    def initialized(ls: CoderLanguageServer, params: types.InitializedParams) -> None:
        """initialized: report settings problems, start loading the model."""
        for err in ls._pending_errors:
            ls.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=f"coder-lsp: {err}")
            )
        ls.engine.configure(ls.settings)
        ls.start_loading()
        ls.start_indexing()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: CoderLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """workspace/didChangeConfiguration: adopt new settings."""
        ls.apply_settings(params.settings, ls.settings)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CoderLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        """textDocument/didOpen."""
        td = params.text_document
        doc = ls.docs.open(td.uri, td.text, td.language_id, td.version)
        if ls.index is not None and doc.path and len(doc.text) <= MAX_PARSE_CHARS:
            ls.index.set_open_document(doc.path, doc.text)
            ls.prewarm(doc)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CoderLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        """textDocument/didChange (incremental)."""
        changes: list[tuple[tuple[int, int, int, int] | None, str]] = []
        for change in params.content_changes:
            rng = getattr(change, "range", None)
            if rng is None:
                changes.append((None, change.text))
            else:
                r = (rng.start.line, rng.start.character, rng.end.line, rng.end.character)
                changes.append((r, change.text))
        doc = ls.docs.change(
            params.text_document.uri, params.text_document.version, changes, ls.encoding
        )
        ls.engine.document_changed(params.text_document.uri)
        if ls.index is not None and doc is not None and doc.path:
            if len(doc.text) <= MAX_PARSE_CHARS:
                ls.index.set_open_document(doc.path, doc.text)
            elif doc.path in ls.index.open_paths():
                # Grown too large to re-tag on each completion: the disk version stands in.
                ls.index.close_document(doc.path)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CoderLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        """textDocument/didClose."""
        doc = ls.docs.get(params.text_document.uri)
        ls.docs.close(params.text_document.uri)
        if ls.index is not None and doc is not None and doc.path:
            ls.index.close_document(doc.path)
        ls.engine.cancel_document(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: CoderLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        """textDocument/didSave: re-index the saved file (its buffer already is current)."""
        path = uri_to_path(params.text_document.uri)
        if ls.index is not None and path:
            ls.index.update_file(path)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: CoderLanguageServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        """workspace/didChangeWatchedFiles: keep the index in step with the disk."""
        if ls.index is None:
            return
        for change in params.changes:
            path = uri_to_path(change.uri)
            if not path:
                continue
            if path.endswith("/.gitignore"):
                # What is ignored changed: walk again (in the background, unchanged files
                # are kept by their (mtime, size)).
                ls._index_task = asyncio.ensure_future(ls._index_with_progress(ls.index))
                return
            if change.type == types.FileChangeType.Deleted:
                ls.index.remove_file(path)
            else:
                ls.index.update_file(path)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CoderLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        """textDocument/inlineCompletion: the completion as ghost text."""
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        completion, offset, text = await ls.run_completion(
            params.text_document.uri, params.position, invoked
        )
        if completion is None:
            return types.InlineCompletionList(items=[])
        # Always a range, even an empty one at the cursor: without one VS Code takes the
        # text to replace the word at the cursor up to the line's end, and a completion
        # typed into the middle of a word ("ret" + "urn a + b") is then never shown.
        item = types.InlineCompletionItem(
            insert_text=completion.text, range=ls.range_for(text, offset, completion)
        )
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(
        ls: CoderLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        """textDocument/completion: the same completion as one item, for popup-only clients."""
        invoked = (
            params.context is None
            or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        )
        result, offset, text = await ls.run_completion(
            params.text_document.uri, params.position, invoked
        )
        if result is None:
            return types.CompletionList(is_incomplete=True, items=[])
        first = result.text.strip().splitlines()[0] if result.text.strip() else result.text
        item = types.CompletionItem(
            label=first[:80],
            kind=types.CompletionItemKind.Text,
            detail="coder-lsp",
            documentation=result.text if ls.plain_docs else None,
            sort_text="0",
            filter_text=first,
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(
                range=ls.range_for(text, offset, result), new_text=result.text
            ),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.command(CMD_STATUS)
    def status(ls: CoderLanguageServer, *args: Any) -> dict[str, Any]:
        """workspace/executeCommand coder-lsp.status: the model's state."""
        return {
            "state": ls.engine.state.value,
            "model": ls.settings.model,
            "error": str(ls.engine.error) if ls.engine.error else None,
            "version": __version__,
        }

    @server.command(CMD_STATS)
    def stats(ls: CoderLanguageServer, *args: Any) -> dict[str, Any]:
        """workspace/executeCommand coder-lsp.stats [since]: figures of recent requests."""
        since = int(args[0]) if args and isinstance(args[0], int) else 0
        records = list(ls.engine.stats)
        return {
            "requests": [r.as_dict() for r in records[since:]],
            "count": len(records),
            "max_waiting": ls.engine.max_waiting,
            "prewarmed": ls.prewarmed,
            "rss_kb": _proc_status_kb("VmRSS"),
            "hwm_kb": _proc_status_kb("VmHWM"),
        }

    @server.command(CMD_PULL_MODEL)
    async def pull_model(ls: CoderLanguageServer, *args: Any) -> dict[str, Any]:
        """workspace/executeCommand coder-lsp.pullModel [name]: download a registry model."""
        name = str(args[0]) if args else ls.settings.model
        return await pull_with_progress(ls, name)

    return server


def _proc_status_kb(field: str) -> int | None:
    """A memory figure of this process from /proc (Linux), in KiB; None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


async def pull_with_progress(ls: CoderLanguageServer, name: str) -> dict[str, Any]:
    """Download a registry model, reporting ``$/progress``; reload when it is the active model."""
    from lsp_server.download import pull
    from lsp_server.registry import load_registry

    try:
        spec = load_registry().get(name)
    except CoderLspError as err:
        ls.show_error_once(str(err))
        return {"ok": False, "error": str(err)}
    token = f"coder-lsp-pull-{uuid.uuid4().hex[:8]}"
    caps = ls.client_capabilities
    use_progress = bool(caps.window and caps.window.work_done_progress)
    loop = asyncio.get_running_loop()
    if use_progress:
        await ls.work_done_progress.create_async(token)
        ls.work_done_progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title="coder-lsp", message=f"Downloading {name}", percentage=0
            ),
        )
    last = [0.0]

    def progress(done: int, total: int | None, message: str) -> None:
        now = time.monotonic()
        if not use_progress or now - last[0] < 0.5:
            return
        last[0] = now
        pct = int(done * 100 / total) if total else None
        loop.call_soon_threadsafe(
            ls.work_done_progress.report,
            token,
            types.WorkDoneProgressReport(message=message, percentage=pct),
        )

    try:
        path = await loop.run_in_executor(None, lambda: pull(spec, progress=progress))
    except Exception as err:  # CoderLspError, or anything unforeseen: end the progress
        message = str(err) if isinstance(err, CoderLspError) else f"download failed: {err!r}"
        if not isinstance(err, CoderLspError):
            logger.exception("pulling %s failed", name)
        if use_progress:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="failed"))
        ls.show_error_once(message)
        return {"ok": False, "error": message}
    if use_progress:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=f"Downloaded {name}"))
    if name == ls.settings.model:
        ls.engine.retry()  # the load failed because the file was missing: try again now
        ls._shown_errors.clear()
        ls.start_loading()
    return {"ok": True, "path": str(path)}
