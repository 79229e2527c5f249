"""Find the files of a workspace worth indexing, safely and within fixed limits.

The walk is breadth-first (shallow files first, so a capped walk keeps a project's own
top-level code), never follows symbolic links (no loops, no escape from the roots),
prunes vendored and build folders and folders that ``.gitignore`` files exclude
(nested ones included, with ``!`` re-includes), and leaves out secrets, files over the
size limit and files no grammar is known for. Every limit is explicit: the number of
files yielded, the number of directory entries looked at, and stricter ones when a root
is the filesystem root or the home folder.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lsp_server.languages import language_for, spec_for
from lsp_server.safe_io import read_regular_file

logger = logging.getLogger(__name__)

__all__ = [
    "SKIP_DIRS",
    "IgnoreRule",
    "WalkLimits",
    "WalkReport",
    "WalkedFile",
    "Walker",
    "index_language",
    "is_secret",
    "parse_gitignore",
    "read_regular_file",
]

SKIP_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "bower_components",
        "jspm_packages",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        "dist",
        "build",
        "target",
        "out",
        ".next",
        ".nuxt",
        ".gradle",
        ".idea",
        ".vscode-test",
        ".cache",
        "vendor",
        "_vendor",
        "third_party",
        ".terraform",
        ".eggs",
        # Folders that hold keys rather than code.
        ".ssh",
        ".gnupg",
        ".aws",
        ".kube",
        ".docker",
    }
)
"""Folder names never descended into: VCS data, dependencies, build output, key stores."""

_SKIP_DIR_SUFFIXES = (".egg-info", ".dist-info")

_SYSTEM_DIRS = frozenset({"proc", "sys", "dev", "run", "snap", "lost+found", "tmp", "var"})
"""Top-level folders of ``/`` skipped when a workspace root is the filesystem root."""

_SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.ppk",
    "*.asc",
    "*.gpg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    "*.credentials",
    "client_secret*.json",
    "service-account*.json",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    "secrets.*",
    "*.secret",
    "*.secrets",
)
"""File-name patterns (matched lower-cased) of files that may hold secrets."""

_SECRET_RE = re.compile("|".join(fnmatch.translate(p) for p in _SECRET_PATTERNS))


def is_secret(name: str) -> bool:
    """True when a file name looks like a secret (keys, ``.env`` files, credentials)."""
    return _SECRET_RE.fullmatch(name.lower()) is not None


def index_language(path: str) -> str | None:
    """The grammar of a source file worth indexing, or None (data, prose, unknown)."""
    language = language_for(None, path)
    spec = spec_for(language)
    if language is None or (spec is not None and not spec.code):
        return None
    return language


# --- .gitignore --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One pattern of a ``.gitignore`` file, compiled."""

    base: str
    """Folder of the ignore file, relative to the root ('' for the root), posix style."""
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool
    """True when the pattern contains a slash: it matches the path below ``base``;
    otherwise it matches the last path component at any depth."""

    def matches(self, rel: str, is_dir: bool) -> bool:
        """True when the rule's pattern matches ``rel`` (relative to the root)."""
        if self.dir_only and not is_dir:
            return False
        if self.base:
            if not rel.startswith(self.base + "/"):
                return False
            rel = rel[len(self.base) + 1 :]
        target = rel if self.anchored else rel.rsplit("/", 1)[-1]
        return self.regex.fullmatch(target) is not None


def _glob_to_regex(pattern: str) -> str:
    """Translate one gitignore glob to a regular expression (``**``, ``*``, ``?``, ``[]``)."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                before_ok = i == 0 or pattern[i - 1] == "/"
                after = pattern[i + 2 : i + 3]
                if before_ok and after == "/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if before_ok and after == "":
                    out.append(".*")
                    i += 2
                    continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            close = pattern.find("]", i + 2)
            if close < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : close]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = close
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def parse_gitignore(text: str, base: str = "") -> list[IgnoreRule]:
    """Compile the patterns of one ``.gitignore`` whose folder is ``base`` (posix, relative)."""
    rules: list[IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.rstrip("\n\r")
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        try:
            regex = re.compile(_glob_to_regex(line))
        except re.error:
            logger.debug("ignoring unparsable .gitignore pattern %r", raw)
            continue
        rules.append(IgnoreRule(base, regex, negate, dir_only, anchored))
    return rules


def _ignored(rules: list[IgnoreRule], rel: str, is_dir: bool) -> bool:
    """Git's rule: the last matching pattern decides (deeper files come later)."""
    for rule in reversed(rules):
        if rule.matches(rel, is_dir):
            return not rule.negate
    return False


