"""The workspace index: definitions and imports of every source file, kept up to date.

:class:`WorkspaceIndex` walks the workspace roots (see :mod:`lsp_server.repo.walk` for
what is left out and the limits), parses each file once with tree-sitter, keeps its tags
(:mod:`lsp_server.repo.tags`) keyed by ``(path, mtime, size)`` — never its text — and
answers the lookups import resolution and snippet selection need. It is thread-safe:
``build`` runs on a background thread while completions read whatever is indexed so far.

Open documents win over the disk: ``set_open_document`` stores the unsaved text, which
is re-tagged lazily (on the next lookup that needs it, not on every keystroke) and read
instead of the file. Paths given to the public methods are absolute filesystem paths;
paths handed out (``display`` paths) are posix paths relative to the workspace root, or
prefixed by the root's folder name when there are several roots.
"""

from __future__ import annotations

import itertools
import logging
import os
import posixpath
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lsp_server.repo.imports import resolve_imports
from lsp_server.repo.tags import EMPTY_TAGS, FileTags, Tag, extract_tags
from lsp_server.repo.walk import (
    WalkedFile,
    Walker,
    WalkLimits,
    WalkReport,
    index_language,
    resolve_roots,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FileEntry",
    "IndexStats",
    "ProgressFn",
    "WorkspaceIndex",
]

ProgressFn = Callable[[int, int | None, str], None]
"""``progress(done, total, message)``; ``total`` is None while it is not known yet."""

_BINARY_SNIFF = 8192
_PROGRESS_EVERY_S = 0.25
_PATHS_GENERATIONS = itertools.count(1)
"""Source of ``WorkspaceIndex.paths_generation`` values (unique across indexes)."""
_MAX_BUSY_WAIT_S = 5.0
"""Longest the builder pauses for one running completion before it goes on anyway."""
_CONTENT_CACHE_CHARS = 8_000_000
"""Total characters of file text kept for snippet rendering (an LRU)."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """What the index knows about one file (no text: tags hold line numbers)."""

    path: str
    """Absolute path."""
    display: str
    """Posix path shown to the model and used by import resolution."""
    language: str
    mtime_ns: int
    size: int
    tags: FileTags = EMPTY_TAGS
    from_buffer: bool = False
    """True when the tags come from an open document's unsaved text."""


@dataclass(frozen=True, slots=True)
class IndexStats:
    """A summary of the index, for logs, status and benchmarks."""

    files: int
    symbols: int
    bytes: int
    """Total size of the indexed files."""
    elapsed_s: float
    """Duration of the last ``build``."""
    building: bool
    complete: bool
    """True once a build ran to the end (not cancelled)."""
    truncated: bool
    """True when a limit stopped the walk before every file was seen."""
    skipped: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    notes: tuple[str, ...] = ()


