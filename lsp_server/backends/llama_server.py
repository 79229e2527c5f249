"""llama.cpp's ``llama-server`` as a shared engine (``backend.kind: llama-server``).

The prompt goes to ``/completion`` as **token ids**, tokenized here exactly as the
in-process backend does, so the engine evaluates the same tokens (a string prompt would be
parsed with special tokens on: code containing ``<|fim_prefix|>`` would turn into that
control token). ``cache_prompt`` keeps each slot's KV cache between keystrokes; an
optional ``id_slot`` pins one editor to one slot.

Connecting needs nothing but the URL: ``/health`` says whether the model is loaded,
``/props`` gives the slot context size and the model's path, and the FIM template is found
by asking ``/tokenize`` which control-token texts are single tokens. Tokenizing is local
and exact when a vocabulary is at hand (``backend.tokenizer``, or the engine's model file
when it is on this machine; checked against ``/tokenize`` on a fixed probe set at connect
time), else through ``/tokenize`` with a cache.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
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
    RemoteBackend,
    RemoteTokenizer,
    single_token,
    stream_generation,
)
from lsp_server.backends.templates import (
    ALL_SPECIAL_TEXTS,
    FimTemplate,
    detect_template,
    get_template,
)
from lsp_server.errors import (
    ContextExceededError,
    EngineError,
    EngineLoadingError,
    ModelLoadError,
)

logger = logging.getLogger(__name__)

LOADING_WAIT_S = 120.0
"""How long connecting waits for an engine that is still loading its model."""
PROBES: tuple[str, ...] = (
    "def add(a, b):\n    return a + b\n",
    "\tif (x && y) { z = 'é'; }  // 中文 🙂\n",
    "    <|fim_prefix|> <｜fim▁begin｜> <PRE> [INST]\n",
    "x=[1,2,3];;  \n\n\n",
)
"""Texts tokenized both locally and by the engine at connect time: a local vocabulary is
trusted only when they agree."""
REMOTE_TOKENIZER = "remote"
"""``backend.tokenizer`` value that makes the engine's /tokenize the tokenizer."""
_STOP_TYPES = {"eos": StopReason.EOS, "word": StopReason.STOP, "limit": StopReason.LENGTH}
CAPABILITIES = Capabilities(prefix_cache=True, streaming=True, token_prompts=True)