# --- the walk ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalkLimits:
    """Bounds on one walk."""

    max_files: int = 20_000
    """Most files yielded."""
    max_entries: int = 400_000
    """Most directory entries looked at (files and folders, ignored ones included)."""
    max_file_bytes: int = 1_000_000
    """Larger files are skipped (generated code, data)."""
    broad_root_max_files: int = 2_000
    """``max_files`` when a root is ``/`` or the home folder."""
    broad_root_max_depth: int = 4
    """Deepest folder level walked below such a root."""
    skip_dirs: frozenset[str] = SKIP_DIRS
    """Folder names never descended into."""


@dataclass(slots=True)
class WalkReport:
    """What a walk saw and skipped, for stats and logs."""

    files: int = 0
    entries: int = 0
    dirs: int = 0
    skipped_large: int = 0
    skipped_secret: int = 0
    skipped_ignored: int = 0
    skipped_links: int = 0
    errors: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WalkedFile:
    """One file to index."""

    path: str
    """Absolute path."""
    rel: str
    """Path relative to its root, posix style."""
    root: str
    mtime_ns: int
    size: int
    language: str


def _is_broad_root(root: str) -> bool:
    home = os.path.realpath(os.path.expanduser("~"))
    return root == os.path.sep or root == home or os.path.dirname(root) == root


def _read_small(path: str, limit: int = 256_000) -> str | None:
    data = read_regular_file(path, limit)
    return None if data is None else data[:limit].decode("utf-8", "replace")


