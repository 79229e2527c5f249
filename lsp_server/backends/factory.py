"""Choose and connect the remote engine backend the settings name (``backend.kind``).

The API key is read here from the environment variable the settings name (default
``CODER_LSP_API_KEY``) and handed to the connection; it is never logged or shown.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lsp_server.backends.base import Backend
from lsp_server.errors import CoderLspError
from lsp_server.settings import Settings

logger = logging.getLogger(__name__)


def api_key(settings: Settings) -> str | None:
    """The API key from the environment variable ``backend.apiKeyEnv`` names, if set."""
    value = os.environ.get(settings.backend.api_key_env, "").strip()
    return value or None


def vocabulary(name: str | None) -> Path | str | None:
    """Resolve a ``tokenizer`` / ``model`` setting (registry name or path) to a file
    ("remote" stays: the engine's own tokenizer)."""
    if not name:
        return None
    if name == "remote":
        return name
    from lsp_server.registry import resolve_model

    return Path(resolve_model(name).path)


def connect_remote(settings: Settings) -> Backend:
    """Connect to the engine ``settings.backend`` describes.

    Raises:
        EngineError: the engine is unreachable, refused the key or kept loading.
        CoderLspError: the settings do not name a usable engine or vocabulary.
    """
    b = settings.backend
    key = api_key(settings)
    if b.kind == "llama-server":
        from lsp_server.backends.llama_server import LlamaServerBackend

        return LlamaServerBackend.connect(
            b.url,
            api_key=key,
            vocab=vocabulary(b.tokenizer),
            template=settings.template,
            n_ctx=settings.n_ctx,
            slot=b.slot,
        )
    if b.kind in ("openai", "ollama"):
        from lsp_server.backends.openai import OpenAICompletionsBackend

        vocab = vocabulary(b.tokenizer or settings.model)
        if vocab is None or vocab == "remote":
            raise CoderLspError(
                f"backend kind {b.kind!r} needs a local vocabulary: set backend.tokenizer "
                "(or model) to the served model's GGUF or registry name"
            )
        from lsp_server.backends.ollama import OllamaBackend

        # Both take the same connection arguments; only the wire protocol differs.
        kind: type[OllamaBackend] | type[OpenAICompletionsBackend] = (
            OllamaBackend if b.kind == "ollama" else OpenAICompletionsBackend
        )
        return kind.connect(
            b.url,
            vocab=vocab,
            api_key=key,
            model=b.model,
            template=settings.template,
            n_ctx=settings.n_ctx,
        )
    raise CoderLspError(f"backend kind {b.kind!r} is not supported yet")
