"""Any OpenAI-compatible ``/v1/completions`` engine (``backend.kind: openai``): vLLM, TGI,
LM Studio, llama-cpp-python's server.

The FIM prompt never uses the ``suffix`` field (vLLM and TGI reject it; llama-cpp-python's
server builds it with hard-coded token ids). Tokens are counted with a local vocabulary
(``backend.tokenizer`` or the top-level ``model``: the same GGUF the engine serves, or its
tokenizer's GGUF), since the OpenAI API has no tokenizer endpoint.

* **vLLM** (``owned_by: "vllm"`` in ``/v1/models``; vllm ``entrypoints/openai/protocol.py``
  ``ModelCard``, ``CompletionRequest``, ``TokenizeResponse``): ``max_model_len`` gives the
  context; its ``/tokenize`` is checked against the local vocabulary on a probe set at
  connect time, and when they agree the prompt travels as **token ids** (vLLM takes
  ``prompt`` as a list of ints), exactly the ids the in-process backend evaluates. When
  they disagree the log and the status say so and the prompt goes as a string.
* **Other engines** get one raw string with any special-token text inside the user's
  code defused so the engine cannot parse it as that token. The context comes from
  ``/v1/models`` (``max_model_len``, llama-server's ``meta.n_ctx``) or TGI's ``/info``
  (``max_total_tokens``) when the engine says it, else from ``n_ctx``.
* An engine that says nothing and is smaller than ``n_ctx`` answers 400 ("maximum context
  length is N tokens"): the context shrinks to N (to 3/4 of what was sent when the
  message has no number) and the engine re-budgets the prompt once.
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
from lsp_server.backends.remote import (
    Chunk,
    EmptyStreamError,
    RemoteBackend,
    render_text_prompt,
    stream_generation,
)
from lsp_server.backends.templates import ALL_SPECIAL_TEXTS, FimTemplate
from lsp_server.errors import CoderLspError, ContextExceededError, EngineError

logger = logging.getLogger(__name__)

CAPABILITIES = Capabilities(prefix_cache=True, streaming=True, token_prompts=False)
"""Engines of this kind keep a prefix cache (vLLM's automatic prefix caching,
llama-cpp-python's longest-prefix reuse) and stream; prompts travel as strings."""
TOKEN_PROMPTS = Capabilities(prefix_cache=True, streaming=True, token_prompts=True)
"""vLLM with a local vocabulary that matches its tokenizer: prompts travel as token ids."""
_FINISH = {"stop": StopReason.EOS, "length": StopReason.LENGTH}
PROBES: tuple[str, ...] = (
    "def add(a, b):\n    return a + b\n",
    "\tif (x && y) { z = 'é'; }  // 中文 🙂\n",
    "x=[1,2,3];;  \n\n\n",
    "    for (int i = 0; i < n; ++i) {\n",
)
"""Plain-text probes for an engine's ``/tokenize`` (vLLM parses special-token texts
always, so none appear here)."""


class OpenAICompletionsBackend(RemoteBackend):
    """A model behind an OpenAI-compatible completions endpoint; implements ``Backend``."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        engine: EngineConnection,
        info: ModelInfo,
        tokenizer: Tokenizer,
        model: str,
        *,
        token_prompts: bool = False,
        note: str = "",
        context_reported: bool = True,
    ) -> None:
        """Wrap a connected engine; use :meth:`connect` to create one."""
        super().__init__(engine, info, tokenizer)
        self.model = model
        self.capabilities = TOKEN_PROMPTS if token_prompts else CAPABILITIES
        self.context_reported = context_reported
        """Whether the engine said its context size (else ``n_ctx`` is the setting's)."""
        self.note = note

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
        from lsp_server.backends.llama_tokenizer import LlamaTokenizer

        engine = EngineConnection(url, api_key)
        listing = engine.request_json("GET", "/v1/models") or {}
        models = [m for m in listing.get("data", []) if isinstance(m, dict)]
        entry = next((m for m in models if m.get("id") == model), models[0] if models else {})
        name = model or str(entry.get("id") or "")
        if not name:
            raise CoderLspError(f"engine at {engine.url} lists no model; set backend.model")
        engine_ctx = entry.get("max_model_len") or (entry.get("meta") or {}).get("n_ctx")
        is_vllm = entry.get("owned_by") == "vllm"
        tokenizer, _metadata = LlamaTokenizer.load_vocab(vocab, template=template)
        token_prompts, note = False, ""
        if is_vllm:
            agrees, engine_ctx = _check_vllm_tokenizer(engine, name, tokenizer, engine_ctx)
            token_prompts = agrees
            if not agrees:
                note = "local vocabulary disagrees with /tokenize: approximate budgets"
                logger.warning(
                    "the local vocabulary %s tokenizes the probe texts differently from the "
                    "engine's /tokenize; prompts go as strings and token budgets are approximate",
                    vocab,
                )
        if not isinstance(engine_ctx, int):
            engine_ctx = _tgi_context(engine)
        size = min(n_ctx, int(engine_ctx)) if isinstance(engine_ctx, int) else n_ctx
        chosen: FimTemplate = tokenizer.template
        info = ModelInfo(name=name, n_ctx=size, template=chosen, path=None)
        logger.info(
            "OpenAI-compatible engine at %s: model %s, template %s, n_ctx %d (%s), %s prompts%s",
            engine.url,
            name,
            chosen.name,
            size,
            "from the engine" if isinstance(engine_ctx, int) else "the engine did not say; setting",
            "token-id" if token_prompts else "string",
            ", API key set" if engine.has_key else "",
        )
        return cls(
            engine,
            info,
            tokenizer,
            name,
            token_prompts=token_prompts,
            note=note,
            context_reported=isinstance(engine_ctx, int),
        )

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Stream a completion from ``/v1/completions``.

        Raises:
            EngineError: the engine failed.
            BackendError: the prompt does not fit the context.
        """
        started = time.perf_counter()
        ids = self.fitting_prompt(request)
        n_prompt = len(ids)
        n_ctx = self._info.n_ctx
        stops = [s for s in (*request.stop, *request.prompt.stop) if s]
        if self.capabilities.token_prompts:
            # vLLM: control tokens end generation by their ids (``stop_token_ids``, a vLLM
            # sampling parameter); it would skip them in the text, never matching a stop.
            stops = [s for s in stops if s.strip() not in ALL_SPECIAL_TEXTS]
        stops = stops[:4]  # the OpenAI API takes at most 4
        max_tokens = max(1, min(request.max_tokens, n_ctx - n_prompt))
        prompt: str | list[int] = (
            ids
            if self.capabilities.token_prompts
            else render_text_prompt(request.prompt, self._info.template)
        )
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": request.temperature,
            "top_p": 0.95 if request.temperature > 0 else 1.0,
            "stream": True,
            "stop": stops,
        }
        if self.capabilities.token_prompts:
            body["stop_token_ids"] = sorted(getattr(self.tokenizer, "never_emit", ()))
        self.last_body = body
        try:
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
        except EmptyStreamError:
            if self.context_reported:
                raise
            # An engine that does not say its context and streams nothing for a prompt
            # it refuses (llama-cpp-python's server): ask once without streaming and
            # one token, which answers 400 with the context size when that was it.
            try:
                self.engine.request_json(
                    "POST", "/v1/completions", {**body, "stream": False, "max_tokens": 1}
                )
            except ContextExceededError as err:
                self._learn_context(err, n_prompt + max_tokens)
                raise
            raise
        except ContextExceededError as err:
            self._learn_context(err, n_prompt + max_tokens)
            raise

    def _learn_context(self, err: ContextExceededError, sent: int) -> None:
        """Never assume more context than the engine has: shrink to what its error said
        (3/4 of what was sent when it said no number)."""
        self.shrink_context(err.n_ctx or sent * 3 // 4)


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


def _check_vllm_tokenizer(
    engine: EngineConnection, model: str, tokenizer: Any, engine_ctx: Any
) -> tuple[bool, Any]:
    """Whether vLLM's ``/tokenize`` agrees with the local vocabulary on :data:`PROBES`,
    and the context it reports (``max_model_len``) when ``/v1/models`` did not."""
    agrees = True
    for probe in PROBES:
        try:
            answer = engine.request_json(
                "POST", "/tokenize", {"model": model, "prompt": probe, "add_special_tokens": False}
            )
        except EngineError as err:
            logger.info("the engine has no usable /tokenize (%s): prompts go as strings", err)
            return False, engine_ctx
        answer = answer if isinstance(answer, dict) else {}
        if not isinstance(engine_ctx, int) and isinstance(answer.get("max_model_len"), int):
            engine_ctx = answer["max_model_len"]
        if [int(t) for t in answer.get("tokens", [])] != tokenizer.tokenize(probe):
            agrees = False
    return agrees, engine_ctx


def _tgi_context(engine: EngineConnection) -> int | None:
    """TGI's ``/info`` ``max_total_tokens`` (None for engines without it)."""
    try:
        info = engine.request_json("GET", "/info", timeout_s=5.0)
    except EngineError:
        return None
    value = info.get("max_total_tokens") if isinstance(info, dict) else None
    return value if isinstance(value, int) and value > 0 else None
