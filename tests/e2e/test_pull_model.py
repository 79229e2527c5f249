"""Model download over LSP: a registry model that is not downloaded yet is reported with
the command to fix it; ``coder-lsp.pullModel`` downloads it from a (stand-in) Hugging Face
endpoint with ``$/progress`` and the server starts completing with it — no restart.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.e2e.test_lsp import inline, open_doc, start, wait_progress_done
from tests.standins import TINY_FILE, TINY_REPO, HubStandin, tiny_registry
from tests.tinymodel import DEFAULT_COMPLETION

REPO, FILE = TINY_REPO, TINY_FILE


async def test_pull_model_command_downloads_with_progress(tiny_model_path: Path, tmp_path: Path):
    data = tiny_model_path.read_bytes()
    config_dir = tmp_path / "config" / "coder-lsp"
    config_dir.mkdir(parents=True)
    (config_dir / "models.toml").write_text(tiny_registry(data), encoding="utf-8")
    with HubStandin() as hub:
        hub.add_file(REPO, FILE, data)
        env = dict(os.environ)
        env.update(
            HF_ENDPOINT=hub.url,
            XDG_CONFIG_HOME=str(tmp_path / "config"),
            CODER_LSP_MODELS_DIR=str(tmp_path / "models"),
        )
        env.pop("CODER_LSP_MODELS_TOML", None)
        config = ClientServerConfig(
            server_command=[sys.executable, "-m", "lsp_server", "--stdio"], server_env=env
        )
        client = await config.start()
        try:
            await start(client, "visual-studio-code", {"model": "tiny-fim", "nThreads": 1})
            errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
            assert len(errors) == 1 and "coder-lsp models pull tiny-fim" in errors[0]
            open_doc(client)
            assert not (await inline(client, 1, 4)).items

            result = await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="coder-lsp.pullModel", arguments=["tiny-fim"])
            )
            assert result["ok"] is True, result
            assert (tmp_path / "models" / FILE).read_bytes() == data
            titles = [
                r.message
                for reports in client.progress_reports.values()
                for r in reports
                if isinstance(r, types.WorkDoneProgressBegin)
            ]
            assert any("Downloading tiny-fim" in (t or "") for t in titles)
            await asyncio.sleep(0.1)
            await wait_progress_done(client)
            got = await inline(client, 1, 4)
            assert got.items and got.items[0].insert_text == DEFAULT_COMPLETION
        finally:
            await client.shutdown_session()
            await client.stop()