class LlamaServerBackend(RemoteBackend):
    """A model served by llama-server; implements ``Backend``."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        engine: EngineConnection,
        info: ModelInfo,
        tokenizer: Tokenizer,
        never_emit: frozenset[int],
        *,
        slot: int | None = None,
        tokenizer_kind: str = "remote",
    ) -> None:
        """Wrap a connected engine; use :meth:`connect` to create one."""
        super().__init__(engine, info, tokenizer)
        self._never_emit = never_emit
        self.slot = slot
        self.tokenizer_kind = tokenizer_kind
        """"local" (a vocabulary on this machine) or "remote" (the engine's /tokenize)."""

    # -- connecting ---------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        url: str,
        *,
        api_key: str | None = None,
        vocab: str | Path | None = None,
        template: str | None = None,
        n_ctx: int | None = None,
        slot: int | None = None,
        loading_wait_s: float = LOADING_WAIT_S,
    ) -> LlamaServerBackend:
        """Connect to a llama-server and learn its model.

        Args:
            url: The server's base URL.
            api_key: Sent as a Bearer token.
            vocab: A .gguf file whose vocabulary tokenizes locally; None: the engine's
                model file when it exists on this machine, else the engine's /tokenize;
                "remote": always the engine's /tokenize.
            template: Force a FIM template by name.
            n_ctx: Use at most this much of the engine's context.
            slot: Pin requests to this slot (``id_slot``).
            loading_wait_s: How long to wait for an engine that is still loading.

        Raises:
            EngineError: the engine is unreachable, refused the key, or kept loading.
            ModelLoadError: the engine's model has no FIM tokens.
        """
        engine = EngineConnection(url, api_key)
        wait_until_ready(engine, loading_wait_s)
        props = engine.request_json("GET", "/props") or {}
        gen = props.get("default_generation_settings") or {}
        engine_ctx = int(gen.get("n_ctx") or props.get("n_ctx") or 0)
        if engine_ctx <= 0:
            raise EngineError(f"engine at {engine.url} did not say its context size (/props)")
        model_path = str(props.get("model_path") or "")
        name = Path(str(props.get("model_alias") or model_path or "llama-server")).name

        def remote(text: str, special: bool) -> list[int]:
            answer = engine.request_json(
                "POST",
                "/tokenize",
                {"content": text, "add_special": False, "parse_special": special},
            )
            return [int(t) for t in (answer or {}).get("tokens", [])]

        if vocab == REMOTE_TOKENIZER:
            local_path = None
        else:
            on_disk = model_path if model_path and os.path.isfile(model_path) else None
            local_path = vocab or on_disk
        tokenizer: Tokenizer | None = None
        never_emit: frozenset[int] = frozenset()
        chosen: FimTemplate | None = None
        kind = "remote"
        note = ""
        if local_path:
            local, chosen, never_emit = _local_vocab(local_path, template)
            mismatch = [p for p in PROBES if local.tokenize(p) != remote(p, False)]
            if mismatch:
                logger.warning(
                    "the local vocabulary %s tokenizes %d of %d probe texts differently "
                    "from the engine; using the engine's /tokenize instead",
                    local_path,
                    len(mismatch),
                    len(PROBES),
                )
                local.close()
                note = "local vocabulary disagrees with /tokenize: using the engine's"
                # Its template is not the engine's either: find that from the engine.
                chosen, never_emit = None, frozenset()
            else:
                tokenizer, kind = local, "local"
        if tokenizer is None:
            chosen = (
                get_template(template)
                if template
                else chosen or _remote_template(remote, model_path or name)
            )
            remote_tok = RemoteTokenizer(remote, chosen)
            tokenizer, never_emit = remote_tok, remote_tok.never_emit
        assert chosen is not None
        info = ModelInfo(
            name=name,
            n_ctx=min(engine_ctx, n_ctx) if n_ctx else engine_ctx,
            template=chosen,
            path=None,
        )
        logger.info(
            "llama-server at %s: model %s, template %s, n_ctx %d (slot context %d), %s tokenizer%s",
            engine.url,
            name,
            chosen.name,
            info.n_ctx,
            engine_ctx,
            kind,
            ", API key set" if engine.has_key else "",
        )
        backend = cls(engine, info, tokenizer, never_emit, slot=slot, tokenizer_kind=kind)
        backend.note = note
        return backend

    # -- Backend protocol -------------------------------------------------------------
    def prompt_tokens(self, prompt: Any) -> list[int]:
        """The token ids sent for ``prompt``."""
        return self.tokenizer.prompt_tokens(prompt)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Stream a completion from ``/completion``; see :func:`stream_generation`.

        Raises:
            ContextExceededError: the engine's context is smaller than it said; ``info``
                now holds the engine's size, so a re-budgeted prompt fits.
            EngineError: the engine failed.
            BackendError: the prompt does not fit the context.
        """
        started = time.perf_counter()
        ids = self.fitting_prompt(request)
        n_ctx = self._info.n_ctx
        body: dict[str, Any] = {
            "prompt": ids,
            "n_predict": max(0, min(request.max_tokens, n_ctx - len(ids))),
            "cache_prompt": True,
            "stream": True,
            "return_tokens": True,
            # Figures with every event: a generation that our stop policy ends early
            # (before the engine's last event) still reports what the engine evaluated.
            "timings_per_token": True,
            "temperature": request.temperature,
            "top_k": 40,
            "top_p": 0.95,
            "min_p": 0.05,
            "repeat_penalty": 1.0,
            # Text stop sequences only: control tokens end generation by their id below.
            "stop": [
                s
                for s in (*request.stop, *request.prompt.stop)
                if s and s.strip() not in ALL_SPECIAL_TEXTS
            ],
        }
        if self.slot is not None:
            body["id_slot"] = self.slot
        self.last_body = body
        try:
            return stream_generation(
                self.engine,
                "/completion",
                body,
                request,
                cancel,
                started=started,
                prompt_tokens=len(ids),
                parse=_parse_event,
                never_emit=self._never_emit,
            )
        except ContextExceededError as err:
            if err.n_ctx:
                self.shrink_context(err.n_ctx)
            raise


def wait_until_ready(engine: EngineConnection, wait_s: float) -> None:
    """Return once ``/health`` says ok; wait while the engine loads its model.

    Raises:
        EngineLoadingError: still loading after ``wait_s``.
        EngineError: unreachable or refused.
    """
    deadline = time.monotonic() + wait_s
    delay = 0.1
    while True:
        try:
            engine.request_json("GET", "/health", timeout_s=5.0)
            return
        except EngineLoadingError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(1.0, delay * 2)


def _local_vocab(path: str | Path, template: str | None) -> tuple[Any, FimTemplate, frozenset[int]]:
    """A vocabulary-only load of ``path``: (tokenizer, template, control ids)."""
    from lsp_server.backends.llama_tokenizer import LlamaTokenizer

    try:
        tokenizer, _metadata = LlamaTokenizer.load_vocab(path, template=template)
    except ModelLoadError as err:
        raise ModelLoadError(f"tokenizer: {err}") from err
    return tokenizer, tokenizer.template, tokenizer.never_emit


def _remote_template(remote: Callable[[str, bool], list[int]], hint: str) -> FimTemplate:
    """The FIM template whose control tokens the engine's vocabulary holds."""
    seen: dict[str, bool] = {}

    def has(text: str) -> bool:
        if text not in seen:
            seen[text] = single_token(remote, text) is not None
        return seen[text]

    found = detect_template(has, {"general.name": hint})
    if found is None:
        raise ModelLoadError(
            f"the engine's model ({hint}) has no fill-in-the-middle tokens; serve a FIM code "
            "model such as DeepSeek-Coder base or Qwen2.5-Coder"
        )
    return found


def _parse_event(line: bytes) -> Chunk | None:
    """One server-sent event of ``/completion`` as a :class:`Chunk`."""
    obj = sse_data(line)
    if not isinstance(obj, dict):
        return None
    if "error" in obj:
        err = obj["error"]
        code = int(err.get("code", 500)) if isinstance(err, dict) else 500
        raise http_error(code, line.removeprefix(b"data:").strip(), "/completion", "llama-server")
    chunk = Chunk(text=str(obj.get("content") or ""), tokens=tuple(obj.get("tokens") or ()))
    timings = obj.get("timings") or {}
    for key in ("prompt_n", "predicted_n", "prompt_ms", "predicted_ms", "cache_n"):
        value = timings.get(key)
        if isinstance(value, int | float):
            chunk.figures[key] = float(value)
    if obj.get("stop"):
        chunk.done = True
        chunk.reason = _STOP_TYPES.get(str(obj.get("stop_type")), StopReason.LENGTH)
    return chunk
