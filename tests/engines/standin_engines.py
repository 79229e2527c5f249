"""Stand-ins for Ollama and vLLM, which cannot run on these machines, for the engine tests.

Each is a real HTTP server in its own process (``python -m tests.engines.standin_engines
ollama|vllm --port P --model GGUF``) that generates with the real model through
llama-cpp-python, greedy, one request at a time, keeping the previous prompt's KV cache
(prefix reuse, as both engines do). It speaks each engine's wire format as its own source
defines it:

**Ollama** — ollama/ollama ``api/types.go`` at commit b8761ab0 (``GenerateRequest``:
``model``, ``prompt``, ``raw``, ``stream``, ``keep_alive``, ``options``;
``GenerateResponse``: ``model``, ``created_at``, ``response``, ``done``, ``done_reason``
and ``Metrics``: ``total_duration``, ``load_duration``, ``prompt_eval_count``,
``prompt_eval_duration``, ``eval_count``, ``eval_duration`` in nanoseconds;
``Options``/``Runner``: ``num_ctx``, ``num_predict``, ``temperature``, ``top_p``, ``stop``;
``ShowResponse.model_info``; ``ListResponse.models``; ``StatusError`` ``{"error"}``) and
``docs/api.md`` at commit 9fbfa742 (streamed NDJSON; an empty prompt loads the model and
answers one object with ``done_reason: "load"``; ``/api/version``). Behaviour modelled:
the model loads on first use (a real load here), a ``raw`` prompt is tokenized with
special tokens parsed and BOS added (as Ollama's runner does), a prompt longer than
``num_ctx`` is cut to its last ``num_ctx`` tokens (Ollama's silent truncation), there is
no API key, and closing the connection stops the generation.

**vLLM** — vllm-project/vllm ``vllm/entrypoints/openai/protocol.py`` at commit ec3b890c
(``ModelCard``: ``id``, ``object``, ``owned_by: "vllm"``, ``max_model_len``;
``CompletionRequest.prompt`` as a string or a list of token ids; the stream's
``CompletionStreamResponse`` ``{id, object: "text_completion", created, model, choices:
[{index, text, logprobs, finish_reason, stop_reason}], usage}`` then ``data: [DONE]``;
``TokenizeCompletionRequest`` ``{model, prompt, add_special_tokens}`` →
``TokenizeResponse`` ``{count, max_model_len, tokens}``; ``ErrorResponse``
``{"error": {message, type, param, code}}``), with the context-length message of vLLM's
``serving_engine`` ("This model's maximum context length is N tokens. However, you
requested …"), ``--api-key`` answering 401, and ``suffix`` refused. ``--hide-context``
makes it a generic OpenAI-compatible engine that never says its context: not
``owned_by: "vllm"``, no ``max_model_len``, no ``/tokenize``.

Both record every request (``GET /standin/log``) and take injected faults
(``POST /standin/fault {"status": 500, "count": 1}`` or ``{"hang": true, "count": 1}``):
the tests' only view into the engine besides its API.
"""

from __future__ import annotations

import argparse
import codecs
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OLLAMA_NAME = "qwen2.5-coder:0.5b"


