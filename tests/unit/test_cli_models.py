"""Tests for the CLI's model table and download progress bar (lsp_server/cli.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lsp_server.cli import ProgressBar, format_models_table, render_progress
from lsp_server.registry import Registry, load_registry


@pytest.fixture(autouse=True)
def no_user_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the packaged models.toml: a user's own entries must not change the table."""
    monkeypatch.delenv("CODER_LSP_MODELS_TOML", raising=False)
    monkeypatch.setenv("CODER_LSP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_models_table_marks_default_and_downloads(tmp_path: Path) -> None:
    registry = load_registry()
    spec = registry.get("qwen2.5-coder-0.5b")
    with open(tmp_path / spec.file_name, "wb") as f:
        f.truncate(spec.size_bytes)  # sparse: right size, no disk
    table = format_models_table(registry, directory=tmp_path)
    lines = table.splitlines()
    default_row = next(line for line in lines if "deepseek-coder-1.3b-base" in line)
    assert default_row.startswith("* ")
    qwen_row = next(line for line in lines if "qwen2.5-coder-0.5b" in line)
    assert str(tmp_path / spec.file_name) in qwen_row
    assert "0.49 GB" in qwen_row and "32K" in qwen_row and "qwen" in qwen_row
    assert "no" in next(line for line in lines if "33b" in line).split()
    assert "~19.94 GB" in table  # estimated sizes are marked


def test_models_table_lists_user_file_problems() -> None:
    registry = Registry(
        {s.name: s for s in load_registry()}, "qwen2.5-coder-0.5b", ("x.toml: bad entry",)
    )
    assert "warning: x.toml: bad entry" in format_models_table(registry)


def test_render_progress() -> None:
    line = render_progress(250_000_000, 500_000_000, "model.gguf", 12_500_000.0, width=10)
    assert "[#####-----]" in line
    assert "50.0%" in line
    assert "250.0/500.0 MB" in line
    assert "12.5 MB/s" in line
    assert "%" not in render_progress(1_000_000, None, "x", None)


def test_progress_bar_throttles_and_measures_only_new_bytes() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = ProgressBar(out, log_interval_s=1.0, clock=lambda: now[0])
    bar(100_000_000, 200_000_000, "f")  # resumed at 100 MB: first draw
    now[0] = 0.5
    bar(110_000_000, 200_000_000, "f")  # throttled
    now[0] = 2.0
    bar(140_000_000, 200_000_000, "f")  # 40 MB fetched in 2 s
    now[0] = 2.1
    bar(200_000_000, 200_000_000, "f")  # completion always drawn
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "70.0%" in lines[1] and "20.0 MB/s" in lines[1]
    assert "100.0%" in lines[2]


def test_progress_bar_on_a_terminal_redraws_one_line_per_file() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    out = Tty()
    bar = ProgressBar(out, clock=lambda: now[0])
    for step in range(1, 5):
        now[0] = step * 1.0
        bar(step * 25, 100, "a.gguf")
    bar(100, 100, "a.gguf")  # repeats after completion draw nothing
    bar(10, None, "joining")
    bar.close()
    text = out.getvalue()
    finished_line, second = text.split("\n")[:2]
    # Four redraws of one line (25% .. 100%), then the line is ended.
    assert finished_line.count("\r") == 4
    assert "100.0%" in finished_line.rsplit("\r", 1)[1]
    assert second.startswith("\rjoining")
    assert text.endswith("\n") and text.count("\n") == 2
