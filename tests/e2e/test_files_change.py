"""Files that change under the server (issue 16, rows 8 and 9): an indexed file later
replaced by a link out of the workspace or by a FIFO is never read."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.e2e.rawlsp import StdioServer
from tests.tinymodel import DEFAULT_COMPLETION

MAIN = "from lib import helper\nfrom good import nice\n\n\ndef add(a, b):\n    \n"


async def _wait_for_log(server: StdioServer, needle: bytes, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in server.stderr:
        assert loop.time() < deadline, server.stderr[-2000:]
        await asyncio.sleep(0.05)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lib.py").write_text("def helper(x):\n    return x  # LIB_ORIGINAL\n")
    (ws / "good.py").write_text("def nice(y):\n    return y  # GOOD_MARKER\n")
    (tmp_path / "outside.py").write_text("def helper(x):\n    return 'OUTSIDE_SECRET'\n")
    return ws


async def _start(model: Path, ws: Path) -> StdioServer:
    server = await StdioServer.start()
    await server.initialize(model, root_uri=ws.as_uri(), logLevel="debug")
    await _wait_for_log(server, b"workspace index: 2 files")
    return server


async def test_row08_an_indexed_file_replaced_by_a_link_outside_is_not_read(
    tiny_model_path, workspace
):
    server = await _start(tiny_model_path, workspace)
    try:
        lib = workspace / "lib.py"
        lib.unlink()
        lib.symlink_to(workspace.parent / "outside.py")
        uri = (workspace / "main.py").as_uri()
        server.open(uri, MAIN)
        assert await server.complete(uri, line=5, character=4) == DEFAULT_COMPLETION
        await _wait_for_log(server, b"prompt for")
        assert b"GOOD_MARKER" in server.stderr  # repository context does reach the prompt
        assert b"OUTSIDE_SECRET" not in server.stderr
    finally:
        await server.close()


async def test_row08_a_folder_replaced_by_a_link_outside_is_not_read(tiny_model_path, workspace):
    pkg = workspace / "pkg"
    pkg.mkdir()
    (pkg / "lib.py").write_text("def helper(x):\n    return x\n")
    outside = workspace.parent / "outside_pkg"
    outside.mkdir()
    (outside / "lib.py").write_text("def helper(x):\n    return 'OUTSIDE_SECRET'\n")
    server = await StdioServer.start()
    try:
        await server.initialize(tiny_model_path, root_uri=workspace.as_uri(), logLevel="debug")
        await _wait_for_log(server, b"workspace index: 3 files")
        (pkg / "lib.py").unlink()
        pkg.rmdir()
        pkg.symlink_to(outside)
        uri = (workspace / "main.py").as_uri()
        server.open(uri, "from pkg.lib import helper\n\n\ndef add(a, b):\n    \n")
        assert await server.complete(uri, line=4, character=4) == DEFAULT_COMPLETION
        await _wait_for_log(server, b"prompt for")
        assert b"OUTSIDE_SECRET" not in server.stderr
    finally:
        await server.close()


async def test_row09_an_indexed_file_replaced_by_a_fifo_never_hangs(tiny_model_path, workspace):
    server = await _start(tiny_model_path, workspace)
    try:
        lib = workspace / "lib.py"
        lib.unlink()
        os.mkfifo(lib)
        (workspace / ".gitignore").write_text("")  # a watcher event re-walks: still no read
        uri = (workspace / "main.py").as_uri()
        server.open(uri, MAIN)
        assert await server.complete(uri, line=5, character=4) == DEFAULT_COMPLETION
        server.notify("textDocument/didSave", {"textDocument": {"uri": lib.as_uri()}})
        server.notify(
            "workspace/didChangeWatchedFiles",
            {"changes": [{"uri": lib.as_uri(), "type": 2}]},
        )
        assert await server.complete(uri, line=5, character=4) == DEFAULT_COMPLETION
        await server.response(server.request("shutdown"))
        server.notify("exit")
        assert await server.wait_exit() == 0
    finally:
        await server.close()


async def _status(server: StdioServer) -> dict:
    got = await server.response(
        server.request("workspace/executeCommand", {"command": "coder-lsp.status"})
    )
    return got["result"]


async def test_row03_the_model_file_truncated_in_place_never_crashes(tiny_model_path, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(tiny_model_path.read_bytes())
    server = await StdioServer.start()
    try:
        await server.initialize(model)
        await server.still_completes()
        with open(model, "r+b") as f:  # the same inode, as `cp` or a bad download would
            f.truncate(model.stat().st_size // 2)
        for n in range(3):
            assert await server.complete("file:///tmp/known/add.py") == ""
            server.open(f"file:///tmp/known/other{n}.py")
            assert await server.complete(f"file:///tmp/known/other{n}.py") == ""
        status = await _status(server)
        assert status["state"] == "failed" and "truncated" in status["error"]
        assert server.proc.returncode is None
    finally:
        await server.close()


async def test_row03_a_model_file_replaced_is_loaded_again(tiny_model_path, tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(tiny_model_path.read_bytes())
    server = await StdioServer.start()
    try:
        await server.initialize(model)
        await server.still_completes()
        fresh = tmp_path / "fresh.gguf"
        fresh.write_bytes(tiny_model_path.read_bytes())
        os.replace(fresh, model)  # what `models pull` does: a new file renamed over it
        await server.still_completes("file:///tmp/known/again.py")
        await _wait_for_log(server, b"the model file changed on disk")
    finally:
        await server.close()


async def test_row19_files_an_open_document_imports_are_indexed_despite_the_cap(
    tiny_model_path, tmp_path
):
    ws = tmp_path / "big"
    (ws / "a").mkdir(parents=True)
    for n in range(300):  # sorted before pkg/: a capped walk never reaches pkg/
        (ws / "a" / f"m{n:03d}.py").write_text(f"def f{n}():\n    return {n}\n")
    (ws / "pkg").mkdir()
    (ws / "pkg" / "__init__.py").write_text("")
    (ws / "pkg" / "util.py").write_text("def util_helper(x):\n    return x  # UTIL_MARKER\n")
    server = await StdioServer.start()
    try:
        await server.initialize(
            tiny_model_path, root_uri=ws.as_uri(), logLevel="debug", indexMaxFiles=100
        )
        await _wait_for_log(server, b"workspace index: 100 files")
        uri = (ws / "main.py").as_uri()
        server.open(uri, "from pkg.util import util_helper\n\n\ndef add(a, b):\n    \n")
        await _wait_for_log(server, b"indexed 1 imported files")
        assert await server.complete(uri, line=4, character=4) == DEFAULT_COMPLETION
        await _wait_for_log(server, b"prompt for")
        assert b"UTIL_MARKER" in server.stderr
    finally:
        await server.close()
