"""Tests for the workspace walk: ignore rules, skipped files, links and limits."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from lsp_server.repo.walk import (
    Walker,
    WalkLimits,
    WalkReport,
    is_secret,
    parse_gitignore,
    resolve_roots,
)
from lsp_server.repo.walk import _ignored as ignored


def write(root: Path, rel: str, text: str = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def walked(
    root: Path, limits: WalkLimits | None = None, report: WalkReport | None = None
) -> set[str]:
    walker = Walker(resolve_roots([root]), limits)
    return {f.rel for f in walker.walk(report)}


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.log", "a/b/c.log", False, True),
        ("*.log", "a/b/c.py", False, False),
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        ("docs/", "docs", False, False),
        ("docs/", "x/docs", True, True),
        ("src/*.py", "src/a.py", False, True),
        ("src/*.py", "src/sub/a.py", False, False),
        ("**/gen/*.py", "a/b/gen/x.py", False, True),
        ("logs/**", "logs/a/b.py", False, True),
        ("a/**/b.py", "a/x/y/b.py", False, True),
        ("a/**/b.py", "a/b.py", False, True),
        ("fo?.py", "foo.py", False, True),
        ("[ab].py", "b.py", False, True),
        ("[!ab].py", "b.py", False, False),
    ],
)
def test_gitignore_patterns(pattern: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(parse_gitignore(pattern), path, is_dir) is expected


def test_gitignore_negation_and_comments() -> None:
    rules = parse_gitignore("# comment\n\n*.py\n!keep.py\n")
    assert ignored(rules, "a/drop.py", False)
    assert not ignored(rules, "a/keep.py", False)


def test_nested_gitignore_applies_below_its_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    write(tmp_path, "gen.py")
    write(tmp_path, "sub/gen.py")
    write(tmp_path, "sub/keep.py")
    write(tmp_path, "sub/.gitignore", "gen.py\n")
    write(tmp_path, ".gitignore", "/other/\n")
    write(tmp_path, "other/x.py")
    assert walked(tmp_path) == {"a.py", "gen.py", "sub/keep.py"}


def test_skips_vendored_build_secret_large_and_data_files(tmp_path: Path) -> None:
    write(tmp_path, "main.py")
    for rel in (
        "node_modules/m/index.js",
        ".venv/lib/x.py",
        "build/x.py",
        "dist/x.js",
        "target/x.rs",
        ".git/hooks/x.py",
        "pkg.egg-info/x.py",
    ):
        write(tmp_path, rel)
    for rel in (".env", ".env.local", "id_rsa", "server.pem", "tls.key", "credentials.json"):
        write(tmp_path, rel)
    write(tmp_path, "notes.md", "# notes\n")
    write(tmp_path, "big.py", "x = 1\n" * 400)
    report = WalkReport()
    assert walked(tmp_path, WalkLimits(max_file_bytes=1000), report) == {"main.py"}
    assert report.skipped_large == 1
    assert report.skipped_secret >= 1


@pytest.mark.parametrize(
    "name", [".env", ".env.production", "id_ed25519.pub", "a.PEM", "credentials"]
)
def test_secret_names(name: str) -> None:
    assert is_secret(name)


def test_symlink_loops_and_escapes_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write(root, "a/x.py")
    outside = write(tmp_path, "outside/secret_code.py")
    os.symlink(root, root / "a" / "loop")
    os.symlink(root / "a", root / "a" / "deeper")
    os.symlink(outside, root / "escape.py")
    os.symlink(outside.parent, root / "escape_dir")
    report = WalkReport()
    assert walked(root, report=report) == {"a/x.py"}
    assert report.skipped_links == 4
    walker = Walker(resolve_roots([root]))
    assert walker.accepts(str(root / "escape_dir" / "secret_code.py")) is None
    assert walker.accepts(str(root / "a" / "x.py")) is not None
    assert walker.accepts(str(outside)) is None


def test_file_cap_stops_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(60):
        write(tmp_path, f"d{i % 3}/f{i}.py")
    report = WalkReport()
    with caplog.at_level(logging.WARNING):
        files = walked(tmp_path, WalkLimits(max_files=25), report)
    assert len(files) == 25
    assert report.truncated
    assert "more than 25 indexable files" in caplog.text


def test_entry_cap_bounds_a_huge_tree(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in range(300):
        write(tmp_path, f"data/f{i}.txt", "")
    with caplog.at_level(logging.WARNING):
        report = WalkReport()
        walked(tmp_path, WalkLimits(max_entries=100), report)
    assert report.truncated and report.entries <= 101
    assert "stopped after 100 entries" in caplog.text


def test_huge_ignored_folder_is_pruned_not_scanned(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "data/\n")
    write(tmp_path, "main.py")
    for i in range(300):
        write(tmp_path, f"data/f{i}.py")
    report = WalkReport()
    assert walked(tmp_path, WalkLimits(max_entries=50), report) == {"main.py"}
    assert not report.truncated


def test_home_root_is_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for depth in range(7):
        write(tmp_path, "/".join(["d"] * depth + ["f.py"]))
    with caplog.at_level(logging.WARNING):
        report = WalkReport()
        files = walked(tmp_path, WalkLimits(broad_root_max_depth=3), report)
    assert max(f.count("/") for f in files) == 3
    assert "home folder" in caplog.text


def test_nested_and_missing_roots(tmp_path: Path) -> None:
    (tmp_path / "inner").mkdir()
    roots = resolve_roots([tmp_path, tmp_path / "inner", tmp_path / "missing"])
    assert roots == [os.path.realpath(tmp_path)]


def test_accepts_applies_ignore_rules(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "gen/\n*.tmp.py\n")
    walker = Walker(resolve_roots([tmp_path]))
    assert walker.accepts(str(write(tmp_path, "gen/a.py"))) is None
    assert walker.accepts(str(write(tmp_path, "a.tmp.py"))) is None
    assert walker.accepts(str(write(tmp_path, "node_modules/a.js"))) is None
    assert walker.accepts(str(write(tmp_path, ".env"))) is None
    ok = walker.accepts(str(write(tmp_path, "src/a.py")))
    assert ok is not None and ok.rel == "src/a.py" and ok.language == "python"
    assert walker.accepts(str(tmp_path / "unsaved.py"), buffer_size=10) is not None