class _DiskView:
    """Import resolution's view of the files on disk (for files the index lacks)."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self._index = index

    def has(self, path: str) -> bool:
        target = self._index._path_of_display(path)
        return target is not None and os.path.isfile(target) and not os.path.islink(target)

    def by_basename(self, name: str) -> list[str]:
        return []  # would need the whole tree: resolution falls back to exact paths

    def files_in_dir(self, folder: str) -> list[str]:
        target = self._index._path_of_display(folder) if folder else None
        if folder == "" and len(self._index.roots) == 1:
            target = self._index.roots[0]
        if target is None:
            return []
        try:
            with os.scandir(target) as entries:
                names = [e.name for e in entries if e.is_file(follow_symlinks=False)]
        except OSError:
            return []
        prefix = f"{folder}/" if folder else ""
        return [prefix + n for n in sorted(names)[:1000] if index_language(n) is not None]

    def dirs_named(self, name: str) -> list[str]:
        return []


def _looks_binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_SNIFF]


class WorkspaceIndex:
    """Definitions and imports of the files under some workspace roots (thread-safe)."""

    def __init__(
        self,
        roots: list[Path] | list[str],
        *,
        max_files: int = 20_000,
        max_file_bytes: int = 1_000_000,
        max_entries: int = 400_000,
        limits: WalkLimits | None = None,
    ) -> None:
        """Prepare an empty index of ``roots``; nothing is read until ``build``.

        Args:
            roots: Workspace folders. Links are resolved once here; missing ones are
                dropped with a log line.
            max_files: Most files indexed (a log line says when the workspace has more).
            max_file_bytes: Larger files are skipped.
            max_entries: Most directory entries a build looks at.
            limits: All walk limits at once (overrides the three above).
        """
        self.roots = resolve_roots(list(roots))
        self.walker = Walker(
            self.roots,
            limits
            or WalkLimits(
                max_files=max_files, max_entries=max_entries, max_file_bytes=max_file_bytes
            ),
        )
        self.busy = threading.Event()
        """Set while a completion runs: the builder pauses between files so that it does
        not compete with the model for the CPU (and the GIL)."""
        self._lock = threading.RLock()
        self._files: dict[str, FileEntry] = {}
        self._by_display: dict[str, str] = {}
        self._by_name: dict[str, list[str]] = {}
        self._dirs: dict[str, list[str]] = {}
        self._dir_names: dict[str, list[str]] = {}
        self._open: dict[str, str] = {}
        self._edits: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._content: OrderedDict[str, tuple[int, int, list[str]]] = OrderedDict()
        self._content_chars = 0
        self._generation = 0
        self._paths_generation = next(_PATHS_GENERATIONS)
        self._building = False
        self._complete = False
        self._elapsed = 0.0
        self._report = WalkReport()
        self._binary = 0
        self._read_errors = 0

    # --- paths ---------------------------------------------------------------------------

    def display_path(self, path: str) -> str | None:
        """The display path of the absolute ``path``, or None when outside every root."""
        path = os.path.abspath(path)
        root = self.walker.root_of(path)
        if root is None:
            path = os.path.realpath(path)
            root = self.walker.root_of(path)
        if root is None or path == root:
            return None
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if len(self.roots) > 1:
            rel = f"{os.path.basename(root) or 'root'}/{rel}"
        return rel

    # --- building ------------------------------------------------------------------------

    def build(
        self, progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> IndexStats:
        """Walk the roots and index every new or changed file; drop vanished ones.

        Meant for a background thread; lookups keep working meanwhile with whatever is
        indexed. ``progress`` is called with ``(done, total, message)`` at most every
        quarter second; ``cancel`` stops the build between two files.
        """
        started = time.perf_counter()
        with self._lock:
            self._building = True
        report = WalkReport()
        # A build is also how a changed .gitignore takes effect: read them all again.
        self.walker.forget_ignore_files()
        try:
            if progress:
                progress(0, None, "scanning workspace")
            files = list(self.walker.walk(report, pause=self._wait_while_busy))
            total = len(files)
            if progress:
                progress(0, total, f"indexing {total} files")
            last_report = time.perf_counter()
            seen: set[str] = set()
            cancelled = False
            for done, walked in enumerate(files, 1):
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                self._wait_while_busy()
                seen.add(walked.path)
                self._index_walked(walked)
                now = time.perf_counter()
                if progress and now - last_report >= _PROGRESS_EVERY_S:
                    last_report = now
                    progress(done, total, f"{done}/{total} files")
            if not cancelled and not report.truncated:
                with self._lock:
                    gone = [p for p in self._files if p not in seen and p not in self._open]
                for path in gone:
                    self.remove_file(path)
            if report.truncated and not cancelled:
                with self._lock:
                    open_docs = list(self._open.items())
                for path, text in open_docs:
                    self.add_imported_files(path, text)
            elapsed = time.perf_counter() - started
            with self._lock:
                self._report = report
                self._elapsed = elapsed
                self._complete = not cancelled
                self._building = False
            if progress:
                progress(total, total, "indexing cancelled" if cancelled else "indexed")
            stats = self.stats()
            logger.info(
                "workspace index: %d files, %d symbols in %.1f s%s%s",
                stats.files,
                stats.symbols,
                elapsed,
                " (cancelled)" if cancelled else "",
                f" ({'; '.join(report.notes)})" if report.notes else "",
            )
            return stats
        finally:
            with self._lock:
                self._building = False

    def _wait_while_busy(self) -> None:
        if not self.busy.is_set():
            return
        deadline = time.monotonic() + _MAX_BUSY_WAIT_S
        while self.busy.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _index_walked(self, walked: WalkedFile) -> None:
        with self._lock:
            existing = self._files.get(walked.path)
            if walked.path in self._open:
                return  # the buffer's entry wins; it is re-tagged from the buffer text
        if (
            existing is not None
            and not existing.from_buffer
            and (existing.mtime_ns, existing.size) == (walked.mtime_ns, walked.size)
        ):
            return
        entry = self._read_entry(walked)
        if entry is None:
            self._drop(walked.path)
        else:
            self._put(entry)

    def _read_entry(self, walked: WalkedFile) -> FileEntry | None:
        data = self.walker.read(walked.path)
        if data is None:
            # Unreadable, deleted or no longer a regular file inside the workspace since
            # the walk saw it: not indexed, not fatal.
            self._read_errors += 1
            logger.debug("cannot read %s", walked.path)
            return None
        if len(data) > self.walker.limits.max_file_bytes or _looks_binary(data):
            self._binary += 1
            return None
        display = self.display_path(walked.path)
        if display is None:
            return None
        tags = extract_tags(data, walked.language)
        return FileEntry(
            walked.path, display, walked.language, walked.mtime_ns, len(data), tags, False
        )

    # --- mutation (under the lock) -------------------------------------------------------

    def _put(self, entry: FileEntry) -> None:
        with self._lock:
            old = self._files.get(entry.path)
            if old is not None:
                self._unlink(old)
            self._files[entry.path] = entry
            self._by_display[entry.display] = entry.path
            self._by_name.setdefault(posixpath.basename(entry.display), []).append(entry.display)
            folder = posixpath.dirname(entry.display)
            files = self._dirs.setdefault(folder, [])
            if not files:
                self._dir_names.setdefault(posixpath.basename(folder), []).append(folder)
            files.append(entry.display)
            self._content.pop(entry.display, None)
            self._generation += 1
            if old is None or old.display != entry.display:
                self._paths_generation = next(_PATHS_GENERATIONS)

    def _unlink(self, entry: FileEntry) -> None:
        self._by_display.pop(entry.display, None)
        _remove_from(self._by_name, posixpath.basename(entry.display), entry.display)
        folder = posixpath.dirname(entry.display)
        _remove_from(self._dirs, folder, entry.display)
        if folder not in self._dirs:
            _remove_from(self._dir_names, posixpath.basename(folder), folder)
        cached = self._content.pop(entry.display, None)
        if cached is not None:
            self._content_chars -= sum(map(len, cached[2])) + len(cached[2])

    def _drop(self, path: str) -> None:
        with self._lock:
            entry = self._files.pop(path, None)
            if entry is not None:
                self._unlink(entry)
                self._generation += 1
                self._paths_generation = next(_PATHS_GENERATIONS)

    # --- public updates ------------------------------------------------------------------

    def update_file(self, path: str | Path) -> bool:
        """Re-index one file after a save or a watcher event; True when it is indexed.

        A file that no longer exists, or that the walk rules exclude, is dropped. An
        open document keeps its buffer text (it wins over the disk until closed).
        """
        path = os.path.abspath(str(path))
        with self._lock:
            if path in self._open:
                self._dirty.add(path)
                return True
        walked = self.walker.accepts(path)
        if walked is None:
            self._drop(path)
            return False
        entry = self._read_entry(walked)
        if entry is None:
            self._drop(path)
            return False
        self._put(entry)
        return True

    def remove_file(self, path: str | Path) -> None:
        """Forget one file (deleted on disk, or no longer wanted)."""
        path = os.path.abspath(str(path))
        with self._lock:
            if path in self._open:
                return
        self._drop(path)

    def set_open_document(self, path: str | Path, text: str) -> None:
        """Record an open document's current (possibly unsaved) text; it wins over disk.

        Cheap enough for every ``didChange``: the text is re-tagged only when a lookup
        needs it.
        """
        path = os.path.abspath(str(path))
        with self._lock:
            self._open[path] = text
            self._edits[path] = self._edits.get(path, 0) + 1
            self._dirty.add(path)
            display = self.display_path(path)
            if display is not None:
                cached = self._content.pop(display, None)
                if cached is not None:
                    self._content_chars -= sum(map(len, cached[2])) + len(cached[2])
            self._generation += 1

    def open_paths(self) -> set[str]:
        """Absolute paths of the open documents the index holds buffers for."""
        with self._lock:
            return set(self._open)

    def add_imported_files(self, path: str | Path, text: str) -> int:
        """Index the files an open document imports when the walk's file cap left them out.

        A workspace with more files than the cap (say 50,000 before ``pkg/``) must still
        give the model the definitions the file being edited imports. Imports are resolved
        against the disk (only paths the walk rules accept are read); returns how many
        files were added. These few files come on top of the cap.
        """
        path = os.path.abspath(str(path))
        display = self.display_path(path)
        language = index_language(path)
        if display is None or language is None:
            return 0
        imports = extract_tags(text, language).imports
        if not imports:
            return 0
        added = 0
        for item in resolve_imports(_DiskView(self), display, language, imports)[:64]:
            target = self._path_of_display(item.path)
            with self._lock:
                known = target is None or target in self._files
            if known:
                continue
            walked = self.walker.accepts(target)
            entry = self._read_entry(walked) if walked is not None else None
            if entry is not None:
                self._put(entry)
                added += 1
        if added:
            logger.info("indexed %d imported files the file limit had left out", added)
        return added

    def _path_of_display(self, display: str) -> str | None:
        """The absolute path a display path names (whether indexed or not)."""
        if len(self.roots) == 1:
            return os.path.join(self.roots[0], *display.split("/"))
        head, _, rest = display.partition("/")
        for root in self.roots:
            if (os.path.basename(root) or "root") == head:
                return os.path.join(root, *rest.split("/"))
        return None

    def close_document(self, path: str | Path) -> None:
        """Forget an open document's buffer; the file on disk is indexed again."""
        path = os.path.abspath(str(path))
        with self._lock:
            self._open.pop(path, None)
            self._edits.pop(path, None)
            self._dirty.discard(path)
        self.update_file(path)

    def refresh(self) -> None:
        """Re-tag the open documents edited since their last tagging (cheap when none)."""
        self._refresh_buffers()

    def _refresh_buffers(self) -> None:
        """Re-tag open documents edited since their last tagging (outside hot loops)."""
        with self._lock:
            if not self._dirty:
                return
            pending = [(p, self._open.get(p)) for p in self._dirty]
            self._dirty.clear()
        for path, text in pending:
            if text is None:
                continue
            walked = self.walker.accepts(path, buffer_size=len(text.encode("utf-8", "replace")))
            display = self.display_path(path)
            if walked is None or display is None:
                self._drop(path)
                continue
            tags = extract_tags(text, walked.language)
            with self._lock:
                if self._open.get(path) is not text:
                    self._dirty.add(path)  # edited again meanwhile; the next lookup redoes it
            self._put(FileEntry(path, display, walked.language, 0, len(text), tags, True))

    # --- lookups -------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """A counter that changes whenever the index changes (for caches)."""
        return self._generation

    @property
    def building(self) -> bool:
        """True while a build walks the workspace."""
        return self._building

    @property
    def paths_generation(self) -> int:
        """A number that changes only when a file is added or removed.

        Import resolution depends on which paths exist, not on their contents: caches of
        resolved imports stay valid while files are merely edited. Drawn from one
        process-wide counter, so two indexes never share a value.
        """
        return self._paths_generation

    def entry(self, display: str) -> FileEntry | None:
        """The entry of a display path (open documents re-tagged first)."""
        self._refresh_buffers()
        with self._lock:
            path = self._by_display.get(display)
            return self._files.get(path) if path is not None else None

    def has(self, display: str) -> bool:
        """True when ``display`` is an indexed file."""
        return display in self._by_display

    def by_basename(self, name: str) -> list[str]:
        """Display paths of the indexed files called ``name``."""
        with self._lock:
            return list(self._by_name.get(name, ()))

    def files_in_dir(self, folder: str) -> list[str]:
        """Display paths of the indexed files directly inside ``folder``."""
        with self._lock:
            return list(self._dirs.get(folder, ()))

    def dirs_named(self, name: str) -> list[str]:
        """Display paths of the folders called ``name`` that hold indexed files."""
        with self._lock:
            return list(self._dir_names.get(name, ()))

    def open_documents(self) -> list[str]:
        """Display paths of the open documents inside the workspace."""
        with self._lock:
            paths = list(self._open)
        return [d for d in (self.display_path(p) for p in paths) if d is not None]

    def lines(self, display: str) -> list[str] | None:
        """The text of an indexed file as lines (the open buffer when there is one)."""
        with self._lock:
            path = self._by_display.get(display)
            if path is None:
                return None
            text = self._open.get(path)
            entry = self._files.get(path)
            cached = self._content.get(display)
            if text is not None:
                return text.split("\n")
            if (
                entry is not None
                and cached is not None
                and cached[:2] == (entry.mtime_ns, entry.size)
            ):
                self._content.move_to_end(display)
                return cached[2]
        data = self.walker.read(path)
        if data is None or len(data) > self.walker.limits.max_file_bytes:
            return None
        lines = data.decode("utf-8", "replace").split("\n")
        if entry is not None:
            with self._lock:
                self._content[display] = (entry.mtime_ns, entry.size, lines)
                self._content_chars += len(data)
                while self._content_chars > _CONTENT_CACHE_CHARS and len(self._content) > 1:
                    _, (_, _, old) = self._content.popitem(last=False)
                    self._content_chars -= sum(map(len, old)) + len(old)
        return lines

    def entry_tags(self, display: str) -> FileTags | None:
        """The tags of one indexed file, or None when it is not indexed."""
        entry = self.entry(display)
        return entry.tags if entry is not None else None

    def file_version(self, display: str) -> tuple[int, int, int] | None:
        """A key that changes whenever the file's text changes (disk stamp or buffer edit)."""
        with self._lock:
            path = self._by_display.get(display)
            if path is None:
                return None
            if path in self._open:
                return (-1, len(self._open[path]), self._edits.get(path, 0))
            entry = self._files.get(path)
            return (entry.mtime_ns, entry.size, 0) if entry is not None else None

    def tags_of(self, display: str) -> tuple[Tag, ...]:
        """The definitions of one indexed file (empty when unknown)."""
        entry = self.entry(display)
        return entry.tags.tags if entry is not None else ()

    def stats(self) -> IndexStats:
        """A summary of what is indexed and what was skipped."""
        with self._lock:
            report = self._report
            return IndexStats(
                files=len(self._files),
                symbols=sum(len(e.tags.tags) for e in self._files.values()),
                bytes=sum(e.size for e in self._files.values()),
                elapsed_s=self._elapsed,
                building=self._building,
                complete=self._complete,
                truncated=report.truncated,
                skipped={
                    "large": report.skipped_large,
                    "secret": report.skipped_secret,
                    "ignored": report.skipped_ignored,
                    "links": report.skipped_links,
                    "binary": self._binary,
                },
                errors=report.errors + self._read_errors,
                notes=tuple(report.notes),
            )


def _remove_from(table: dict[str, list[str]], key: str, value: str) -> None:
    values = table.get(key)
    if values is None:
        return
    try:
        values.remove(value)
    except ValueError:
        return
    if not values:
        del table[key]
