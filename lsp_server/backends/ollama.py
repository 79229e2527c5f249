"""Ollama as a shared engine (``backend.kind: ollama``).

Requests go to ``POST /api/generate`` with ``raw: true`` (no chat template around the FIM
prompt) and the prompt rendered as one string, with any special-token text inside the
user's code defused (Ollama's runner tokenizes the prompt with special tokens parsed, so
code that spells ``<|fim_prefix|>`` would otherwise become that control token). The
answer streams as NDJSON: one ``{"response", "done": false}`` object per piece, then one
with ``done: true``, ``done_reason`` and the figures (``prompt_eval_count``,
``eval_count``, ``prompt_eval_duration``, ``eval_duration``, in nanoseconds).

``options.num_ctx`` is sent with every request (Ollama's default context is small and it
silently drops the start of a longer prompt), always the same value so Ollama never
reloads the model for a new one; ``num_predict``, ``temperature: 0`` and the stop texts
go along, and ``keep_alive`` keeps the model loaded between keystrokes.

Connecting: ``GET /api/version`` (reachability), ``GET /api/tags`` (the model is there),
``POST /api/show`` (``model_info["<arch>.context_length"]``, the trained context, which
caps ``n_ctx``), then an empty-prompt ``/api/generate`` that loads the model with that
``num_ctx`` (Ollama loads models on first use; this waits for it instead of the first
keystroke). Ollama has no tokenizer endpoint, so budgets come from a local vocabulary
(``backend.tokenizer`` or ``model``: the same GGUF Ollama serves).

Shapes: ``api/types.go`` (``GenerateRequest``, ``GenerateResponse``, ``Metrics``,
``Options``/``Runner``, ``ShowResponse.ModelInfo``) and ``docs/api.md`` of ollama/ollama
(commits b8761ab0 and 9fbfa742, v0.5 era). Ollama has no API keys of its own; a key is
still sent as a Bearer token for proxies that add one.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lsp_server.backends.base import (
    CancelToken,
    Capabilities,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.http import EngineConnection, http_error
from lsp_server.backends.remote import (
    Chunk,
    RemoteBackend,
    render_text_prompt,
    stream_generation,
)
from lsp_server.errors import EngineError

logger = logging.getLogger(__name__)

CAPABILITIES = Capabilities(prefix_cache=True, streaming=True, token_prompts=False)
"""Ollama's runner reuses the longest cached prefix of each sequence and streams; the
prompt travels as a string."""
KEEP_ALIVE = "30m"
"""How long Ollama keeps the model loaded after a request."""
LOAD_WAIT_S = 300.0
"""How long connecting waits for Ollama to load the model (large models take a while)."""
NS_PER_MS = 1_000_000
_DONE = {"stop": StopReason.EOS, "length": StopReason.LENGTH}
_FIGURES = {
    "prompt_eval_count": ("prompt_n", 1),
    "eval_count": ("predicted_n", 1),
    "prompt_eval_duration": ("prompt_ms", NS_PER_MS),
    "eval_duration": ("predicted_ms", NS_PER_MS),
}


class OllamaBackend(RemoteBackend):
    """A model served by Ollama; implements ``Backend``."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        engine: EngineConnection,
        info: ModelInfo,
        tokenizer: Any,
        model: str,
        *,
        keep_alive: str = KEEP_ALIVE,
    ) -> None:
        """Wrap a connected engine; use :meth:`connect` to create one."""
        super().__init__(engine, info, tokenizer)
        self.model = model
        self.keep_alive = keep_alive

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        vocab: str | Path,
        api_key: str | None = None,
        model: str = "",
        template: str | None = None,
        n_ctx: int = 4096,
        keep_alive: str = KEEP_ALIVE,
        load_wait_s: float = LOAD_WAIT_S,
    ) -> OllamaBackend:
        """Connect to Ollama, learn the model's context and load it.

        Raises:
            EngineError: unreachable, the model is not there, or it failed to load.
            ModelLoadError: the local vocabulary cannot be read or has no FIM tokens.
        """
        from lsp_server.backends.llama_tokenizer import LlamaTokenizer

        engine = EngineConnection(url, api_key)
        version = (engine.request_json("GET", "/api/version") or {}).get("version", "?")
        tags = engine.request_json("GET", "/api/tags") or {}
        names = [
            str(m.get("name") or m.get("model"))
            for m in tags.get("models", [])
            if isinstance(m, dict) and (m.get("name") or m.get("model"))
        ]
        name = model or (names[0] if names else "")
        if not name:
            raise EngineError(f"Ollama at {engine.url} has no model; run `ollama pull NAME`")
        if name not in names and f"{name}:latest" not in names:
            raise EngineError(
                f"Ollama at {engine.url} has no model {name!r} (it has "
                f"{', '.join(names) or 'none'}); run `ollama pull {name}`"
            )
        show = engine.request_json("POST", "/api/show", {"model": name}) or {}
        trained = context_length(show.get("model_info") or {})
        size = min(n_ctx, trained) if trained else n_ctx
        tokenizer, _metadata = LlamaTokenizer.load_vocab(vocab, template=template)
        _check_vocab_size(tokenizer, show.get("model_info") or {}, name)
        # Load the model now, with the context size every request will ask for (a
        # different num_ctx later would make Ollama reload it).
        engine.request_json(
            "POST",
            "/api/generate",
            {
                "model": name,
                "keep_alive": keep_alive,
                "stream": False,
                "options": {"num_ctx": size},
            },
            timeout_s=load_wait_s,
        )
        info = ModelInfo(name=name, n_ctx=size, template=tokenizer.template, path=None)
        logger.info(
            "Ollama %s at %s: model %s, template %s, num_ctx %d (trained %s)%s",
            version,
            engine.url,
            name,
            info.template.name,
            size,
            trained or "unknown",
            ", API key set" if engine.has_key else "",
        )
        return cls(engine, info, tokenizer, name, keep_alive=keep_alive)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Stream a completion from ``/api/generate``.

        Raises:
            EngineError: the engine failed.
            BackendError: the prompt does not fit the context.
        """
        started = time.perf_counter()
        n_prompt = len(self.fitting_prompt(request))
        n_ctx = self._info.n_ctx
        template = self._info.template
        # Ollama streams text, not token ids: the template's control tokens end the
        # generation as stop texts (the in-process backend stops at their ids).
        controls = [t for t in template.special_texts if t and t != template.bos]
        stops = list(
            dict.fromkeys(s for s in (*request.stop, *request.prompt.stop, *controls) if s)
        )
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": render_text_prompt(request.prompt, template),
            "raw": True,
            "stream": True,
            "keep_alive": self.keep_alive,
            "options": {
                "num_ctx": n_ctx,
                "num_predict": max(1, min(request.max_tokens, n_ctx - n_prompt)),
                "temperature": request.temperature,
                "top_p": 0.95 if request.temperature > 0 else 1.0,
                "stop": stops,
            },
        }
        self.last_body = body
        return stream_generation(
            self.engine,
            "/api/generate",
            body,
            request,
            cancel,
            started=started,
            prompt_tokens=n_prompt,
            parse=parse_generate_line,
        )


def context_length(model_info: dict[str, Any]) -> int | None:
    """The trained context from ``/api/show``'s ``model_info`` (``<arch>.context_length``)."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if value is None:  # an architecture name we could not pair: any *.context_length
        value = next((v for k, v in model_info.items() if k.endswith(".context_length")), None)
    try:
        size = int(value) if value is not None else 0
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


