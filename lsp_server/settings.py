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
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_MODEL = "deepseek-coder-1.3b-base"
DEFAULT_API_KEY_ENV = "CODER_LSP_API_KEY"
BACKEND_KINDS = ("local", "llama-server", "openai", "ollama")


# Each field carries its own rules in ``metadata`` (built by :func:`rules`): JSON Schema
# keywords under "schema" (bounds, enum, pattern; an enum may be a function, called when
# the schema is built), and for the converter "clamp" (an upper bound larger values are
# lowered to, with a message), "convert" (normalises an accepted value) and "means" (how
# an error message describes a valid value). One converter (:func:`_check_field`) reads
# the field's type and these rules; lsp_server.settings_schema derives the schema from the
# same fields, so the two cannot drift (tests/unit/test_settings_schema.py probes both).


def rules(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    enum: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    pattern: str | None = None,
    clamp: float | Callable[[], float] | None = None,
    convert: Callable[[Any], Any] | None = None,
    means: str | None = None,
    lenient_enum: bool = False,
) -> dict[str, Any]:
    """A field's ``metadata``: its JSON Schema keywords and the converter's extras.

    Args:
        minimum, maximum, enum, pattern: JSON Schema keywords; a value outside them is
            refused (the default is kept, with a message).
        clamp: Upper bound for numbers: a larger value is lowered to it, with a message
            (beyond it a setting only exhausts memory or crashes llama.cpp). A function
            when the bound depends on the machine; only constant bounds reach the schema.
        convert: Applied to an accepted value (strip, lower-case, …).
        means: What a valid value is, for error messages ("a model name or …").
        lenient_enum: The enum is a suggestion for editors; the converter takes any
            string (e.g. a template name checked when the model loads).
    """
    schema: dict[str, Any] = {}
    for key, value in (
        ("minimum", minimum),
        ("maximum", maximum),
        ("enum", enum),
        ("pattern", pattern),
    ):
        if value is not None:
            schema[key] = value
    meta: dict[str, Any] = {"schema": schema}
    for key, value in (("clamp", clamp), ("convert", convert), ("means", means)):
        if value is not None:
            meta[key] = value
    if lenient_enum:
        meta["lenient_enum"] = True
    return meta


def _lower(value: str) -> str:
    return value.strip().lower()


def _template_names() -> tuple[str, ...]:
    """Return the FIM template names ``template`` accepts.

    Imported late: importing ``backends`` configures OpenMP, which parsing settings must not.
    """
    from lsp_server.backends.templates import FIM_TEMPLATES

    return tuple(sorted(FIM_TEMPLATES))


