"""The real model behind the follow-up: an answer the hard time limit left empty is
finished in the background, and the next automatic request at that spot gets a completion
that makes the function's own test pass, from the cache.

``max_predict_ms = 0`` stands in for a machine so busy that the limit has passed by the
first token; the follow-up's limit is raised here so a loaded CI machine cannot cut it too
(its bound is the engine tests' business).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import lsp_server.engine
from lsp_server.backends.llama_cpp import LlamaCppBackend
from lsp_server.core import CompletionRequest, DocumentSnapshot
from lsp_server.engine import Engine
from lsp_server.registry import load_registry, local_path
from lsp_server.settings import Settings
from lsp_server.syntax import parse
from tests.real.test_real_model import CASES, CURSOR, MODEL

pytestmark = pytest.mark.real_model


async def test_cut_short_answer_is_finished_into_the_cache(monkeypatch):
    monkeypatch.setattr(lsp_server.engine, "FOLLOW_UP_PREDICT_MS", 120_000.0)
    path = local_path(load_registry().get(MODEL))
    assert path.exists(), f"{path} is missing: run `coder-lsp models pull {MODEL}`"
    backend = LlamaCppBackend.load(path, name=MODEL, n_ctx=2048, n_threads=2)
    engine = Engine(loader=lambda s: backend)
    settings = Settings(model=MODEL, max_tokens=96, time_budget_ms=None, max_predict_ms=0.0)
    engine.configure(dataclasses.replace(settings, repo_context=False))
    ready: asyncio.Queue[CompletionRequest] = asyncio.Queue()
    engine.add_ready_listener(lambda request, result: ready.put_nowait(request))

    (source,) = CASES["palindrome"]
    offset = source.index(CURSOR)
    text = source.replace(CURSOR, "")
    doc = DocumentSnapshot("file:///tmp/palindrome.py", text, "python", 1, "/tmp/palindrome.py")
    request = CompletionRequest(doc, offset)
    try:
        first = await engine.complete(request, parse(text, "python"))
        assert first.completion is None and first.cut_short, first.reason
        assert await asyncio.wait_for(ready.get(), timeout=300) == request
        again = await engine.complete(request, parse(text, "python"))
        assert again.cache.value == "exact" and again.completion is not None
        done = (
            text[:offset] + again.completion.text + text[offset + again.completion.replace_chars :]
        )
        namespace: dict[str, object] = {}
        exec(compile(done, "palindrome.py", "exec"), namespace)  # the completed module
        namespace["test"]()  # type: ignore[operator]
        follow = [r for r in engine.stats if r.follow_up]
        assert len(follow) == 1 and follow[0].outcome == "ok"  # one follow-up, no more
    finally:
        engine.shutdown()