def _check_vocab_size(tokenizer: Any, model_info: dict[str, Any], name: str) -> None:
    """Warn when the local vocabulary is visibly not the served model's."""
    arch = model_info.get("general.architecture")
    engine_size = model_info.get(f"{arch}.vocab_size") if isinstance(arch, str) else None
    local_size = getattr(tokenizer, "n_vocab", None)
    if isinstance(engine_size, int) and isinstance(local_size, int) and engine_size != local_size:
        logger.warning(
            "the local vocabulary has %d tokens but Ollama's %s has %d: token budgets may be "
            "off; set backend.tokenizer to the GGUF Ollama serves",
            local_size,
            name,
            engine_size,
        )


def parse_generate_line(line: bytes) -> Chunk | None:
    """One NDJSON object of a streamed ``/api/generate`` answer as a :class:`Chunk`."""
    import json

    try:
        obj = json.loads(line)
    except ValueError:
        raise EngineError("Ollama sent a malformed line") from None
    if not isinstance(obj, dict):
        return None
    if "error" in obj:
        raise http_error(500, line, "/api/generate", "Ollama")
    chunk = Chunk(text=str(obj.get("response") or ""))
    if obj.get("done"):
        chunk.done = True
        chunk.reason = _DONE.get(str(obj.get("done_reason") or "stop"), StopReason.STOP)
        for key, (figure, scale) in _FIGURES.items():
            value = obj.get(key)
            if isinstance(value, int | float):
                chunk.figures[figure] = float(value) / scale
    return chunk
