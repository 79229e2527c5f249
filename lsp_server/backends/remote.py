"""What every remote engine backend shares: the tokenizer choice and the streaming loop.

* :class:`RemoteTokenizer` tokenizes through an engine's ``/tokenize`` endpoint behind an
  LRU cache (used when no local vocabulary is at hand, or when the local one disagrees
  with the engine's).
* :func:`stream_generation` runs one streamed generation: it feeds each piece through
  the shared :class:`~lsp_server.backends.stopping.StopPolicy` (stop sequences,
  ``should_stop``, time limits with the whole-lines rule), stops at a control token,
  closes the stream the moment the request is cancelled or the policy says stop, and
  turns the engine's own figures into a :class:`~lsp_server.backends.base.Generation`.
* :class:`RemoteBackend` holds what each engine's backend class shares: the connection,
  the model facts, the tokenizer, the context check and closing.
* :func:`render_text_prompt` renders a prompt for engines that take a string, with any
  special-token text inside the user's code defused so it cannot become that token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsp_server.backends.base import (
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
    Tokenizer,
)
from lsp_server.backends.http import EngineConnection, ReadTimeout
from lsp_server.backends.stopping import StopPolicy
from lsp_server.backends.templates import ALL_SPECIAL_TEXTS, FimTemplate
from lsp_server.core import Prompt, Special
from lsp_server.errors import BackendError, EngineError

logger = logging.getLogger(__name__)

TOKENIZE_CACHE = 4096
"""Texts whose remote tokenization is remembered (lines of the prompt window, mostly)."""
DEFUSE = "\u200b"
"""Put after the first character of a special-token text found in the user's code, in a
string prompt: the engine then tokenizes it as text, never as the control token."""


class EmptyStreamError(EngineError):
    """The engine accepted the request (HTTP 200) and closed the stream without one event
    (llama-cpp-python's server does this for a prompt longer than its context)."""


class RemoteBackend:
    """The part of a remote engine's ``Backend`` that does not depend on its API.

    Subclasses add ``connect`` (learning the engine's model) and ``generate``.
    """

    def __init__(self, engine: EngineConnection, info: ModelInfo, tokenizer: Tokenizer) -> None:
        """Wrap a connected engine; subclasses' ``connect`` create one."""
        self.engine = engine
        self._info = info
        self.tokenizer = tokenizer
        self.last_body: dict[str, Any] | None = None
        """The last request body sent (for tests and debugging)."""
        self.note = ""
        """What the user should know about this connection (shown with the status)."""

    @property
    def info(self) -> ModelInfo:
        """The served model's name, the context size used, and the FIM template."""
        return self._info

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text."""
        return int(self.tokenizer.count_tokens(text))

    def fitting_prompt(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids.

        Raises:
            BackendError: the prompt does not fit the context.
        """
        ids = self.tokenizer.prompt_tokens(request.prompt)
        n_ctx = self._info.n_ctx
        if len(ids) >= n_ctx:
            raise BackendError(
                f"prompt has {len(ids)} tokens but the context holds {n_ctx}; "
                "lower the context budget"
            )
        return ids

    def shrink_context(self, n_ctx: int) -> None:
        """Use at most ``n_ctx`` tokens of context from now on (the engine said so)."""
        if n_ctx < self._info.n_ctx:
            logger.info("the engine's context is %d tokens (was %d)", n_ctx, self._info.n_ctx)
            self._info = ModelInfo(self._info.name, n_ctx, self._info.template, self._info.path)

    def close(self) -> None:
        """Close the connections (the engine keeps running) and free the tokenizer."""
        self.engine.close()
        closer: Callable[[], None] | None = getattr(self.tokenizer, "close", None)
        if closer is not None:
            closer()


@dataclass(slots=True)
class Chunk:
    """One event of an engine's stream, in engine-independent terms."""

    text: str = ""
    tokens: Sequence[int] = ()
    """Token ids of this piece, when the engine sends them."""
    done: bool = False
    reason: StopReason | None = None
    """How the engine says it stopped (with ``done``)."""
    figures: dict[str, float] = field(default_factory=dict)
    """prompt_n, predicted_n, prompt_ms, predicted_ms, cache_n (what the engine sent)."""


def stream_generation(
    engine: EngineConnection,
    path: str,
    body: dict[str, Any],
    request: GenerationRequest,
    cancel: CancelToken,
    *,
    started: float,
    prompt_tokens: int,
    parse: Callable[[bytes], Chunk | None],
    never_emit: Collection[int] = (),
) -> Generation:
    """Stream one generation from ``engine`` and end it through the shared stop policy.

    Raises:
        EngineError: the engine could not be reached, refused, or dropped the stream.
    """
    policy = StopPolicy(request, started)
    text = ""
    generated = 0
    reason: StopReason | None = None
    figures: dict[str, float] = {}
    first_at: float | None = None
    events = 0
    if cancel.cancelled:
        return Generation("", StopReason.CANCELLED, prompt_tokens)
    try:
        with engine.stream(path, body, cancel, lambda: policy.seconds_left(text)) as lines:
            for line in lines:
                events += 1
                chunk = parse(line)
                if chunk is None:
                    continue
                figures.update(chunk.figures)
                if chunk.text or chunk.tokens:
                    if first_at is None:
                        first_at = time.perf_counter()
                        policy.generation_started(first_at)
                    generated += len(chunk.tokens) or 1
                if never_emit and any(t in never_emit for t in chunk.tokens):
                    # A control token (file separator, FIM marker): the in-process backend
                    # stops there too, without putting it in the text.
                    reason = StopReason.STOP
                    break
                seen = len(text)
                text += chunk.text
                verdict = policy.check(text, seen)
                if verdict is not None:
                    text, reason = verdict.text, verdict.reason
                    break
                if chunk.done:
                    reason = chunk.reason or StopReason.EOS
                    break
            else:
                if reason is None and not cancel.cancelled and not events:
                    raise EmptyStreamError("engine dropped the connection before answering")
                if reason is None and not cancel.cancelled:
                    raise EngineError(
                        "engine dropped the connection mid-stream (the answer ended unfinished)"
                    )
    except ReadTimeout:
        verdict = policy.check_time(text)
        if verdict is None:
            raise
        text, reason = verdict.text, verdict.reason
    if cancel.cancelled:
        reason = StopReason.CANCELLED
    ended = time.perf_counter()
    prompt_end = first_at if first_at is not None else ended
    prompt_ms = figures.get("prompt_ms")
    predicted_ms = figures.get("predicted_ms")
    return Generation(
        text=text,
        stop_reason=reason or StopReason.LENGTH,
        prompt_tokens=prompt_tokens,
        evaluated_tokens=int(figures.get("prompt_n", prompt_tokens if first_at else 0)),
        generated_tokens=int(figures.get("predicted_n", generated)),
        prompt_ms=(prompt_end - started) * 1000,
        generate_ms=(ended - prompt_end) * 1000,
        llama_ms=(prompt_ms or 0.0) + (predicted_ms or 0.0),
    )


class RemoteTokenizer:
    """Tokenize through an engine's endpoint, remembering recent answers.

    ``remote(text, special)`` asks the engine for the token ids of ``text``; with
    ``special`` the engine parses control-token texts (used only to find the ids of the
    template's own special tokens). Implements ``Tokenizer``.
    """

    def __init__(
        self,
        remote: Callable[[str, bool], list[int]],
        template: FimTemplate,
    ) -> None:
        """Wrap ``remote``; the special tokens of ``template`` are looked up now.

        Raises:
            EngineError: the engine could not be asked.
            BackendError: the engine's vocabulary lacks one of the template's FIM tokens.
        """
        self._remote = remote
        self.template = template
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._special: dict[str, int] = {}
        for text in (*template.special_texts,):
            found = single_token(remote, text)
            if found is not None:
                self._special[text] = found
        fim = (template.prefix, template.suffix, template.middle)
        missing = [t for t in fim if t not in self._special]
        if missing:
            raise BackendError(f"the engine's vocabulary lacks {', '.join(missing)}")
        self.never_emit = frozenset(i for t, i in self._special.items() if t not in (template.bos,))
        """Ids of the template's control tokens (generation stops at them)."""

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text (cached)."""
        if not text:
            return []
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
                return list(found)
        ids = tuple(self._remote(text, False))
        with self._lock:
            self._cache[text] = ids
            while len(self._cache) > TOKENIZE_CACHE:
                self._cache.popitem(last=False)
        return list(ids)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes as plain text."""
        return len(self.tokenize(text))

    def special_id(self, text: str) -> int | None:
        """The id of one of the template's special tokens."""
        return self._special.get(text)

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        """The token ids of ``prompt`` (BOS, special parts, text parts)."""
        ids: list[int] = []
        if prompt.add_bos and self.template.bos and self.template.bos in self._special:
            ids.append(self._special[self.template.bos])
        for part in prompt.parts:
            if isinstance(part, Special):
                token = self._special.get(part.text)
                if token is None:
                    token = single_token(self._remote, part.text)
                    if token is None:
                        raise BackendError(f"the engine's model has no special token {part.text!r}")
                    self._special[part.text] = token
                ids.append(token)
            else:
                ids.extend(self.tokenize(part))
        return ids


def single_token(remote: Callable[[str, bool], list[int]], text: str) -> int | None:
    """The id of ``text`` when the vocabulary holds it as one special token, else None."""
    ids = remote(text, True)
    if len(ids) == 1 and remote(text, False) != ids:
        return ids[0]
    return None


def defuse(text: str, specials: Collection[str] = ALL_SPECIAL_TEXTS) -> str:
    """``text`` with every special-token text in it broken by :data:`DEFUSE`."""
    if "<" not in text and "[" not in text:
        return text
    for special in specials:
        if special and special in text:
            text = text.replace(special, special[0] + DEFUSE + special[1:])
    return text


def render_text_prompt(prompt: Prompt, template: FimTemplate) -> str:
    """The prompt as one string for engines that parse special tokens in text.

    The template's own markers are written as their texts; the user's text parts are
    defused, so code that spells ``<|fim_prefix|>`` stays text. BOS is left to the
    engine (it adds its own).
    """
    specials = {*ALL_SPECIAL_TEXTS, *template.special_texts}
    out: list[str] = []
    for part in prompt.parts:
        if isinstance(part, Special):
            out.append(part.text)
        else:
            out.append(defuse(part, specials))
    return "".join(out)
