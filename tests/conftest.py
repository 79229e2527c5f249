"""Shared pytest fixtures: the tiny deterministic GGUF model (see tests/tinymodel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tinymodel import write_tiny_model


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DeepSeek-shaped GGUF whose greedy completion of any FIM prompt is
    ``tests.tinymodel.DEFAULT_COMPLETION`` ("return a + b"), built once per session."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny.gguf")
