"""User settings: defaulted dataclasses and one converter from the editor's JSON.

Settings arrive as ``initializationOptions`` and in ``workspace/didChangeConfiguration``
(either bare or under a ``"coderLsp"`` / ``"coder-lsp"`` key), with camelCase names. An
invalid value never fails ``initialize``: the converter keeps the default for that field
and returns a message the server shows once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_MODEL = "deepseek-coder-1.3b-base"
DEFAULT_API_KEY_ENV = "CODER_LSP_API_KEY"
BACKEND_KINDS = ("local", "llama-server", "openai", "ollama")


# Each field's ``metadata["schema"]`` holds its JSON Schema keywords (bounds, enum, pattern;
# an enum may be a function, called when the schema is built). ``_check`` enforces the same
# rules; lsp_server.settings_schema derives the schema (types, defaults, descriptions from
# the field docstrings) and tests/unit/test_settings_schema.py checks the two agree.


def _template_names() -> tuple[str, ...]:
    """Return the FIM template names ``template`` accepts.

    Imported late: importing ``backends`` configures OpenMP, which parsing settings must not.
    """
    from lsp_server.backends.templates import FIM_TEMPLATES

    return tuple(sorted(FIM_TEMPLATES))


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """Which engine computes completions: in-process llama.cpp or a shared server."""

    kind: str = field(default="local", metadata={"schema": {"enum": BACKEND_KINDS}})
    """local (in-process llama.cpp), llama-server, openai (any OpenAI-compatible
    /v1/completions: vLLM, TGI, llama-cpp-python's server) or ollama."""
    url: str = field(default="", metadata={"schema": {"pattern": r"^\s*(https?://[^/\s]+.*)?$"}})
    """The engine's base URL (remote kinds), e.g. http://127.0.0.1:8080."""
    model: str = ""
    """The model name the engine serves (openai, ollama); empty: the engine's only one."""
    api_key_env: str = field(
        default=DEFAULT_API_KEY_ENV, metadata={"schema": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}}
    )
    """Environment variable that holds the API key (sent as a Bearer token; never logged)."""
    tokenizer: str | None = None
    """Registry name or .gguf path whose vocabulary tokenizes locally (exact budgets);
    "remote": the engine's /tokenize (cached); None: for llama-server its model file when
    that is on this machine, else its /tokenize; for engines without /tokenize the
    top-level ``model``."""
    slot: int | None = field(default=None, metadata={"schema": {"minimum": 0}})
    """llama-server only: pin this editor's requests to one slot (``id_slot``) so its
    prompt cache is never evicted by another user's; None lets the engine choose (it
    prefers the slot whose cache shares the longest prefix)."""

    @property
    def remote(self) -> bool:
        """True for every kind but the in-process one."""
        return self.kind != "local"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the server, with its default."""

    model: str = field(default=DEFAULT_MODEL, metadata={"schema": {"pattern": r"\S"}})
    """A registry name (see ``coder-lsp models list``) or a path to a .gguf file."""
    n_ctx: int = field(default=4096, metadata={"schema": {"minimum": 1}})
    """Context window in tokens (clamped to what the model was trained on)."""
    n_threads: int | None = field(default=None, metadata={"schema": {"minimum": 1}})
    """CPU threads for llama.cpp; None adapts per request between 1 and the available CPUs
    (at most 8) to whatever runs beside it (lsp_server.backends.threads)."""
    n_gpu_layers: int = field(default=0, metadata={"schema": {"minimum": -1}})
    """Layers to offload to the GPU (-1 = all); needs a CUDA or Metal build of llama-cpp-python."""
    max_tokens: int = field(default=128, metadata={"schema": {"minimum": 1}})
    """Upper bound on generated tokens per completion (lowered further by completion shape)."""
    temperature: float = field(default=0.0, metadata={"schema": {"minimum": 0}})
    """Sampling temperature; 0 is greedy and reproducible."""
    enable: bool = True
    """Master switch: when False every completion request answers empty."""
    languages: tuple[str, ...] = ()
    """LSP languageIds to complete in; empty means all."""
    disabled_languages: tuple[str, ...] = ()
    """LSP languageIds never to complete in (wins over ``languages``)."""
    template: str | None = field(default=None, metadata={"schema": {"enum": _template_names}})
    """Force a FIM template instead of detecting it from the model."""
    prompt_tokens: int | None = field(default=None, metadata={"schema": {"minimum": 64}})
    """Token budget for the prompt; None means n_ctx minus the output reserve."""
    time_budget_ms: float | None = field(default=1500.0, metadata={"schema": {"minimum": 0}})
    """Stop generating after this long once at least one full line exists (None: no limit)."""
    max_predict_ms: float | None = field(default=3000.0, metadata={"schema": {"minimum": 0}})
    """Hard limit on generation time; whole lines generated so far are kept (None: none)."""
    kv_prompt: bool = True
    """Lay the prompt out so that typing on a line only appends tokens (KV-cache friendly)."""
    middle_lines: int = field(default=1, metadata={"schema": {"minimum": 1}})
    """Lines before the cursor placed after the FIM middle token (1: only the cursor line)."""
    window_align_lines: int = field(default=32, metadata={"schema": {"minimum": 1}})
    """Start the local window on a multiple of this many lines, so scrolling keeps the cache."""
    cache_size: int = field(default=256, metadata={"schema": {"minimum": 0}})
    """Completions remembered for repeats and typed-through answers (0: no cache)."""
    repo_context: bool = True
    """Index the workspace and put definitions the file imports (and similar code) first in
    the prompt, the way the model saw repositories in training."""
    repo_share: float = field(default=0.4, metadata={"schema": {"minimum": 0, "maximum": 0.8}})
    """Share of the prompt budget that repository context may take (0 to 0.8)."""
    index_max_files: int = field(default=20_000, metadata={"schema": {"minimum": 0}})
    """Most files the workspace index reads (a log line says when a workspace has more)."""
    log_level: str = field(default="info", metadata={"schema": {"enum": lambda: _LOG_LEVELS}})
    """Log level for stderr / window/logMessage: debug, info, warning, error."""
    backend: BackendSettings = BackendSettings()
    """The engine: ``{kind, url, model, apiKeyEnv, tokenizer, slot}`` (default: in-process)."""


_LOG_LEVELS = ("debug", "info", "warning", "error")
_UPPER_BOUNDS: dict[str, int | float] = {
    "n_ctx": 1 << 20,
    "max_tokens": 8192,
    "n_gpu_layers": 10_000,
    "prompt_tokens": 1 << 20,
    "middle_lines": 1000,
    "window_align_lines": 100_000,
    "cache_size": 100_000,
    "index_max_files": 1_000_000,
    "temperature": 10.0,
    "time_budget_ms": 600_000.0,
    "max_predict_ms": 600_000.0,
}
"""Largest accepted values: beyond them a setting only exhausts memory or crashes llama.cpp
(a huge thread count segfaulted it); larger values are lowered to these, with a message."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _upper_bound(name: str) -> int | float | None:
    if name == "n_threads":
        return available_cpus()
    return _UPPER_BOUNDS.get(name)


