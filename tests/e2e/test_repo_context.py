"""Repository context over LSP: the server indexes the workspace folder in the background
(with ``$/progress``), and a completion in a file that imports another workspace file puts
that file's definitions in the prompt — and nothing from git-ignored files or secrets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from tests.e2e.test_lsp import SERVER, inline, open_doc, wait_progress_done
from tests.tinymodel import DEFAULT_COMPLETION

GEOMETRY = '''"""Shapes."""


def rectangle_area(width: float, height: float) -> float:
    """The area of a width x height rectangle."""
    return width * height
'''
MAIN = "from geometry import rectangle_area\n\n\ndef total(shapes):\n    \n"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    """A bare client; the test initializes it with its workspace."""
    yield
    await lsp_client.shutdown_session()


def make_workspace(root: Path) -> Path:
    (root / "geometry.py").write_text(GEOMETRY)
    (root / "main.py").write_text(MAIN)
    (root / ".env").write_text("API_KEY=do-not-leak-this\n")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored").mkdir()
    (root / "ignored" / "secret_helpers.py").write_text("def never_in_prompts(): pass\n")
    (root / ".git").mkdir()
    return root / "main.py"


async def prompt_tokens_of_last(client: LanguageClient) -> int:
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="coder-lsp.stats")
    )
    return stats["requests"][-1]["prompt_tokens"]


@pytest.mark.parametrize("repo_context", [True, False])
async def test_workspace_is_indexed_and_used(
    client: LanguageClient, tiny_model_path: Path, tmp_path: Path, repo_context: bool
):
    main = make_workspace(tmp_path)
    root_uri = tmp_path.as_uri()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            root_uri=root_uri,
            workspace_folders=[types.WorkspaceFolder(uri=root_uri, name="ws")],
            initialization_options={
                "model": str(tiny_model_path),
                "nThreads": 1,
                "repoContext": repo_context,
            },
        )
    )
    await wait_progress_done(client)
    ends = [
        r.message or ""
        for reports in client.progress_reports.values()
        for r in reports
        if isinstance(r, types.WorkDoneProgressEnd)
    ]
    assert any(m.startswith("Indexed 2 files") for m in ends) == repo_context, ends
    open_doc(client, MAIN, uri=main.as_uri())
    got = await inline(client, 4, 4, uri=main.as_uri())
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION
    tokens = await prompt_tokens_of_last(client)
    # The opened document's repository context is warmed up in the background.
    for _ in range(50):
        stats = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="coder-lsp.stats")
        )
        if stats["prewarmed"] or not repo_context:
            break
        await asyncio.sleep(0.05)
    assert (stats["prewarmed"] >= 1) == repo_context, stats["prewarmed"]
    # The tiny model's vocabulary is byte-level: about a token per character. MAIN alone
    # is ~60 tokens; with geometry.py's definition in front it is ~100 more.
    assert (tokens > len(MAIN) + 80) == repo_context, tokens
    assert tokens > len(MAIN) - 10


async def test_without_a_workspace_folder_only_the_file_goes_in(
    client: LanguageClient, tiny_model_path: Path, tmp_path: Path
):
    # geometry.py sits right beside main.py on disk, but no workspace folder was given:
    # nothing is indexed and nothing from the neighbouring files reaches the prompt.
    main = make_workspace(tmp_path)
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            root_uri=None,
            initialization_options={"model": str(tiny_model_path), "nThreads": 1},
        )
    )
    await wait_progress_done(client)
    open_doc(client, MAIN, uri=main.as_uri())
    got = await inline(client, 4, 4, uri=main.as_uri())
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION
    tokens = await prompt_tokens_of_last(client)
    assert len(MAIN) - 10 < tokens < len(MAIN) + 20, tokens


KOTLIN_SHAPES = """package geometry

fun rectangleArea(width: Double, height: Double): Double {
    return width * height
}

class Circle(val radius: Double) {
    fun area(): Double {
        return 3.14159 * radius * radius
    }
}
"""
KOTLIN_MAIN = (
    "package geometry\n\n"
    "fun floorArea(width: Double, height: Double, radius: Double): Double {\n"
    "    val rug = Circle(radius)\n"
    "    val area = rectangleArea(width, height) - rug.area()\n"
    "    \n"
    "}\n"
)


async def test_kotlin_workspace_completes_with_repository_context(
    client: LanguageClient, tiny_model_path: Path, tmp_path: Path
):
    # Kotlin came in as one language-table entry plus a tag query: its files are indexed
    # and a completion in one of them gets the other file ahead of it in the prompt.
    src = tmp_path / "src"
    src.mkdir()
    (src / "Shapes.kt").write_text(KOTLIN_SHAPES)
    main = src / "Main.kt"
    main.write_text(KOTLIN_MAIN)
    (tmp_path / ".git").mkdir()
    root_uri = tmp_path.as_uri()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            root_uri=root_uri,
            workspace_folders=[types.WorkspaceFolder(uri=root_uri, name="ws")],
            initialization_options={"model": str(tiny_model_path), "nThreads": 1},
        )
    )
    await wait_progress_done(client)
    ends = [
        r.message or ""
        for reports in client.progress_reports.values()
        for r in reports
        if isinstance(r, types.WorkDoneProgressEnd)
    ]
    # rectangleArea, Circle, Circle.area and floorArea: the tag query found them.
    assert any(m.startswith("Indexed 2 files (4 symbols)") for m in ends), ends
    open_doc(client, KOTLIN_MAIN, uri=main.as_uri(), lang="kotlin")
    got = await inline(client, 5, 4, uri=main.as_uri())
    assert got is not None and got.items[0].insert_text == DEFAULT_COMPLETION
    tokens = await prompt_tokens_of_last(client)
    # About a token per character: Shapes.kt (~230) went in ahead of Main.kt (~190).
    assert tokens > len(KOTLIN_MAIN) + 150, tokens
