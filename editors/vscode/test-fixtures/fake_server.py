"""A scripted stand-in for coder-lsp, used by the VS Code end-to-end test for failure paths.

Modes:
  crash       answer ``initialize``, then exit with status 3 on ``initialized`` (a server
              that dies at start-up every time: the extension must restart it a few times,
              then give up and say so).
  crash-early answer ``initialize`` and exit at once, while the client is still setting up
              (the library's own restart lost track of such a server and the status
              said "starting" for ever).
  slow-load   answer ``initialize``; on ``initialized`` report model loading the way the
              real server does (``window/workDoneProgress/create``, ``$/progress`` begin /
              report 40%, ``coder-lsp/status`` loading) and keep loading until the file
              given by ``--release`` exists; then end the progress and report ready.
              Like the real server, it keeps the latest inline completion request made
              while loading (an older one answers empty) and answers it once ready, with
              ``return a + b``; later requests get that answer at once.
  slow-answer ready at once; each inline completion request is answered after ``--delay``
              seconds (unless a newer one came meanwhile: then empty), like a local model
              on a busy laptop, with ``--answer``.

Each start appends a line to ``--counter``; every request method is appended to
``--requests``. Standard library only; stdout is the LSP transport.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, BinaryIO

_write_lock = threading.Lock()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """Read one LSP message; None at end of input."""
    length = 0
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    body = stream.read(length)
    return json.loads(body)


def send(message: dict[str, Any]) -> None:
    """Write one LSP message to stdout."""
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    with _write_lock:
        sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        sys.stdout.buffer.flush()


def append(path: str | None, line: str) -> None:
    """Append a line to a log file the test reads."""
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


COMPLETION = "return a + b"
_held: dict[str, Any] = {"id": None, "position": None, "ready": False}
_held_lock = threading.Lock()


def item(text: str, position: dict[str, int]) -> dict[str, Any]:
    """An inline completion item inserting ``text`` at ``position`` (an explicit range, as
    the real server sends)."""
    return {"insertText": text, "range": {"start": position, "end": position}}


def answer(msg_id: Any, position: dict[str, int]) -> None:
    """Answer an inline completion request with the fixed completion."""
    send({"id": msg_id, "result": {"items": [item(COMPLETION, position)]}})


def inline_completion(msg_id: Any, position: dict[str, int]) -> None:
    """Answer now when loaded; else hold this request (answering an older one empty)."""
    with _held_lock:
        if _held["ready"]:
            answer(msg_id, position)
            return
        older = _held["id"]
        _held["id"], _held["position"] = msg_id, position
    if older is not None:
        send({"id": older, "result": {"items": []}})


_latest: dict[str, Any] = {"id": None}


def answer_later(msg_id: Any, position: dict[str, int], delay: float, text: str) -> None:
    """Answer after ``delay`` seconds, empty when a newer request came meanwhile."""
    _latest["id"] = msg_id

    def run() -> None:
        time.sleep(delay)
        items = [item(text, position)] if _latest["id"] == msg_id else []
        send({"id": msg_id, "result": {"items": items}})

    threading.Thread(target=run, daemon=True).start()


def load_slowly(release: str, model: str) -> None:
    """Report loading with progress until the release file exists, then report ready."""
    token = "fake-load"
    send({"id": "create-1", "method": "window/workDoneProgress/create", "params": {"token": token}})
    status = {"state": "loading", "model": model, "detail": "loading"}
    send({"method": "coder-lsp/status", "params": status})
    begin = {"kind": "begin", "title": "coder-lsp", "message": f"Loading model {model}"}
    send({"method": "$/progress", "params": {"token": token, "value": {**begin, "percentage": 0}}})
    report = {"kind": "report", "message": "reading tensors", "percentage": 40}
    send({"method": "$/progress", "params": {"token": token, "value": report}})
    while not os.path.exists(release):
        time.sleep(0.1)
    end = {"kind": "end", "message": "Model ready"}
    send({"method": "$/progress", "params": {"token": token, "value": end}})
    status = {"state": "ready", "model": model, "detail": "loaded"}
    send({"method": "coder-lsp/status", "params": status})
    with _held_lock:
        _held["ready"] = True
        held, _held["id"] = _held["id"], None
    if held is not None:
        answer(held, _held["position"])


def main() -> int:
    """Serve until exit (or crash on purpose)."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--mode", choices=["crash", "crash-early", "slow-load", "slow-answer"], required=True
    )
    parser.add_argument("--delay", type=float, default=3.0)
    parser.add_argument("--answer", default=COMPLETION)
    parser.add_argument("--counter")
    parser.add_argument("--requests")
    parser.add_argument("--release", default="/nonexistent")
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args()
    append(args.counter, f"start {os.getpid()}")
    model = "fake-model"
    while True:
        msg = read_message(sys.stdin.buffer)
        if msg is None:
            return 0
        method = msg.get("method")
        append(args.requests, str(method or "response"))
        if method == "initialize":
            opts = (msg.get("params") or {}).get("initializationOptions") or {}
            model = str(opts.get("model") or model)
            caps = {
                "textDocumentSync": 2,
                "inlineCompletionProvider": {},
                "completionProvider": {},
                "executeCommandProvider": {"commands": ["coder-lsp.status"]},
            }
            send({"id": msg["id"], "result": {"capabilities": caps}})
            if args.mode == "crash-early":
                sys.stderr.write("fake coder-lsp: crashing on purpose after initialize\n")
                sys.stderr.flush()
                return 3
        elif method == "initialized":
            if args.mode == "crash":
                sys.stderr.write("fake coder-lsp: crashing on purpose\n")
                sys.stderr.flush()
                return 3
            if args.mode == "slow-answer":
                send({"method": "coder-lsp/status", "params": {"state": "ready", "model": model}})
            else:
                threading.Thread(
                    target=load_slowly, args=(args.release, model), daemon=True
                ).start()
        elif method == "textDocument/inlineCompletion" and args.mode == "slow-answer":
            answer_later(msg["id"], msg["params"]["position"], args.delay, args.answer)
        elif method == "textDocument/inlineCompletion":
            inline_completion(msg["id"], msg["params"]["position"])
        elif method == "textDocument/completion":
            send({"id": msg["id"], "result": {"isIncomplete": True, "items": []}})
        elif method == "shutdown":
            send({"id": msg["id"], "result": None})
        elif method == "exit":
            return 0
        elif "id" in msg and method is not None:
            send({"id": msg["id"], "result": None})


if __name__ == "__main__":
    sys.exit(main())