_SECTION_KEYS = ("coderLsp", "coder-lsp", "coder_lsp")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _check(name: str, value: Any, default: Any) -> Any:
    """Return ``value`` converted for setting ``name``; ValueError when it can't be."""
    if name in ("n_ctx", "max_tokens"):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("must be a positive integer")
        return value
    if name == "n_threads":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("must be a positive integer or null")
        return value
    if name == "n_gpu_layers":
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise ValueError("must be an integer >= -1 (-1 offloads every layer)")
        return value
    if name == "prompt_tokens":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 64:
            raise ValueError("must be an integer >= 64 or null")
        return value
    if name in ("middle_lines", "window_align_lines"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be a positive integer")
        return value
    if name == "repo_share":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 0.8:
            raise ValueError("must be a number from 0 to 0.8")
        return float(value)
    if name == "index_max_files":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be an integer >= 0")
        return value
    if name == "cache_size":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be an integer >= 0")
        return value
    if name in ("temperature", "time_budget_ms", "max_predict_ms"):
        if value is None and name != "temperature":
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError("must be a number >= 0")
        return float(value)
    if name in ("enable", "kv_prompt", "repo_context"):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name in ("languages", "disabled_languages"):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of language ids")
        return tuple(value)
    if name in ("model",):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a model name or a path to a .gguf file")
        return value.strip()
    if name == "template":
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be a template name or null")
        return value
    if name == "backend":
        return _check_backend(value, default)
    if name == "log_level":
        if not isinstance(value, str) or value.lower() not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return value.lower()
    raise ValueError("unknown setting")  # pragma: no cover - guarded by the caller


def _check_backend(value: Any, current: BackendSettings) -> BackendSettings:
    """Convert ``{kind, url, model, apiKeyEnv, tokenizer, slot}``; unset keys keep ``current``.

    A bare string is taken as the kind. ValueError names the first bad key.
    """
    if isinstance(value, str):
        value = {"kind": value}
    if value is None:
        return BackendSettings()
    if not isinstance(value, Mapping):
        raise ValueError("must be an object {kind, url, model, apiKeyEnv, tokenizer, slot}")
    known = {f.name for f in fields(BackendSettings)}
    changes: dict[str, Any] = {}
    for key, raw in value.items():
        name = _snake(str(key))
        if name not in known:
            raise ValueError(f"unknown key {key!r}")
        if name == "kind":
            if not isinstance(raw, str) or raw.strip().lower() not in BACKEND_KINDS:
                raise ValueError(f"kind must be one of {', '.join(BACKEND_KINDS)}")
            changes[name] = raw.strip().lower()
        elif name == "url":
            if not isinstance(raw, str) or (
                raw.strip() and not re.match(r"^https?://[^/\s]+", raw.strip())
            ):
                raise ValueError("url must be an http:// or https:// URL")
            changes[name] = raw.strip().rstrip("/")
        elif name == "tokenizer":
            if raw is not None and not isinstance(raw, str):
                raise ValueError("tokenizer must be a model name, a .gguf path or null")
            changes[name] = raw.strip() if isinstance(raw, str) and raw.strip() else None
        elif name == "slot":
            if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 0):
                raise ValueError("slot must be an integer >= 0 or null")
            changes[name] = raw
        elif name == "api_key_env":
            if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw):
                raise ValueError("apiKeyEnv must be an environment variable name")
            changes[name] = raw
        else:
            if not isinstance(raw, str):
                raise ValueError(f"{key} must be a string")
            changes[name] = raw.strip()
    result = dataclasses.replace(current, **changes)
    if result.remote and not result.url:
        raise ValueError(f"kind {result.kind!r} needs a url")
    return result


