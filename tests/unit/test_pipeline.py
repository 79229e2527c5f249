"""The pipeline's KV-cache-friendly prompt layout, window memo and completion cache."""

from __future__ import annotations

import dataclasses
import re

from lsp_server.backends.base import (
    CancelToken,
    Generation,
    GenerationRequest,
    ModelInfo,
    StopReason,
)
from lsp_server.backends.templates import get_template
from lsp_server.completion.cache import CacheHit, CompletionCache
from lsp_server.completion.pipeline import (
    ALIGN_LINES,
    MIDDLE_RESERVE_QUANTUM,
    WindowMemo,
    _align_step,
    complete,
    kv_window,
    strip_held,
)
from lsp_server.core import CompletionRequest, DocumentSnapshot, Shape, Special
from lsp_server.settings import Settings

SETTINGS = dataclasses.replace(Settings(), time_budget_ms=None)


def count(text: str) -> int:
    """A deterministic stand-in tokenizer: words plus newlines."""
    return len(text.split()) + text.count("\n")


class RecordingBackend:
    """Answers ``output`` for every prompt and records the prompts it saw."""

    def __init__(self, output: str = "urn a + b", reason: StopReason = StopReason.EOS) -> None:
        self.info = ModelInfo("fake", 4096, get_template("qwen"), path="/models/fake.gguf")
        self.output = output
        self.reason = reason
        self.requests: list[GenerationRequest] = []

    def count_tokens(self, text: str) -> int:
        return count(text)

    def generate(self, request: GenerationRequest, cancel: CancelToken) -> Generation:
        self.requests.append(request)
        return Generation(self.output, self.reason, prompt_tokens=10, generated_tokens=3)


def request(text: str, offset: int) -> CompletionRequest:
    return CompletionRequest(DocumentSnapshot("file:///m.py", text, "python", 1, "/m.py"), offset)


def typed(before: str, after: str, word: str) -> list[CompletionRequest]:
    """Requests for typing ``word`` one character at a time between before and after."""
    return [request(before + word[:n] + after, len(before) + n) for n in range(len(word) + 1)]


BEFORE = "def add(a, b):\n    "
AFTER = "\n\nprint(add(1, 2))\n"


def test_typing_within_a_line_changes_only_the_text_after_the_middle_token() -> None:
    backend = RecordingBackend()
    results = [complete(r, backend, SETTINGS) for r in typed(BEFORE, AFTER, "ret")]
    prompts = [r.prompt for r in backend.requests]
    assert len(prompts) == 4
    for p in prompts[1:]:
        assert p.parts[:-1] == prompts[0].parts[:-1]
    # The indentation goes after the middle token, less the last space: the tokenizer
    # attaches that one to the next word, which the model writes.
    assert prompts[0].parts[-2:] == (Special("<|fim_middle|>"), "   ")
    assert prompts[1].parts[-1] == "    r"
    assert prompts[3].parts[-1] == "    ret"
    # The model's output continues the typed text: it is the completion as it is.
    assert results[3].completion is not None
    assert results[3].completion.text == "urn a + b"


def test_typed_through_and_repeats_skip_the_model() -> None:
    backend = RecordingBackend("return a + b")
    cache = CompletionCache()
    reqs = typed(BEFORE, AFTER, "ret")
    first = complete(reqs[0], backend, SETTINGS, cache=cache)
    assert first.cache is CacheHit.MISS and first.completion is not None
    third = complete(reqs[3], backend, SETTINGS, cache=cache)
    assert third.cache is CacheHit.TYPED
    assert third.completion is not None and third.completion.text == "urn a + b"
    back = complete(reqs[0], backend, SETTINGS, cache=cache)  # undo
    assert back.cache is CacheHit.EXACT and back.completion == first.completion
    assert len(backend.requests) == 1


def test_cancelled_generations_are_not_cached() -> None:
    backend = RecordingBackend("ret", reason=StopReason.CANCELLED)
    cache = CompletionCache()
    result = complete(typed(BEFORE, AFTER, "")[0], backend, SETTINGS, cache=cache)
    assert result.reason == "cancelled" and len(cache) == 0


def test_plain_layout_when_switched_off() -> None:
    backend = RecordingBackend()

    class Plain:
        """Settings as they are, with the KV layout switched off."""

        kv_prompt = False

        def __getattr__(self, name: str) -> object:
            return getattr(SETTINGS, name)

    complete(typed(BEFORE, AFTER, "r")[1], backend, Plain())  # type: ignore[arg-type]
    parts = backend.requests[0].prompt.parts
    assert parts[-1] == Special("<|fim_middle|>")
    assert "def add(a, b):\n    r" in parts


def numbered(rows: int, indent: str = "        ") -> list[str]:
    return [f"{indent}v{r} = {r}\n" for r in range(rows)]


