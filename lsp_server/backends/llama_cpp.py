"""The in-process llama.cpp backend: load a GGUF model once, generate completions from it.

It checks a model file before llama.cpp sees it (:mod:`lsp_server.gguf`: exists, readable,
GGUF, not truncated — so a half-downloaded file gives a clear message instead of a crash),
finds the FIM template from the vocabulary (:mod:`~lsp_server.backends.llama_tokenizer`),
and generates token by token with llama-cpp-python's KV cache: each generation
re-evaluates only the prompt tokens after the longest prefix it shares with the previous
one, and reports how many that was.

Generation is greedy at temperature 0 (reproducible), checks the cancel token before every
token, never emits a control token, and decodes pieces incrementally without splitting a
UTF-8 sequence. One generation runs at a time.

Nothing is ever written to stdout (the LSP transport): llama.cpp's log is routed to the
``lsp_server.backends.llama_cpp.native`` logger (:mod:`~lsp_server.backends.llama_native`),
so loading in a worker thread is safe.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from lsp_server.backends.base import (
    IN_PROCESS,
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.llama_native import native_load
from lsp_server.backends.llama_tokenizer import (
    LlamaTokenizer,
    Vocab,
    bos_for,
    choose_template,
    find_special_id,
    read_vocab,
)
from lsp_server.backends.stopping import StopPolicy
from lsp_server.backends.threads import FixedThreads, RequestTiming, ThreadPolicy, policy_for
from lsp_server.core import Prompt
from lsp_server.errors import BackendError, ModelLoadError
from lsp_server.gguf import read_gguf_header

logger = logging.getLogger(__name__)


class _CountingLlama(llama_cpp.Llama):
    """A :class:`llama_cpp.Llama` that counts the tokens it evaluates and times itself.

    ``Llama.generate`` keeps the longest common prefix with the previous evaluation in the
    KV cache and evaluates only the rest; counting what reaches :meth:`eval` measures that
    instead of re-deriving it. ``llama_seconds`` adds up the time spent in llama.cpp
    (evaluation and sampling), so the rest of a request's time is the server's own.
    """

    evaluated_count = 0
    llama_seconds = 0.0

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` and add them to :attr:`evaluated_count`."""
        self.evaluated_count += len(tokens)
        t0 = time.perf_counter()
        try:
            super().eval(tokens)
        finally:
            self.llama_seconds += time.perf_counter() - t0

    def sample(self, *args: Any, **kwargs: Any) -> int:
        """Sample the next token (timed)."""
        t0 = time.perf_counter()
        try:
            return int(super().sample(*args, **kwargs))
        finally:
            self.llama_seconds += time.perf_counter() - t0


EVAL_CHUNK_TOKENS = 64
"""Prompt tokens evaluated at a time: a superseded request stops within one chunk
(~0.4 s at 160 tokens/s) instead of one 512-token batch, and what was evaluated stays in
the KV cache for the request that superseded it."""