@dataclass(frozen=True, slots=True)
class ParsedSettings:
    """The result of converting user JSON: settings plus what was wrong with the input."""

    settings: Settings
    errors: tuple[str, ...] = field(default=())


def parse_settings(raw: Any, base: Settings | None = None) -> ParsedSettings:
    """Convert editor JSON into :class:`Settings`, starting from ``base`` (or the defaults).

    Unknown keys and invalid values are reported in ``errors`` and otherwise ignored.
    """
    current = base or Settings()
    if raw is None:
        return ParsedSettings(current)
    if not isinstance(raw, Mapping):
        return ParsedSettings(current, (f"settings must be an object, got {type(raw).__name__}",))
    for key in _SECTION_KEYS:
        if isinstance(raw.get(key), Mapping):
            raw = raw[key]
            break
    known = {f.name: f for f in fields(Settings)}
    changes: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in raw.items():
        name = _snake(str(key))
        if name not in known:
            errors.append(f"unknown setting {key!r} (ignored)")
            continue
        try:
            checked = _check(name, value, getattr(current, name))
        except ValueError as err:
            errors.append(f"setting {key!r}: {err}; using {getattr(current, name)!r}")
            continue
        bound = _upper_bound(name)
        if bound is not None and isinstance(checked, int | float) and checked > bound:
            errors.append(f"setting {key!r}: {value!r} is more than {bound!r}; using {bound!r}")
            checked = type(checked)(bound)
        changes[name] = checked
    return ParsedSettings(dataclasses.replace(current, **changes), tuple(errors))


def language_enabled(settings: Settings, language_id: str) -> bool:
    """Whether completions are on for documents of ``language_id``."""
    if not settings.enable or language_id in settings.disabled_languages:
        return False
    return not settings.languages or language_id in settings.languages