@dataclass(frozen=True, slots=True)
class BackendSettings:
    """Which engine computes completions: in-process llama.cpp or a shared server."""

    kind: str = field(default="local", metadata=rules(enum=BACKEND_KINDS, convert=_lower))
    """local (in-process llama.cpp), llama-server, openai (any OpenAI-compatible
    /v1/completions: vLLM, TGI, llama-cpp-python's server) or ollama."""
    url: str = field(
        default="",
        metadata=rules(
            pattern=r"^\s*(https?://[^/\s]+.*)?$",
            convert=lambda v: v.strip().rstrip("/"),
            means="an http:// or https:// URL",
        ),
    )
    """The engine's base URL (remote kinds), e.g. http://127.0.0.1:8080."""
    model: str = field(default="", metadata=rules(convert=str.strip))
    """The model name the engine serves (openai, ollama); empty: the engine's only one."""
    api_key_env: str = field(
        default=DEFAULT_API_KEY_ENV,
        metadata=rules(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", means="an environment variable name"),
    )
    """Environment variable that holds the API key (sent as a Bearer token; never logged)."""
    tokenizer: str | None = field(default=None, metadata=rules(convert=lambda v: v.strip() or None))
    """Registry name or .gguf path whose vocabulary tokenizes locally (exact budgets);
    "remote": the engine's /tokenize (cached); None: for llama-server its model file when
    that is on this machine, else its /tokenize; for engines without /tokenize the
    top-level ``model``."""
    slot: int | None = field(default=None, metadata=rules(minimum=0))
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

    model: str = field(
        default=DEFAULT_MODEL,
        metadata=rules(
            pattern=r"\S", convert=str.strip, means="a model name or a path to a .gguf file"
        ),
    )
    """A registry name (see ``coder-lsp models list``) or a path to a .gguf file."""
    n_ctx: int = field(default=4096, metadata=rules(minimum=1, clamp=1 << 20))
    """Context window in tokens (clamped to what the model was trained on)."""
    n_threads: int | None = field(
        default=None, metadata=rules(minimum=1, clamp=lambda: available_cpus())
    )
    """CPU threads for llama.cpp; None adapts per request between 1 and the available CPUs
    (at most 8) to whatever runs beside it (lsp_server.backends.threads)."""
    n_gpu_layers: int = field(default=0, metadata=rules(minimum=-1, clamp=10_000))
    """Layers to offload to the GPU (-1 = all); needs a CUDA or Metal build of llama-cpp-python."""
    max_tokens: int = field(default=128, metadata=rules(minimum=1, clamp=8192))
    """Upper bound on generated tokens per completion (lowered further by completion shape)."""
    temperature: float = field(default=0.0, metadata=rules(minimum=0, clamp=10.0))
    """Sampling temperature; 0 is greedy and reproducible."""
    enable: bool = True
    """Master switch: when False every completion request answers empty."""
    languages: tuple[str, ...] = ()
    """LSP languageIds to complete in; empty means all."""
    disabled_languages: tuple[str, ...] = ()
    """LSP languageIds never to complete in (wins over ``languages``)."""
    template: str | None = field(
        default=None, metadata=rules(enum=_template_names, lenient_enum=True)
    )
    """Force a FIM template instead of detecting it from the model."""
    prompt_tokens: int | None = field(default=None, metadata=rules(minimum=64, clamp=1 << 20))
    """Token budget for the prompt; None means n_ctx minus the output reserve."""
    time_budget_ms: float | None = field(default=1500.0, metadata=rules(minimum=0, clamp=600_000.0))
    """Stop generating after this long once at least one full line exists (None: no limit)."""
    max_predict_ms: float | None = field(default=3000.0, metadata=rules(minimum=0, clamp=600_000.0))
    """Hard limit on generation time; whole lines generated so far are kept (None: none)."""
    kv_prompt: bool = True
    """Lay the prompt out so that typing on a line only appends tokens (KV-cache friendly)."""
    middle_lines: int = field(default=1, metadata=rules(minimum=1, clamp=1000))
    """Lines before the cursor placed after the FIM middle token (1: only the cursor line)."""
    window_align_lines: int = field(default=32, metadata=rules(minimum=1, clamp=100_000))
    """Start the local window on a multiple of this many lines, so scrolling keeps the cache."""
    cache_size: int = field(default=256, metadata=rules(minimum=0, clamp=100_000))
    """Completions remembered for repeats and typed-through answers (0: no cache)."""
    repo_context: bool = True
    """Index the workspace and put definitions the file imports (and similar code) first in
    the prompt, the way the model saw repositories in training."""
    repo_share: float = field(default=0.4, metadata=rules(minimum=0, maximum=0.8))
    """Share of the prompt budget that repository context may take (0 to 0.8)."""
    index_max_files: int = field(default=20_000, metadata=rules(minimum=0, clamp=1_000_000))
    """Most files the workspace index reads (a log line says when a workspace has more)."""
    log_level: str = field(default="info", metadata=rules(enum=lambda: _LOG_LEVELS, convert=_lower))
    """Log level for stderr / window/logMessage: debug, info, warning, error."""
    backend: BackendSettings = BackendSettings()
    """The engine: ``{kind, url, model, apiKeyEnv, tokenizer, slot}`` (default: in-process)."""


_LOG_LEVELS = ("debug", "info", "warning", "error")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_SECTION_KEYS = ("coderLsp", "coder-lsp", "coder_lsp")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(annotation, False)``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return inner[0], True
    return annotation, False


def _valid_value(base: Any, meta: Mapping[str, Any], nullable: bool) -> str:
    """What a valid value of a field is, in the words of an error message."""
    schema = meta.get("schema", {})
    if "means" in meta:
        what = meta["means"]
    elif "enum" in schema and not meta.get("lenient_enum"):
        enum = schema["enum"]
        what = "one of " + ", ".join(enum() if callable(enum) else enum)
    elif base in (int, float):
        what = "an integer" if base is int else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if base is int and low == 1 and high is None:
            what = "a positive integer"
        elif low is not None and high is not None:
            what += f" from {low} to {high}"
        elif low is not None:
            what += f" >= {low}"
    elif base is bool:
        what = "true or false"
    elif typing.get_origin(base) is tuple:
        what = "a list of strings"
    else:
        what = "a string"
    return f"{what} or null" if nullable else what


def _check_field(f: dataclasses.Field[Any], annotation: Any, value: Any, current: Any) -> Any:
    """Return ``value`` converted for field ``f``; ValueError says what a valid one is.

    The field's type and its ``metadata`` (:func:`rules`) are the whole specification.
    """
    base, nullable = _unwrap(annotation)
    if value is None and nullable:
        return None
    if dataclasses.is_dataclass(base):
        return _check_object(base, value, current)
    meta = f.metadata
    schema = meta.get("schema", {})
    bad = ValueError(f"must be {_valid_value(base, meta, nullable)}")
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is str:
        ok = isinstance(value, str)
    elif typing.get_origin(base) is tuple:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a new field type needs a line above
        raise TypeError(f"unsupported settings type {annotation!r}")
    if not ok:
        raise bad
    if "convert" in meta:
        value = meta["convert"](value)
        if value is None and nullable:
            return None
    low, high = schema.get("minimum"), schema.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        raise bad
    enum = schema.get("enum")
    strict = enum is not None and not meta.get("lenient_enum")
    if strict and value not in (enum() if callable(enum) else enum):
        raise bad
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise bad
    return value


def clamp_of(f: dataclasses.Field[Any]) -> float | None:
    """The upper bound a field's larger values are lowered to (None: none)."""
    clamp = f.metadata.get("clamp")
    return clamp() if callable(clamp) else clamp


def _check_object(cls: type, value: Any, current: Any) -> Any:
    """Convert a nested settings object (``backend``); unset keys keep ``current``.

    A bare string is taken as its ``kind``; null resets it to the defaults. ValueError
    names the first bad key.
    """
    if isinstance(value, str):
        value = {"kind": value}
    if value is None:
        return cls()
    keys = ", ".join(camel(f.name) for f in fields(cls))
    if not isinstance(value, Mapping):
        raise ValueError(f"must be an object {{{keys}}}")
    known = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for key, raw in value.items():
        name = _snake(str(key))
        if name not in known:
            raise ValueError(f"unknown key {key!r}")
        try:
            changes[name] = _check_field(known[name], hints[name], raw, getattr(current, name))
        except ValueError as err:
            raise ValueError(f"{key} {err}") from None
    result = dataclasses.replace(current, **changes)
    if isinstance(result, BackendSettings) and result.remote and not result.url:
        raise ValueError(f"kind {result.kind!r} needs a url")
    return result


def camel(name: str) -> str:
    """``n_ctx`` -> ``nCtx``: the name editors use (:func:`_snake` maps it back)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


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
    hints = typing.get_type_hints(Settings)
    changes: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in raw.items():
        name = _snake(str(key))
        if name not in known:
            errors.append(f"unknown setting {key!r} (ignored)")
            continue
        try:
            checked = _check_field(known[name], hints[name], value, getattr(current, name))
        except ValueError as err:
            errors.append(f"setting {key!r}: {err}; using {getattr(current, name)!r}")
            continue
        bound = clamp_of(known[name])
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
