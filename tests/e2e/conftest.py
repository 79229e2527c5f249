"""Fixtures for the protocol tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tinymodel import FIM_END, write_tiny_model


@pytest.fixture(scope="session")
def endless_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that writes "x" forever: only cancellation or limits stop it."""
    path = tmp_path_factory.mktemp("endless-model") / "endless.gguf"
    return write_tiny_model(path, {FIM_END: "x", "x": "x"})