class Runner:
    """The real model, loaded on first use; one generation at a time."""

    def __init__(self, path: str, n_ctx: int) -> None:
        self.path, self.n_ctx = path, n_ctx
        self.llm: Any = None
        self.lock = threading.Lock()
        self.load_ms = 0.0

    def load(self) -> float:
        """Load the model if needed; the milliseconds it took (0 when loaded already)."""
        with self.lock:
            if self.llm is not None:
                return 0.0
            import llama_cpp

            started = time.perf_counter()
            self.llm = llama_cpp.Llama(
                self.path, n_ctx=self.n_ctx, n_threads=1, n_batch=512, verbose=False
            )
            self.load_ms = (time.perf_counter() - started) * 1000
            return self.load_ms

    def metadata(self) -> dict[str, str]:
        self.load()
        return dict(self.llm.metadata)

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        self.load()
        return list(self.llm.tokenize(text.encode(), add_bos=add_bos, special=special))

    def adds_bos(self) -> bool:
        return self.metadata().get("tokenizer.ggml.add_bos_token") == "true"

    def stream(
        self,
        tokens: list[int],
        max_tokens: int,
        stops: list[str],
        record: dict[str, Any],
        stop_ids: frozenset[int] = frozenset(),
    ) -> Iterator[str]:
        """Greedy text pieces for ``tokens``; fills ``record`` (evaluated, generated, reason).

        The caller stops iterating when its client goes away (the generator is closed).
        """
        import llama_cpp

        self.load()
        with self.lock:
            llm = self.llm
            cached = 0
            for a, b in zip(llm._input_ids[: llm.n_tokens], tokens, strict=False):
                if a != b:
                    break
                cached += 1
            cached = min(cached, len(tokens) - 1)
            record.update(evaluated=len(tokens) - cached, generated=0, reason="length")
            record["prompt_ids"] = list(tokens)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            text = ""
            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            started = time.perf_counter()
            for token in llm.generate(tokens, top_k=1, temp=0.0, repeat_penalty=1.0):
                if record["generated"] == 0:
                    record["prompt_ms"] = (time.perf_counter() - started) * 1000
                    started = time.perf_counter()
                if llama_cpp.llama_vocab_is_eog(vocab, token) or token in stop_ids:
                    record["reason"] = "stop"
                    break
                record["generated"] += 1
                piece = decoder.decode(llm.detokenize([token]))
                text += piece
                hit = next((s for s in stops if s and s in text), None)
                if hit is not None:
                    record["reason"] = "stop"
                    record["stop"] = hit
                    keep = text.index(hit) - (len(text) - len(piece))
                    if keep > 0:
                        yield piece[:keep]
                    break
                if piece:
                    yield piece
                if record["generated"] >= max_tokens:
                    record["reason"] = "length"
                    break
            record["eval_ms"] = (time.perf_counter() - started) * 1000


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], args: Any) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.args = args
        self.runner = Runner(args.model, args.ctx)
        self.log: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _Base(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------
    def body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw.strip() else {}

    def send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def record(self, **fields: Any) -> dict[str, Any]:
        entry = {"path": self.path, **fields}
        with self.server.lock:
            self.server.log.append(entry)
        return entry

    def fault(self) -> bool:
        """Apply an injected fault to this request; True when it was answered."""
        with self.server.lock:
            fault = self.server.faults[0] if self.server.faults else None
            if fault is not None:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.server.faults.pop(0)
        if fault is None:
            return False
        entry = self.record(fault=fault, closed=False)
        if fault.get("hang"):
            # Accept the request and never answer; notice when the client gives up.
            self.connection.settimeout(0.1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if self.connection.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            entry["closed"] = True
            self.close_connection = True
            return True
        self.send_json(int(fault["status"]), {"error": f"injected fault {fault['status']}"})
        return True

    def control(self) -> bool:
        if self.path == "/standin/log" and self.command == "GET":
            with self.server.lock:
                self.send_json(200, list(self.server.log))
            return True
        if self.path == "/standin/fault" and self.command == "POST":
            fault = self.body()
            fault.setdefault("count", 1)
            with self.server.lock:
                self.server.faults.append(fault)
            self.send_json(200, {"ok": True})
            return True
        return False

    def stream_pieces(
        self,
        tokens: list[int],
        max_tokens: int,
        stops: list[str],
        entry: dict[str, Any],
        emit: Any,
        stop_ids: frozenset[int] = frozenset(),
    ) -> bool:
        """Run the model, passing each piece to ``emit``; False when the client went away."""
        pieces = self.server.runner.stream(tokens, max_tokens, stops, entry, stop_ids)
        try:
            for piece in pieces:
                emit(piece)
        except (BrokenPipeError, ConnectionResetError):
            entry["cancelled"] = True
            return False
        finally:
            pieces.close()
        return True


# ---------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class OllamaHandler(_Base):
    def do_GET(self) -> None:
        if self.control():
            return
        if self.path == "/api/version":
            self.send_json(200, {"version": "0.5.7"})
        elif self.path == "/api/tags":
            details = {"format": "gguf", "family": "qwen2", "parameter_size": "494M"}
            model = {"name": OLLAMA_NAME, "model": OLLAMA_NAME, "modified_at": _now()}
            self.send_json(
                200, {"models": [{**model, "size": 1, "digest": "0", "details": details}]}
            )
        else:
            self.send_json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        if self.control() or self.fault():
            return
        body = self.body()
        if self.path not in ("/api/show", "/api/generate"):
            self.send_json(404, {"error": "404 page not found"})
            return
        if body.get("model") not in (OLLAMA_NAME, OLLAMA_NAME.split(":")[0]):
            self.send_json(
                404, {"error": f'model "{body.get("model")}" not found, try pulling it first'}
            )
            return
        if self.path == "/api/show":
            info: dict[str, Any] = {}
            for key, value in self.server.runner.metadata().items():
                if key.startswith("tokenizer.ggml.") and key.endswith(
                    ("tokens", "merges", "token_type")
                ):
                    info[key] = None  # arrays only with "verbose", as Ollama does
                    continue
                info[key] = int(value) if value.isdigit() else value
            self.send_json(
                200,
                {
                    "modelfile": "",
                    "parameters": "",
                    "template": "{{ .Prompt }}",
                    "details": {"format": "gguf", "family": "qwen2"},
                    "model_info": info,
                },
            )
            return
        self.generate(body)

    def generate(self, body: dict[str, Any]) -> None:
        runner = self.server.runner
        options = body.get("options") or {}
        load_ns = int(runner.load() * 1e6)
        entry = self.record(body=body, cancelled=False)
        if not body.get("prompt"):
            self.send_json(
                200,
                {
                    "model": body["model"],
                    "created_at": _now(),
                    "response": "",
                    "done": True,
                    "done_reason": "load",
                },
            )
            return
        if not body.get("raw"):
            self.send_json(400, {"error": "this stand-in only models raw prompts"})
            return
        num_ctx = int(options.get("num_ctx") or 2048)
        tokens = runner.tokenize(body["prompt"], add_bos=runner.adds_bos(), special=True)
        entry["truncated"] = len(tokens) > num_ctx
        tokens = tokens[-num_ctx:]  # Ollama keeps the end of an over-long prompt
        max_tokens = int(options.get("num_predict") or 128)
        stops = [str(s) for s in options.get("stop") or []]
        self.start_chunked("application/x-ndjson")
        model = body["model"]

        def emit(piece: str) -> None:
            line = {"model": model, "created_at": _now(), "response": piece, "done": False}
            self.chunk(json.dumps(line).encode() + b"\n")

        if not self.stream_pieces(tokens, max_tokens, stops, entry, emit):
            self.close_connection = True
            return
        final = {
            "model": model,
            "created_at": _now(),
            "response": "",
            "done": True,
            "done_reason": entry["reason"],
            "total_duration": int((entry.get("prompt_ms", 0) + entry.get("eval_ms", 0)) * 1e6),
            "load_duration": load_ns,
            "prompt_eval_count": entry["evaluated"],
            "prompt_eval_duration": int(entry.get("prompt_ms", 0) * 1e6),
            "eval_count": entry["generated"],
            "eval_duration": int(entry.get("eval_ms", 0) * 1e6),
        }
        self.chunk(json.dumps(final).encode() + b"\n")
        self.end_chunked()


# ---------------------------------------------------------------------------------------
# vLLM
# ---------------------------------------------------------------------------------------


def _vllm_error(status: int, message: str, kind: str = "BadRequestError") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


class VllmHandler(_Base):
    def authorized(self) -> bool:
        key = self.server.args.api_key
        if (
            key
            and self.path.startswith("/v1")
            and self.headers.get("Authorization") != f"Bearer {key}"
        ):
            self.send_json(401, {"error": "Unauthorized"})
            return False
        return True

    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = {
            "id": self.server.args.name,
            "object": "model",
            "created": 0,
            "owned_by": "someone" if self.server.args.hide_context else "vllm",
            "root": self.server.args.name,
            "parent": None,
            "permission": [],
        }
        if not self.server.args.hide_context:
            card["max_model_len"] = self.server.args.ctx
        return card

    def do_GET(self) -> None:
        if self.control() or not self.authorized():
            return
        if self.path == "/health":
            self.send_json(200, {})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [self.card()]})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if self.control() or not self.authorized() or self.fault():
            return
        body = self.body()
        runner = self.server.runner
        ctx = self.server.args.ctx
        if self.path == "/tokenize" and not self.server.args.hide_context:
            add = bool(body.get("add_special_tokens", True)) and runner.adds_bos()
            tokens = runner.tokenize(str(body.get("prompt", "")), add_bos=add, special=True)
            self.send_json(200, {"count": len(tokens), "max_model_len": ctx, "tokens": tokens})
            return
        if self.path != "/v1/completions":
            self.send_json(404, {"detail": "Not Found"})
            return
        if body.get("suffix"):
            self.send_json(400, _vllm_error(400, "suffix is not currently supported"))
            return
        prompt = body.get("prompt")
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            tokens = list(prompt)
        elif isinstance(prompt, str):
            tokens = runner.tokenize(prompt, add_bos=runner.adds_bos(), special=True)
        else:
            self.send_json(400, _vllm_error(400, "prompt must be a string or a list of token ids"))
            return
        max_tokens = int(body.get("max_tokens") or 16)
        entry = self.record(body=body, cancelled=False)
        if len(tokens) + max_tokens > ctx:
            message = (
                f"This model's maximum context length is {ctx} tokens. However, you requested "
                f"{len(tokens) + max_tokens} tokens ({len(tokens)} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages "
                "or completion."
            )
            entry["refused"] = True
            self.send_json(400, _vllm_error(400, message))
            return
        stop = body.get("stop") or []
        stops = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        rid, name = f"cmpl-{uuid.uuid4().hex}", body.get("model") or self.server.args.name
        self.start_chunked("text/event-stream")

        def event(choice: dict[str, Any], usage: Any = None) -> None:
            obj = {
                "id": rid,
                "object": "text_completion",
                "created": int(time.time()),
                "model": name,
                "choices": [choice] if choice else [],
                "usage": usage,
            }
            self.chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

        def emit(piece: str) -> None:
            event(
                {
                    "index": 0,
                    "text": piece,
                    "logprobs": None,
                    "finish_reason": None,
                    "stop_reason": None,
                }
            )

        stop_ids = frozenset(int(t) for t in body.get("stop_token_ids") or [])
        if not self.stream_pieces(tokens, max_tokens, stops, entry, emit, stop_ids):
            self.close_connection = True
            return
        event(
            {
                "index": 0,
                "text": "",
                "logprobs": None,
                "finish_reason": entry["reason"],
                "stop_reason": entry.get("stop"),
            }
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": len(tokens),
                "completion_tokens": entry["generated"],
                "total_tokens": len(tokens) + entry["generated"],
            }
            event({}, usage)
        self.chunk(b"data: [DONE]\n\n")
        self.end_chunked()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ollama", "vllm"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--name", default="Qwen/Qwen2.5-Coder-0.5B")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--hide-context", action="store_true")
    parser.add_argument("--preload", action="store_true", help="load the model before serving")
    args = parser.parse_args()
    handler = OllamaHandler if args.kind == "ollama" else VllmHandler
    server = StandinServer(args.port, handler, args)
    if args.preload:
        server.runner.load()
    server.serve_forever()


if __name__ == "__main__":
    main()
