"""Tests for the workspace index: build, updates, open buffers, bad input."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from lsp_server.repo import index as index_module
from lsp_server.repo.index import WorkspaceIndex
from lsp_server.repo.walk import WalkedFile, Walker


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def top_level(index: WorkspaceIndex, display: str) -> list[str]:
    """Names of the top-level definitions the index holds for one file."""
    return [t.name for t in index.tags_of(display) if t.parent is None]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/shapes.py", "class Square:\n    def area(self):\n        return 1\n")
    write(tmp_path, "pkg/main.py", "from .shapes import Square\n\nprint(Square())\n")
    write(tmp_path, "web/app.ts", "export function serve(port: number) { return port }\n")
    return tmp_path


def test_build_indexes_definitions_and_reports_progress(project: Path) -> None:
    index = WorkspaceIndex([project])
    calls: list[tuple[int, int | None, str]] = []
    stats = index.build(progress=lambda done, total, msg: calls.append((done, total, msg)))
    assert stats.files == 4 and stats.complete and not stats.building
    assert top_level(index, "pkg/shapes.py") == ["Square"]
    assert top_level(index, "web/app.ts") == ["serve"]
    assert calls[0] == (0, None, "scanning workspace")
    assert calls[-1][0] == calls[-1][1] == 4


def test_update_and_remove(project: Path) -> None:
    index = WorkspaceIndex([project])
    index.build()
    shapes = project / "pkg" / "shapes.py"
    shapes.write_text("class Circle:\n    pass\n")
    os.utime(shapes, ns=(1, 10**18))
    assert index.update_file(shapes)
    assert top_level(index, "pkg/shapes.py") == ["Circle"]
    shapes.unlink()
    assert not index.update_file(shapes)
    assert top_level(index, "pkg/shapes.py") == [] and not index.has("pkg/shapes.py")
    index.remove_file(project / "web" / "app.ts")
    assert index.stats().files == 2


def test_rebuild_skips_unchanged_files_and_drops_deleted(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = WorkspaceIndex([project])
    index.build()
    (project / "web" / "app.ts").unlink()
    parsed: list[str] = []
    real = index_module.extract_tags
    monkeypatch.setattr(
        index_module, "extract_tags", lambda d, lang: parsed.append(lang) or real(d, lang)
    )
    index.build()
    assert parsed == []  # nothing changed on disk: nothing re-parsed
    assert not index.has("web/app.ts")


def test_open_document_wins_over_disk(project: Path) -> None:
    index = WorkspaceIndex([project])
    index.build()
    shapes = project / "pkg" / "shapes.py"
    index.set_open_document(shapes, "def unsaved():\n    pass\n")
    assert [t.name for t in index.tags_of("pkg/shapes.py")] == ["unsaved"]
    assert index.lines("pkg/shapes.py") == ["def unsaved():", "    pass", ""]
    index.update_file(shapes)  # a save event does not replace the buffer
    assert [t.name for t in index.tags_of("pkg/shapes.py")] == ["unsaved"]
    index.close_document(shapes)
    assert [t.name for t in index.tags_of("pkg/shapes.py")] == ["Square", "area"]
    assert index.lines("pkg/shapes.py")[0] == "class Square:"


def test_new_unsaved_buffer_is_indexed_but_not_secrets(project: Path) -> None:
    index = WorkspaceIndex([project])
    index.build()
    index.set_open_document(project / "pkg" / "new.py", "def fresh(): pass\n")
    index.set_open_document(project / ".env", "TOKEN=x\n")
    assert index.tags_of("pkg/new.py")[0].name == "fresh"
    assert not index.has(".env")


def test_invalid_utf8_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "latin.py").write_bytes(b"# caf\xe9\ndef ok():\n    return '\xff'\n")
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02def x(): pass\n")
    index = WorkspaceIndex([tmp_path])
    stats = index.build()
    assert top_level(index, "latin.py") == ["ok"]
    assert not index.has("blob.py") and stats.skipped["binary"] == 1
    assert index.lines("latin.py")[0] == "# caf\ufffd"


def test_unreadable_and_vanishing_files_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.py", "def good(): pass\n")
    locked = write(tmp_path, "locked.py", "def locked(): pass\n")
    real_open = os.open

    def guarded_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Tests run as root, where chmod 000 still reads: refuse like the OS would.
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    real_walk = Walker.walk

    def walk_with_ghost(self, report=None, pause=None):  # type: ignore[no-untyped-def]
        yield from real_walk(self, report, pause)
        yield WalkedFile(str(tmp_path / "gone.py"), "gone.py", str(tmp_path), 1, 10, "python")

    monkeypatch.setattr(Walker, "walk", walk_with_ghost)
    index = WorkspaceIndex([tmp_path])
    with caplog.at_level(logging.DEBUG, logger="lsp_server.repo.index"):
        stats = index.build()
    assert top_level(index, "good.py") == ["good"]
    assert stats.files == 1 and stats.errors == 2
    assert "cannot read" in caplog.text


def test_cancel_stops_the_build(project: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    index = WorkspaceIndex([project])
    stats = index.build(cancel=cancel)
    assert stats.files == 0 and not stats.complete


def test_busy_pauses_the_builder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = WorkspaceIndex([project])
    index.busy.set()
    monkeypatch.setattr(index_module, "_MAX_BUSY_WAIT_S", 0.05)
    timer = threading.Timer(0.1, index.busy.clear)
    timer.start()
    stats = index.build()
    timer.join()
    assert stats.files == 4


def test_non_git_folder_and_multiple_roots(tmp_path: Path) -> None:
    write(tmp_path, "one/a.py", "def a(): pass\n")
    write(tmp_path, "two/b.py", "def b(): pass\n")
    index = WorkspaceIndex([tmp_path / "one", tmp_path / "two", tmp_path / "none"])
    index.build()
    assert top_level(index, "one/a.py") == ["a"] and top_level(index, "two/b.py") == ["b"]
    assert index.display_path(str(tmp_path / "elsewhere.py")) is None


def test_file_cap_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(30):
        write(tmp_path, f"f{i}.py", f"def f{i}(): pass\n")
    with caplog.at_level(logging.WARNING):
        stats = WorkspaceIndex([tmp_path], max_files=10).build()
    assert stats.files == 10 and stats.truncated
    assert stats.notes and "more than 10" in stats.notes[0]