class LlamaCppBackend:
    """A GGUF model running in-process on llama.cpp; implements ``Backend``."""

    def __init__(
        self,
        llama: _CountingLlama,
        info: ModelInfo,
        metadata: Mapping[str, str],
        vocab: Vocab,
        bos_id: int | None,
    ) -> None:
        """Wrap an already loaded model; use :meth:`load` to create one."""
        self._llama = llama
        self._info = info
        self._metadata = dict(metadata)
        self._vocab = vocab
        self._vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        self._lock = threading.Lock()
        self.tokenizer = LlamaTokenizer(llama, vocab, bos_id, info.template)
        """The model's own vocabulary (exact, in-process)."""
        self.capabilities = IN_PROCESS
        """Prefix cache, per-token streaming and token-id prompts: everything."""
        self.eval_chunk_tokens = EVAL_CHUNK_TOKENS
        """Prompt tokens evaluated between two looks at the cancel token."""
        self._n_threads = int(llama.context_params.n_threads)
        self.threads: ThreadPolicy = FixedThreads(self._n_threads)
        """Chooses the thread count of each generation (lsp_server.backends.threads)."""

    # --- loading --------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        template: str | None = None,
    ) -> LlamaCppBackend:
        """Check and load a GGUF model.

        Args:
            path: The ``.gguf`` file.
            name: Name to report in :attr:`info` (default: the GGUF's ``general.name``,
                else the file name).
            n_ctx: Context size in tokens; clamped to the model's training context.
            n_threads: CPU threads (default: adapted per request between 1 and the
                available CPUs, at most 8; see lsp_server.backends.threads).
            n_gpu_layers: Layers to offload to a GPU (-1 for all).
            template: Force a FIM template by name instead of detecting it.

        Raises:
            ModelLoadError: the file is missing, unreadable, not GGUF, truncated, refused
                by llama.cpp, or has no FIM tokens (or not the forced template's).
        """
        path = Path(path)
        header = read_gguf_header(path)
        trained = header.context_length
        if trained is not None and 0 < trained < n_ctx:
            logger.info("n_ctx %d clamped to the model's training context %d", n_ctx, trained)
            n_ctx = trained
        n_ctx = max(n_ctx, 16)
        policy = policy_for(n_threads)
        threads = policy.max_threads

        started = time.perf_counter()
        with native_load(f"llama.cpp could not load {path}"):
            llama = _CountingLlama(
                str(path),
                n_ctx=n_ctx,
                n_batch=min(512, n_ctx),
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers,
                verbose=True,
            )
        llama.verbose = False  # no per-generation prints from here on
        logger.info("loaded %s in %.0f ms", path, (time.perf_counter() - started) * 1000)

        try:
            backend = cls._from_llama(llama, path, name, template)
        except ModelLoadError:
            llama.close()
            raise
        backend.threads = policy
        return backend

    @classmethod
    def _from_llama(
        cls, llama: _CountingLlama, path: Path, name: str | None, template: str | None
    ) -> LlamaCppBackend:
        """Read the vocabulary, choose the template and build the backend."""
        vocab_p = llama_cpp.llama_model_get_vocab(llama.model)
        vocab = read_vocab(vocab_p, llama.metadata)
        metadata: dict[str, str] = dict(llama.metadata)

        chosen = choose_template(vocab_p, vocab, metadata, template, path)
        for text in (chosen.prefix, chosen.suffix, chosen.middle):
            if find_special_id(vocab.special_ids, text) is None:
                raise ModelLoadError(f"{path}: FIM token {text!r} missing from the vocabulary")
        bos_id = bos_for(vocab_p, vocab, chosen)
        info = ModelInfo(
            name=name or metadata.get("general.name") or path.stem,
            n_ctx=llama.n_ctx(),
            template=chosen,
            path=str(path),
        )
        logger.info(
            "model %s: template %s, n_ctx %d, vocab %d",
            info.name,
            chosen.name,
            info.n_ctx,
            llama.n_vocab(),
        )
        return cls(llama, info, metadata, vocab, bos_id)

    # --- Backend protocol -----------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        """The loaded model's name, context size and FIM template."""
        return self._info

    @property
    def metadata(self) -> Mapping[str, str]:
        """The GGUF metadata as llama.cpp read it (values as strings)."""
        return self._metadata

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text: no BOS, control-token texts not parsed."""
        return self.tokenizer.tokenize(text)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text (no BOS)."""
        return self.tokenizer.count_tokens(text)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids ``prompt`` evaluates to (BOS, special parts, text parts)."""
        return self.tokenizer.prompt_tokens(prompt)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        """Generate a completion for ``request``, checking ``cancel`` before every token.

        How it ends (``stop_reason``): EOS on an end-of-generation token; STOP on any other
        control token (never put in the text), a stop sequence (``request.stop`` and
        ``prompt.stop``; the text is cut before it) or ``should_stop``; LENGTH after
        ``max_tokens`` (or when the context is full); CANCELLED when ``cancel`` is set,
        before the next token is sampled; TIMEOUT once ``time_budget_ms`` has passed since
        this call began and the text holds a complete line, or ``max_predict_ms`` has
        passed since the first token. A time limit keeps whole lines only (the text up to
        its last newline, without it) or nothing (see :mod:`~lsp_server.backends.stopping`).

        ``generated_tokens`` counts every sampled token, the ending control token
        included; ``evaluated_tokens`` the prompt tokens that were not in the KV cache.
        An unfinished UTF-8 sequence at the end is dropped.

        Raises:
            BackendError: the prompt does not fit the context, names a special token the
                model lacks, or llama.cpp failed while decoding.
        """
        started = time.perf_counter()
        with self._lock:
            return self._generate_locked(request, cancel, started)

    def close(self) -> None:
        """Free the model and its context."""
        with self._lock:
            self._llama.close()

    # --- generation -----------------------------------------------------------------

    def _generate_locked(
        self, request: GenerationRequest, cancel: CancelToken, started: float
    ) -> Generation:
        """The body of :meth:`generate`, run while holding the lock."""
        tokens = self.prompt_tokens(request.prompt)
        n_ctx = self._info.n_ctx
        if len(tokens) >= n_ctx:
            raise BackendError(
                f"prompt has {len(tokens)} tokens but the context holds {n_ctx}; "
                "lower the context budget"
            )
        max_tokens = max(0, min(request.max_tokens, n_ctx - len(tokens)))
        policy = StopPolicy(request, started)

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        generated = 0
        evaluated = 0
        reason = StopReason.LENGTH
        first_token_at: float | None = None
        threads = self._use_threads(self.threads.next_threads())
        self._llama.evaluated_count = 0
        self._llama.llama_seconds = 0.0
        if not self._eval_prompt(tokens, cancel):
            ended = time.perf_counter()
            return Generation(
                text="",
                stop_reason=StopReason.CANCELLED,
                prompt_tokens=len(tokens),
                evaluated_tokens=self._llama.evaluated_count,
                prompt_ms=(ended - started) * 1000,
                llama_ms=self._llama.llama_seconds * 1000,
            )
        gen = self._llama.generate(
            tokens,
            temp=request.temperature,
            top_k=40,
            top_p=0.95,
            min_p=0.05,
            repeat_penalty=1.0,
        )
        try:
            while True:
                if cancel.cancelled:
                    reason = StopReason.CANCELLED
                    break
                if generated >= max_tokens:
                    reason = StopReason.LENGTH
                    break
                try:
                    token = next(gen)
                except StopIteration:  # pragma: no cover - generate() never ends itself
                    reason = StopReason.EOS
                    break
                except RuntimeError as err:
                    raise BackendError(f"llama.cpp failed while generating: {err}") from err
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                    policy.generation_started()
                    evaluated = self._llama.evaluated_count
                generated += 1
                if llama_cpp.llama_vocab_is_eog(self._vocab_p, token):
                    reason = StopReason.EOS
                    break
                if token in self._vocab.never_emit:
                    logger.debug("stopped at control token %d", token)
                    reason = StopReason.STOP
                    break
                seen = len(text)
                text += decoder.decode(self._piece(token))
                # Stop sequences, should_stop and both time limits (whole lines only).
                verdict = policy.check(text, seen)
                if verdict is not None:
                    text, reason = verdict.text, verdict.reason
                    break
        finally:
            gen.close()
        # Bytes still in the decoder are an unfinished UTF-8 sequence: dropped, not shown
        # as U+FFFD.
        ended = time.perf_counter()
        prompt_end = first_token_at if first_token_at is not None else ended
        result = Generation(
            text=text,
            stop_reason=reason,
            prompt_tokens=len(tokens),
            evaluated_tokens=evaluated,
            generated_tokens=generated,
            prompt_ms=(prompt_end - started) * 1000,
            generate_ms=(ended - prompt_end) * 1000,
            llama_ms=self._llama.llama_seconds * 1000,
        )
        self.threads.record(
            RequestTiming(threads, evaluated, prompt_end - started, generated, ended - prompt_end)
        )
        logger.debug(
            "generated %d tokens (%s); prompt %d tokens, %d evaluated; %.0f + %.0f ms; %d threads",
            generated,
            reason.value,
            len(tokens),
            evaluated,
            result.prompt_ms,
            result.generate_ms,
            threads,
        )
        return result

    def _use_threads(self, n: int) -> int:
        """Make llama.cpp run the next decodes on ``n`` threads (a cheap call); return n."""
        if n != self._n_threads:
            llama_cpp.llama_set_n_threads(self._llama.ctx, n, n)
            self._n_threads = n
        return n

    def _eval_prompt(self, tokens: Sequence[int], cancel: CancelToken) -> bool:
        """Evaluate all but the last prompt token in chunks; False when cancelled first.

        Only the tokens after the longest prefix shared with what the KV cache holds are
        evaluated (llama-cpp-python's ``generate`` would do the same, but in one go that
        cannot be interrupted). Chunks evaluated before a cancellation stay in the cache,
        so the request that superseded this one starts from them. The last token is left
        for ``generate``, which evaluates it and samples from its logits.
        """
        llama = self._llama
        target = len(tokens) - 1
        held = llama.n_tokens
        if target <= 0:
            return not cancel.cancelled
        n = min(held, target)
        if n:
            cached = llama.input_ids[:n]
            mismatch = np.flatnonzero(cached != np.asarray(tokens[:n], dtype=cached.dtype))
            n = int(mismatch[0]) if mismatch.size else n
        if n >= target:
            return not cancel.cancelled
        llama.n_tokens = n  # eval() drops the KV cells from here on before decoding
        chunk = max(1, self.eval_chunk_tokens)
        for i in range(n, target, chunk):
            if cancel.cancelled:
                return False
            try:
                llama.eval(tokens[i : min(target, i + chunk)])
            except RuntimeError as err:
                raise BackendError(f"llama.cpp failed while evaluating: {err}") from err
        return not cancel.cancelled

    def _piece(self, token: int) -> bytes:
        """The UTF-8 bytes token ``token`` stands for (cached)."""
        return self.tokenizer.piece(token)