def test_enter_within_the_middle_rows_keeps_the_window() -> None:
    lines = numbered(40, "")
    cursor_row = 8 + 1  # one row past a multiple of middle_lines
    before = "".join(lines[:cursor_row])
    after = "\n" + "".join(lines[cursor_row:])
    kw = dict(language="python", path="/m.py", shape=Shape.BLOCK, count_tokens=count)
    memo = WindowMemo()
    kw["middle_lines"] = 8
    one = kv_window(before + "x = 1" + after, len(before) + 5, budget_tokens=2000, memo=memo, **kw)
    two = kv_window(
        before + "x = 1\n" + after, len(before) + 6, budget_tokens=2000, memo=memo, **kw
    )
    assert one is not None and two is not None
    assert one.head == two.head
    assert one.middle == lines[8] + "x = 1"
    assert two.middle == one.middle + "\n"
    assert two.full.prefix == two.head.prefix + two.middle
    assert memo.hits == 1


def _first_row(prefix: str) -> int:
    match = re.search(r"v(\d+) = ", prefix)
    assert match is not None
    return int(match.group(1))


def test_window_top_is_aligned_and_stays_while_the_cursor_moves_down() -> None:
    header = "class C:\n    def f(self):\n"
    body = numbered(600)
    budget = MIDDLE_RESERVE_QUANTUM + 800  # ~200 rows of 4 tokens
    kw = dict(language="python", path="/m.py", shape=Shape.BLOCK, count_tokens=count)
    heads = []
    for row in range(300, 300 + ALIGN_LINES):
        before = header + "".join(body[:row])
        text = before + "        \n" + "".join(body[row:])
        window = kv_window(text, len(before) + 8, budget_tokens=budget, **kw)
        assert window is not None
        heads.append(window.head.prefix)
        # The scopes the window starts inside are kept in front of it.
        assert window.head.prefix.startswith(header)
        assert (_first_row(window.head.prefix) + 2) % ALIGN_LINES == 0  # +2 header rows
    # Over ALIGN_LINES new lines the window's start moved once (not on every line).
    starts = [_first_row(h) for h in heads]
    assert len(set(starts)) == 2
    assert starts == sorted(starts)


def test_a_small_window_keeps_its_rows_above_the_cursor() -> None:
    # ~15 rows fit above the cursor: aligning the top to a 32-row multiple could leave
    # none of them (the prompt would hold only the scope headers). The step shrinks.
    header = "class C:\n    def f(self):\n"
    body = numbered(600)
    budget = MIDDLE_RESERVE_QUANTUM + 80  # ~20 rows of 4 tokens
    kw = dict(language="python", path="/m.py", shape=Shape.BLOCK, count_tokens=count)
    for row in range(300, 300 + ALIGN_LINES):
        before = header + "".join(body[:row])
        text = before + "        \n" + "".join(body[row:])
        window = kv_window(text, len(before) + 8, budget_tokens=budget, **kw)
        assert window is not None
        kept = row - _first_row(window.head.prefix)
        assert kept >= 8, (row, kept)


def test_align_step() -> None:
    assert _align_step(32, 300) == 32
    assert _align_step(32, 96) == 32
    assert _align_step(32, 60) == 16
    assert _align_step(32, 15) == 4
    assert _align_step(32, 3) == 1
    assert _align_step(1, 300) == 1


def test_whitespace_before_the_cursor_is_held_back_and_not_shown_twice() -> None:
    backend = RecordingBackend(" return a + b")  # the held space comes with the word
    result = complete(typed(BEFORE, AFTER, "")[0], backend, SETTINGS)
    assert backend.requests[0].prompt.parts[-1] == "   "
    assert result.completion is not None and result.completion.text == "return a + b"
    # A model that writes the whole indentation again still gets no stray spaces.
    again = complete(typed(BEFORE, AFTER, "")[0], RecordingBackend("    return a + b"), SETTINGS)
    assert again.completion is not None and again.completion.text == "return a + b"
    spaced = complete(request("x = \n", 4), RecordingBackend(" 1"), SETTINGS)
    assert spaced.completion is not None and spaced.completion.text == "1"


def test_strip_held() -> None:
    assert strip_held("    x", "    ") == "x"
    assert strip_held("  x", "    ") == "x"
    assert strip_held("x", " ") == "x"
    assert strip_held("\tx", "") == "\tx"


def test_a_line_request_generates_a_statement_on_to_its_closing_bracket() -> None:
    from lsp_server.completion.pipeline import early_stop
    from lsp_server.core import FimContext, Shape

    alone = early_stop(
        FimContext("def main(cfg):\n    ", "\n    runner.run()\n", Shape.LINE, "python")
    )
    assert not alone("runner = Runner(\n")
    assert not alone("runner = Runner(\n        cfg,\n    )")  # the closing line goes on
    assert alone("runner = Runner(\n        cfg,\n    )\n")
    assert alone("x = 1\n")
    # The rest of the call is already after the cursor: the first line is the answer.
    split = early_stop(
        FimContext("def main(cfg):\n    ", "\n        cfg,\n    )\n", Shape.LINE, "python")
    )
    assert split("runner = Runner(\n")


def test_the_middle_reserve_is_a_small_share_of_a_small_budget() -> None:
    from lsp_server.completion.pipeline import middle_reserve

    # The server's default budget keeps its 256-token steps (prompts unchanged there).
    assert middle_reserve(0, 3952) == 256
    assert middle_reserve(300, 3952) == 512
    # A 512-token budget used to lose 256 tokens to an empty middle.
    assert middle_reserve(0, 512) == 64
    assert middle_reserve(70, 512) == 128
    assert middle_reserve(5, 100) == 16