class Walker:
    """Walks workspace roots and answers whether one path belongs to the index."""

    def __init__(self, roots: list[str], limits: WalkLimits | None = None) -> None:
        """``roots`` must be absolute, resolved (``os.path.realpath``) folder paths."""
        self.roots = roots
        self.limits = limits or WalkLimits()
        self._rules_cache: dict[str, list[IgnoreRule]] = {}

    def forget_ignore_files(self) -> None:
        """Drop the parsed ``.gitignore`` files (one changed): the next walk reads them anew."""
        self._rules_cache.clear()

    def read(self, path: str) -> bytes | None:
        """A file's bytes (up to the size limit + 1) if it is a regular file whose real
        path is inside a root; None otherwise (see :func:`read_regular_file`)."""
        real = os.path.realpath(path)
        if self.root_of(real) is None:
            return None  # a folder on the way was replaced by a link out of the workspace
        return read_regular_file(real, self.limits.max_file_bytes)

    def root_of(self, path: str) -> str | None:
        """The root that contains ``path`` (deepest first), or None."""
        best: str | None = None
        for root in self.roots:
            prefix = root if root.endswith(os.path.sep) else root + os.path.sep
            if (path == root or path.startswith(prefix)) and (
                best is None or len(root) > len(best)
            ):
                best = root
        return best

    def _dir_rules(self, root: str, rel_dir: str) -> list[IgnoreRule]:
        """Rules of the ``.gitignore`` in one folder (and ``.git/info/exclude`` at a root)."""
        key = os.path.join(root, rel_dir)
        cached = self._rules_cache.get(key)
        if cached is not None:
            return cached
        rules: list[IgnoreRule] = []
        if not rel_dir:
            exclude = _read_small(os.path.join(root, ".git", "info", "exclude"))
            if exclude:
                rules.extend(parse_gitignore(exclude, ""))
        text = _read_small(os.path.join(key, ".gitignore"))
        if text:
            rules.extend(parse_gitignore(text, rel_dir))
        if len(self._rules_cache) > 50_000:
            self._rules_cache.clear()
        self._rules_cache[key] = rules
        return rules

    def _skip_dir_name(self, name: str, root: str, rel: str) -> bool:
        if name in self.limits.skip_dirs or name.endswith(_SKIP_DIR_SUFFIXES):
            return True
        return "/" not in rel and root == os.path.sep and name in _SYSTEM_DIRS

    def accepts(self, path: str, buffer_size: int | None = None) -> WalkedFile | None:
        """The index entry facts of one file, or None when it must not be indexed.

        Applies every rule of the walk to a single path (used on save, on file watcher
        events and for open buffers): inside a root without passing through a link, not
        in a skipped or ignored folder, not a secret, not too large, a known code
        language. With ``buffer_size`` (an open buffer's length) the file need not
        exist on disk.
        """
        path = os.path.abspath(path)
        root = self.root_of(path)
        if root is None:
            # The client may name the file through a link to the root (e.g. /tmp on macOS).
            path = os.path.realpath(path)
            root = self.root_of(path)
        if root is None or path == root:
            return None
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        parts = rel.split("/")
        if any(p in ("..", "") for p in parts):
            return None
        name = parts[-1]
        if is_secret(name) or index_language(name) is None:
            return None
        rules: list[IgnoreRule] = list(self._dir_rules(root, ""))
        current = root
        for depth, part in enumerate(parts[:-1]):
            current = os.path.join(current, part)
            rel_dir = "/".join(parts[: depth + 1])
            if self._skip_dir_name(part, root, rel_dir) or os.path.islink(current):
                return None
            if _ignored(rules, rel_dir, True):
                return None
            rules.extend(self._dir_rules(root, rel_dir))
        if _ignored(rules, rel, False):
            return None
        language = index_language(name)
        if language is None:
            return None
        if buffer_size is not None:
            if buffer_size > self.limits.max_file_bytes:
                return None
            return WalkedFile(path, rel, root, 0, buffer_size, language)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size > self.limits.max_file_bytes:
            return None
        return WalkedFile(path, rel, root, st.st_mtime_ns, st.st_size, language)

    def walk(
        self, report: WalkReport | None = None, pause: Callable[[], None] | None = None
    ) -> Iterator[WalkedFile]:
        """Yield the files to index, breadth-first over all roots, within the limits.

        ``pause`` is called before each folder is listed (the index passes a wait that
        returns once no completion is running).
        """
        report = report if report is not None else WalkReport()
        limits = self.limits
        max_files = limits.max_files
        max_depth: int | None = None
        for root in self.roots:
            if _is_broad_root(root):
                max_files = min(max_files, limits.broad_root_max_files)
                max_depth = limits.broad_root_max_depth
                note = (
                    f"workspace root {root} is the filesystem root or the home folder: "
                    f"indexing capped at {max_files} files and {max_depth} folder levels"
                )
                report.notes.append(note)
                logger.warning("%s", note)
        queue: deque[tuple[str, str, str, list[IgnoreRule], int]] = deque(
            (root, root, "", list(self._dir_rules(root, "")), 0) for root in self.roots
        )
        seen_roots: set[str] = set()
        while queue:
            root, folder, rel_dir, rules, depth = queue.popleft()
            if pause is not None:
                pause()
            if folder in seen_roots and not rel_dir:
                continue
            if not rel_dir:
                seen_roots.add(folder)
            report.dirs += 1
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as err:
                report.errors += 1
                logger.debug("cannot list %s: %s", folder, err)
                continue
            for entry in entries:
                report.entries += 1
                if report.entries > limits.max_entries:
                    report.truncated = True
                    note = (
                        f"workspace walk stopped after {limits.max_entries} entries; "
                        f"indexed {report.files} files"
                    )
                    report.notes.append(note)
                    logger.warning("%s", note)
                    return
                name = entry.name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                try:
                    if entry.is_symlink():
                        # Links are never followed: no loops, nothing outside the roots.
                        report.skipped_links += 1
                        continue
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if is_dir:
                        if self._skip_dir_name(name, root, rel) or _ignored(rules, rel, True):
                            report.skipped_ignored += 1
                            continue
                        if max_depth is not None and depth + 1 > max_depth:
                            continue
                        child_rules = rules
                        own = self._dir_rules(root, rel)
                        if own:
                            child_rules = [*rules, *own]
                        queue.append((root, entry.path, rel, child_rules, depth + 1))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if is_secret(name):
                        report.skipped_secret += 1
                        continue
                    language = index_language(name)
                    if language is None:
                        continue
                    if _ignored(rules, rel, False):
                        report.skipped_ignored += 1
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError as err:
                    # Deleted or unreadable while we looked: skip it, keep walking.
                    report.errors += 1
                    logger.debug("cannot stat %s: %s", entry.path, err)
                    continue
                if st.st_size > limits.max_file_bytes:
                    report.skipped_large += 1
                    continue
                report.files += 1
                yield WalkedFile(entry.path, rel, root, st.st_mtime_ns, st.st_size, language)
                if report.files >= max_files:
                    report.truncated = True
                    note = (
                        f"workspace has more than {max_files} indexable files; "
                        f"indexed the first {max_files}"
                    )
                    report.notes.append(note)
                    logger.warning("%s", note)
                    return


def resolve_roots(roots: list[Path] | list[str]) -> list[str]:
    """Absolute, link-free, existing, de-duplicated folder paths of ``roots``."""
    out: list[str] = []
    for root in roots:
        real = os.path.realpath(os.path.expanduser(str(root)))
        if os.path.isdir(real) and real not in out:
            out.append(real)
        elif not os.path.isdir(real):
            logger.warning("workspace root %s is not a folder; not indexed", root)

    # A root inside another root would be walked twice: keep the outer one.
    def inside(inner: str, outer: str) -> bool:
        return inner != outer and inner.startswith(outer.rstrip(os.sep) + os.sep)

    return [r for r in out if not any(inside(r, other) for other in out)]
