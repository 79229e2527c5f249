"""``coder-lsp complete`` with the tiny deterministic model: JSON output and --explain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tinymodel import DEFAULT_COMPLETION, write_tiny_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


def run_complete(model: Path, file: Path, where: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, "-m", "lsp_server", "complete", f"{file}:{where}"),
            *("--model", str(model), "--n-threads", "1", *flags),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_json_output_carries_the_raw_text_and_the_completion(tiny: Path, tmp_path: Path) -> None:
    source = tmp_path / "add.py"
    source.write_text("def add(a, b):\n    \n\nprint(add(1, 2))\n")
    proc = run_complete(tiny, source, "2:5", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["completion"] == DEFAULT_COMPLETION
    assert out["raw"].strip() == DEFAULT_COMPLETION
    assert out["shape"] == "block" and out["template"] == "deepseek"


def test_explain_shows_the_rule_that_removed_the_completion(tiny: Path, tmp_path: Path) -> None:
    # The model writes `return a + b`, which the next line already holds.
    source = tmp_path / "add.py"
    source.write_text("def add(a, b):\n    \n    return a + b\n")
    proc = run_complete(tiny, source, "2:5", "--explain")
    assert proc.returncode == 3  # no completion
    assert proc.stdout.strip() == ""
    assert "[coder-lsp] raw model text: " in proc.stderr and DEFAULT_COMPLETION in proc.stderr
    assert "[coder-lsp] remove_suffix_overlap: 'return a + b' -> ''" in proc.stderr


def test_workspace_puts_imported_definitions_in_the_shown_prompt(
    tiny: Path, tmp_path: Path
) -> None:
    (tmp_path / "geometry.py").write_text(
        "def rectangle_area(width: float, height: float) -> float:\n"
        '    """The area of a rectangle."""\n'
        "    return width * height\n"
    )
    (tmp_path / ".env").write_text("API_KEY=do-not-leak-this\n")
    source = tmp_path / "main.py"
    source.write_text("from geometry import rectangle_area\n\n\ndef total(shapes):\n    \n")
    proc = run_complete(tiny, source, "5:5", "--workspace", str(tmp_path), "--show-prompt")
    assert proc.returncode == 0, proc.stderr
    prompt = proc.stderr.split("[coder-lsp] prompt:\n", 1)[1].split("[coder-lsp] end of prompt")[0]
    # DeepSeek-Coder's repository format: each file under a comment with its path, the
    # current file last, then the FIM prompt of the current file.
    assert prompt.startswith("<｜fim▁begin｜>#geometry.py\ndef rectangle_area(width: float")
    assert "\n#main.py\nfrom geometry import rectangle_area\n" in prompt  # not its full path
    assert prompt.index("#main.py") < prompt.index("<｜fim▁hole｜>")
    assert "do-not-leak-this" not in prompt
    assert "indexed 2 files" in proc.stderr
    # Without --workspace only the file goes in.
    alone = run_complete(tiny, source, "5:5", "--show-prompt")
    assert "rectangle_area(width" not in alone.stderr
    missing = run_complete(tiny, source, "5:5", "--workspace", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "not a folder" in missing.stderr
