"""A grammar fuzzer for the server's LSP surface, shared by the CI test and the long run.

Hypothesis draws sequences of messages — valid and invalid, well framed and broken:
opens, edits (ranges out of bounds, surrogates, NULs), closes, completions at odd
positions, cancels, settings, commands, unknown methods, client responses, malformed
JSON, lying ``Content-Length`` headers, garbage bytes — and sends each sequence to one
real ``python -m lsp_server`` process (the tiny deterministic model). After each sequence
it checks the invariants:

* every well-framed request got exactly one response, a result or an expected error
  code (-32600, -32601, -32602, -32800); a request inside a broken frame at most one;
* no -32603 (an internal error is a bug) and no traceback in anything sent to the client;
* the server still completes a known document correctly;
* the process is alive and its memory bounded (checked by the caller on the figures).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.e2e.rawlsp import StdioServer, frame
from tests.tinymodel import DEFAULT_COMPLETION

KNOWN_URI = "file:///tmp/fuzz-known/add.py"
"""The document the fuzzer never touches; it must always complete correctly."""
EXPECTED_ERRORS = frozenset({-32600, -32601, -32602, -32800})
"""Error codes a request may get; -32700 only for broken frames, -32603 never."""

URIS = [
    "file:///tmp/fuzz/a.py",
    "file:///tmp/fuzz/b.js",
    "file:///tmp/fuzz/%C3%A9.rs",
    "file:///tmp/fuzz/a%00b.py",
    "untitled:Untitled-1",
    "file:relative.py",
    "not a uri",
]
LANGUAGES = ["python", "javascript", "rust", "plaintext", "", "no-such-language"]
CHARS = [
    *"abc xyz():=+#'\"{}[];,.\n\t",
    "\r\n",
    "\r",
    "é",
    "\U0001f600",
    "\ud800",
    "\x00",
    "\u2028",
]

texts = st.lists(st.sampled_from(CHARS), max_size=80).map("".join)
numbers = st.one_of(
    st.integers(0, 30),
    st.integers(-(2**33), 2**33),
    st.sampled_from([-1, 2**31 - 1, 2**31, 2**32]),
)
odd_values = st.one_of(numbers, st.none(), st.text(max_size=4), st.booleans(), st.floats())
positions = st.one_of(
    st.fixed_dictionaries({"line": st.integers(0, 12), "character": st.integers(0, 40)}),
    st.fixed_dictionaries({"line": odd_values, "character": odd_values}),
    st.sampled_from([None, {}, [], "0:0"]),
)
ranges = st.fixed_dictionaries({"start": positions, "end": positions})
SETTING_VALUES: dict[str, Any] = {
    "maxTokens": st.one_of(st.integers(-3, 64), odd_values),
    "temperature": st.one_of(st.floats(0, 2), odd_values),
    "cacheSize": st.one_of(st.integers(0, 8), odd_values),
    "timeBudgetMs": st.one_of(st.floats(0, 2000), st.none()),
    "middleLines": st.one_of(st.integers(1, 4), odd_values),
    "languages": st.one_of(st.lists(st.sampled_from(LANGUAGES), max_size=2), odd_values),
    "logLevel": st.sampled_from(["debug", "info", "warning", "nope", 3]),
    "nThreads": st.sampled_from([1, 1, 1, 0, -1, 10**6, "2", None]),
    "promptTokens": st.one_of(st.integers(0, 4096), st.none(), odd_values),
    "noSuchSetting": odd_values,
}
settings = st.fixed_dictionaries({}, optional=SETTING_VALUES)

open_actions = st.tuples(
    st.just("open"), st.sampled_from(URIS), texts, st.sampled_from(LANGUAGES), odd_values
)
change_actions = st.tuples(
    st.just("change"),
    st.sampled_from(URIS),
    st.lists(st.one_of(st.tuples(ranges, texts), st.tuples(st.none(), texts)), max_size=3),
    odd_values,
)
close_actions = st.tuples(st.just("close"), st.sampled_from(URIS))
complete_actions = st.tuples(
    st.just("complete"),
    st.sampled_from(["textDocument/inlineCompletion", "textDocument/completion"]),
    st.sampled_from(URIS),
    positions,
    st.one_of(st.sampled_from([1, 2]), odd_values),
)
cancel_actions = st.tuples(st.just("cancel"), st.integers(0, 200), st.booleans())
config_actions = st.tuples(st.just("config"), settings, st.booleans())
command_actions = st.tuples(
    st.just("command"),
    st.sampled_from(["coder-lsp.status", "coder-lsp.stats", "coder-lsp.nope", "", 5]),
    st.lists(odd_values, max_size=2),
)
unknown_actions = st.tuples(
    st.just("unknown"),
    st.sampled_from(["x/y", "textDocument/hover", "$/setTrace", "workspace/symbol", ""]),
    st.booleans(),
    odd_values,
)
client_response_actions = st.tuples(st.just("response"), odd_values, st.booleans())
junk_actions = st.tuples(
    st.just("junk"),
    st.sampled_from(
        [
            "bad_json",
            "short",
            "long",
            "negative",
            "garbage",
            "no_jsonrpc",
            "array",
            "deep",
            "header_only",
            "null_id",
            "bad_id",
        ]
    ),
    st.integers(1, 60),
    st.binary(max_size=40),
)
actions = st.one_of(
    open_actions,
    change_actions,
    change_actions,
    close_actions,
    complete_actions,
    complete_actions,
    cancel_actions,
    config_actions,
    command_actions,
    unknown_actions,
    client_response_actions,
    junk_actions,
)
sequences = st.lists(actions, min_size=1, max_size=40)


@dataclass
class Figures:
    """What a fuzz run did and found."""

    examples: int = 0
    messages: int = 0
    requests: int = 0
    answered: int = 0
    unanswered: int = 0
    duplicates: int = 0
    internal_errors: int = 0
    unexpected_codes: int = 0
    tracebacks: int = 0
    known_failures: int = 0
    crashes: int = 0
    hangs: int = 0
    rss_start_kb: int = 0
    rss_max_kb: int = 0
    rss_end_kb: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """Every invariant violation counted."""
        return (
            self.unanswered
            + self.duplicates
            + self.internal_errors
            + self.unexpected_codes
            + self.tracebacks
            + self.known_failures
            + self.crashes
            + self.hangs
        )

    def summary(self) -> str:
        """One line of figures."""
        return (
            f"examples={self.examples} messages={self.messages} requests={self.requests} "
            f"answered={self.answered} unanswered={self.unanswered} "
            f"duplicates={self.duplicates} internal_errors={self.internal_errors} "
            f"unexpected_codes={self.unexpected_codes} tracebacks={self.tracebacks} "
            f"known_doc_failures={self.known_failures} crashes={self.crashes} "
            f"hangs={self.hangs} rss_start_mb={self.rss_start_kb / 1024:.0f} "
            f"rss_max_mb={self.rss_max_kb / 1024:.0f} rss_end_mb={self.rss_end_kb / 1024:.0f} "
            f"rss_growth_mb={(self.rss_end_kb - self.rss_start_kb) / 1024:.1f}"
        )


class Fuzzer:
    """One server process fed sequence after sequence."""

    def __init__(self, model: Path, figures: Figures | None = None) -> None:
        self.model = model
        self.figures = figures or Figures()
        self.server: StdioServer | None = None
        self._n = 0
        self._ids: list[Any] = []
        self._seen = 0

    async def start(self) -> None:
        """Start and initialize the server; open the known document."""
        self.server = await StdioServer.start()
        await self.server.initialize(self.model, cacheSize=0)
        self.server.open(KNOWN_URI)
        assert await self.server.complete(KNOWN_URI) == DEFAULT_COMPLETION
        self.figures.rss_start_kb = self.figures.rss_max_kb = self.server.rss_kb

    async def close(self) -> None:
        """End the server."""
        if self.server is not None:
            if self.server.proc.returncode is None:
                self.figures.rss_end_kb = self.server.rss_kb
            await self.server.close()

    def _id(self) -> int:
        self._n += 1
        return self._n

    def _send(self, msg: dict[str, Any] | bytes, raw: bool = False) -> None:
        assert self.server is not None
        self.server.write(msg if raw and isinstance(msg, bytes) else frame(msg))  # type: ignore[arg-type]
        self.figures.messages += 1

    def _emit(self, action: tuple[Any, ...], strict: set[Any], maybe: set[Any]) -> None:
        kind = action[0]
        if kind == "open":
            _, uri, text, language, version = action
            self._send(
                {
                    "jsonrpc": "2.0",
                    "method": "textDocument/didOpen",
                    "params": {
                        "textDocument": {
                            "uri": uri,
                            "languageId": language,
                            "version": version if isinstance(version, int) else 1,
                            "text": text,
                        }
                    },
                }
            )
        elif kind == "change":
            _, uri, changes, version = action
            content = [
                {"text": text} if rng is None else {"range": rng, "text": text}
                for rng, text in changes
            ]
            self._send(
                {
                    "jsonrpc": "2.0",
                    "method": "textDocument/didChange",
                    "params": {
                        "textDocument": {"uri": uri, "version": version},
                        "contentChanges": content,
                    },
                }
            )
        elif kind == "close":
            self._send(
                {
                    "jsonrpc": "2.0",
                    "method": "textDocument/didClose",
                    "params": {"textDocument": {"uri": action[1]}},
                }
            )
        elif kind == "complete":
            _, method, uri, position, trigger = action
            msg_id = self._id()
            strict.add(msg_id)
            self._ids.append(msg_id)
            params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": position}
            params["context"] = {"triggerKind": trigger}
            self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        elif kind == "cancel":
            _, back, known = action
            target = self._ids[-1 - back % len(self._ids)] if self._ids and known else back
            self._send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": target}})
        elif kind == "config":
            _, values, wrapped = action
            self._send(
                {
                    "jsonrpc": "2.0",
                    "method": "workspace/didChangeConfiguration",
                    "params": {"settings": {"coderLsp": values} if wrapped else values},
                }
            )
        elif kind == "command":
            _, command, args = action
            msg_id = self._id()
            strict.add(msg_id)
            self._send(
                {
                    "jsonrpc": "2.0",
                    "id": msg_id,
                    "method": "workspace/executeCommand",
                    "params": {"command": command, "arguments": args},
                }
            )
        elif kind == "unknown":
            _, method, is_request, params = action
            msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
            if is_request:
                msg["id"] = self._id()
                strict.add(msg["id"])
            self._send(msg)
        elif kind == "response":
            _, value, is_error = action
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": f"no-such-{self._id()}"}
            if is_error:
                reply["error"] = {"code": -1, "message": str(value)}
            else:
                reply["result"] = value
            self._send(reply)
        elif kind == "junk":
            self._junk(action, maybe)

    def _junk(self, action: tuple[Any, ...], maybe: set[Any]) -> None:
        _, how, k, noise = action
        msg_id = f"junk-{self._id()}"
        maybe.add(msg_id)
        request = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": msg_id,
                "method": "workspace/executeCommand",
                "params": {"command": "coder-lsp.status"},
            }
        ).encode()
        if how == "bad_json":
            data = frame(request[:-1] + b",}")
        elif how == "short":
            data = b"Content-Length: %d\r\n\r\n" % max(0, len(request) - k) + request
        elif how == "long":
            data = b"Content-Length: %d\r\n\r\n" % (len(request) + k) + request
        elif how == "negative":
            data = b"Content-Length: -%d\r\n\r\n" % k + request
        elif how == "garbage":
            data = noise
        elif how == "no_jsonrpc":
            data = frame(request.replace(b'"jsonrpc": "2.0", ', b""))
        elif how == "array":
            data = frame(b"[" + request + b"]")
        elif how == "deep":
            data = frame(b"[" * (k * 1000) + b"]" * (k * 1000))
        elif how == "header_only":
            data = b"Content-Length: %d\r\n\r\n" % k
        elif how == "null_id":
            data = frame(request.replace(json.dumps(msg_id).encode(), b"null"))
        else:  # bad_id
            data = frame(request.replace(json.dumps(msg_id).encode(), b"[1]"))
        self._send(data, raw=True)

    async def run(self, sequence: list[tuple[Any, ...]], timeout: float = 30) -> None:
        """Send one sequence and check every invariant; problems go to the figures."""
        assert self.server is not None
        fig = self.figures
        fig.examples += 1
        strict: set[Any] = set()
        maybe: set[Any] = set()
        for action in sequence:
            self._emit(action, strict, maybe)
        # Settings back to the known good ones, then the known document must complete.
        self._send(
            {
                "jsonrpc": "2.0",
                "method": "workspace/didChangeConfiguration",
                "params": {
                    "settings": {
                        "maxTokens": 128,
                        "temperature": 0,
                        "languages": [],
                        "nThreads": 1,
                        "middleLines": 1,
                        "promptTokens": None,
                        "timeBudgetMs": 1500,
                    }
                },
            }
        )
        fig.requests += len(strict)
        try:
            await self._check_known()
            await self._await_all(strict, timeout)
        except TimeoutError:
            if self.server.proc.returncode is not None:
                fig.crashes += 1
                fig.problems.append(f"server exited {self.server.proc.returncode}: {sequence!r}")
                raise
            fig.hangs += 1
            fig.problems.append(f"no answer within {timeout} s after: {sequence!r}"[:4000])
        except AssertionError as err:
            if self.server.proc.returncode is not None:
                fig.crashes += 1
                fig.problems.append(f"server exited {self.server.proc.returncode}: {sequence!r}")
                raise
            fig.known_failures += 1
            fig.problems.append(f"known document: {err}; after {sequence!r}"[:4000])
        self._tally(strict, maybe, sequence)
        rss = self.server.rss_kb
        fig.rss_max_kb = max(fig.rss_max_kb, rss)
        fig.rss_end_kb = rss

    async def _check_known(self) -> None:
        assert self.server is not None
        msg_id = f"known-{self._id()}"
        self._send(
            {
                "jsonrpc": "2.0",
                "id": msg_id,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": KNOWN_URI},
                    "position": {"line": 1, "character": 4},
                    "context": {"triggerKind": 1},
                },
            }
        )
        got = await self.server.response(msg_id)
        items = got.get("result", {}).get("items") if isinstance(got.get("result"), dict) else None
        text = items[0]["insertText"] if items else None
        assert text == DEFAULT_COMPLETION, f"got {got}"

    async def _await_all(self, strict: set[Any], timeout: float) -> None:
        assert self.server is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            answered = {m.get("id") for m in self.server.received if "method" not in m}
            if strict <= answered:
                return
            await self.server.read_message(max(0.05, deadline - loop.time()))

    def _tally(self, strict: set[Any], maybe: set[Any], sequence: list[Any]) -> None:
        assert self.server is not None
        fig = self.figures
        new = self.server.received[self._seen :]
        self._seen = len(self.server.received)
        counts: dict[Any, int] = {}
        for msg in new:
            text = json.dumps(msg)
            if "Traceback" in text or "traceback" in text:
                fig.tracebacks += 1
                fig.problems.append(f"traceback sent: {text[:2000]}")
            if "method" in msg:
                continue
            msg_id = msg.get("id")
            if not isinstance(msg_id, int | str):
                continue
            counts[msg_id] = counts.get(msg_id, 0) + 1
            code = msg.get("error", {}).get("code") if isinstance(msg.get("error"), dict) else None
            if msg_id in strict and code is not None:
                if code == -32603:
                    fig.internal_errors += 1
                    fig.problems.append(f"internal error {msg}; after {sequence!r}"[:4000])
                elif code not in EXPECTED_ERRORS:
                    fig.unexpected_codes += 1
                    fig.problems.append(f"unexpected code {msg}"[:2000])
        for msg_id in strict:
            n = counts.get(msg_id, 0)
            if n == 0:
                fig.unanswered += 1
                fig.problems.append(f"request {msg_id} unanswered; after {sequence!r}"[:4000])
            fig.answered += min(n, 1)
            fig.duplicates += max(0, n - 1)
        for msg_id in maybe:
            fig.duplicates += max(0, counts.get(msg_id, 0) - 1)
        # Keep the client's memory flat on long runs.
        self.server.received = self.server.received[-50:]
        self._seen = len(self.server.received)
