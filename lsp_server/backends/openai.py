"""Any OpenAI-compatible ``/v1/completions`` engine (``backend.kind: openai``): vLLM, TGI,
LM Studio, llama-cpp-python's server.

The FIM prompt is rendered here as one raw string — never the ``suffix`` field (vLLM and
TGI reject it; llama-cpp-python's server builds it with hard-coded token ids) — with any
special-token text inside the user's code defused so the engine cannot parse it as that
token. Tokens are counted with a local vocabulary (``backend.tokenizer`` or the top-level
``model``: the same GGUF the engine serves, or its tokenizer's GGUF), since the OpenAI
API has no tokenizer endpoint. The context size comes from ``/v1/models`` when the engine
says it (vLLM's ``max_model_len``, llama-server's ``meta.n_ctx``), else from ``n_ctx``.
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
    Tokenizer,
)
from lsp_server.backends.http import EngineConnection, http_error, sse_data
from lsp_server.backends.remote import Chunk, render_text_prompt, stream_generation
from lsp_server.backends.templates import FimTemplate
from lsp_server.errors import BackendError, CoderLspError

logger = logging.getLogger(__name__)

CAPABILITIES = Capabilities(prefix_cache=True, streaming=True, token_prompts=False)
"""Engines of this kind keep a prefix cache (vLLM's automatic prefix caching,
llama-cpp-python's longest-prefix reuse) and stream; prompts travel as strings."""
_FINISH = {"stop": StopReason.EOS, "length": StopReason.LENGTH}


class OpenAICompletionsBackend:
    """A model behind an OpenAI-compatible completions endpoint; implements ``Backend``."""

    capabilities = CAPABILITIES

    def __init__(
        self, engine: EngineConnection, info: ModelInfo, tokenizer: Tokenizer, model: str
    ) -> None:
        """Wrap a connected engine; use :meth:`connect` to create one."""
        self.engine = engine
        self._info = info
        self.tokenizer = tokenizer
        self.model = model
        self.last_body: dict[str, Any] | None = None

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
    ) -> OpenAICompletionsBackend:
        """Connect: check ``/v1/models`` (reachability, the key, the model's name and
        context) and load the local vocabulary.

        Raises:
            EngineError: unreachable, refused the key, or still loading.
            ModelLoadError: the vocabulary cannot be read or has no FIM tokens.
        """
        from lsp_server.backends.llama_cpp import LlamaTokenizer

        engine = EngineConnection(url, api_key)
        listing = engine.request_json("GET", "/v1/models") or {}
        models = [m for m in listing.get("data", []) if isinstance(m, dict)]
        entry = next((m for m in models if m.get("id") == model), models[0] if models else {})
        name = model or str(entry.get("id") or "")
        if not name:
            raise CoderLspError(f"engine at {engine.url} lists no model; set backend.model")
        engine_ctx = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx")
        size = min(n_ctx, int(engine_ctx)) if isinstance(engine_ctx, int) else n_ctx
        tokenizer, _metadata = LlamaTokenizer.load_vocab(vocab, template=template)
        chosen: FimTemplate = tokenizer.template
        info = ModelInfo(name=name, n_ctx=size, template=chosen, path=None)
        logger.info(
            "OpenAI-compatible engine at %s: model %s, template %s, n_ctx %d%s",
            engine.url,
            name,
            chosen.name,
            size,
            ", API key set" if engine.has_key else "",
        )
        return cls(engine, info, tokenizer, name)

    @property
    def info(self) -> ModelInfo:
        """The served model's name, context size and FIM template."""
        return self._info

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes (local vocabulary)."""
        return self.tokenizer.count_tokens(text)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Stream a completion from ``/v1/completions``.

        Raises:
            EngineError: the engine failed.
            BackendError: the prompt does not fit the context.
        """
        started = time.perf_counter()
        n_prompt = len(self.tokenizer.prompt_tokens(request.prompt))
        n_ctx = self._info.n_ctx
        if n_prompt >= n_ctx:
            raise BackendError(
                f"prompt has {n_prompt} tokens but the context holds {n_ctx}; "
                "lower the context budget"
            )
        stops = [s for s in (*request.stop, *request.prompt.stop) if s][:4]  # OpenAI: <= 4
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": render_text_prompt(request.prompt, self._info.template),
            "max_tokens": max(1, min(request.max_tokens, n_ctx - n_prompt)),
            "temperature": request.temperature,
            "top_p": 0.95 if request.temperature > 0 else 1.0,
            "stream": True,
            "stop": stops,
        }
        self.last_body = body
        return stream_generation(
            self.engine,
            "/v1/completions",
            body,
            request,
            cancel,
            started=started,
            prompt_tokens=n_prompt,
            parse=parse_completion_event,
        )

    def close(self) -> None:
        """Close the connections."""
        self.engine.close()
        closer = getattr(self.tokenizer, "close", None)
        if closer is not None:
            closer()


def parse_completion_event(line: bytes) -> Chunk | None:
    """One ``/v1/completions`` server-sent event as a :class:`Chunk`.

    Shape (OpenAI's API reference; vLLM ``vllm/entrypoints/openai/protocol.py``
    ``CompletionStreamResponse``): ``{"choices": [{"text", "finish_reason"}], "usage"?}``,
    then ``data: [DONE]``.
    """
    obj = sse_data(line)
    if not isinstance(obj, dict):
        return None
    if "error" in obj:
        err = obj["error"]
        code = int(err.get("code") or 500) if isinstance(err, dict) else 500
        raise http_error(code, line.removeprefix(b"data:").strip(), "/v1/completions", "engine")
    choices = obj.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    chunk = Chunk(text=str(choice.get("text") or ""))
    finish = choice.get("finish_reason")
    if finish:
        chunk.done = True
        chunk.reason = _FINISH.get(str(finish), StopReason.STOP)
    usage = obj.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        chunk.figures["predicted_n"] = float(usage["completion_tokens"])
    return chunk
