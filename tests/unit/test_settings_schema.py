"""The settings schema: derived from the dataclasses, agreeing with the converter, and the
one source of the VS Code manifest's server settings and the README's settings table."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lsp_server.cli import main
from lsp_server.settings import (
    BackendSettings,
    Settings,
    _snake,
    available_cpus,
    parse_settings,
)
from lsp_server.settings_schema import (
    VSCODE_SECTION,
    backend_schema,
    camel,
    settings_schema,
    vscode_properties,
)

ROOT = Path(__file__).resolve().parents[2]

EXTENSION_ONLY = {"serverPath", "serverArgs", "maxRestarts", "completionPopup"}
"""VS Code settings the extension reads itself and never sends (config.ts EXTENSION_KEYS)."""

LENIENT = {
    ("template", "enum"): "any name passes here; an unknown one is reported when the model loads",
    ("backend", "null"): "null resets the engine to the in-process default",
}
"""Where the converter accepts more than the schema says (never less)."""

MACHINE_BOUNDS = {"nThreads"}
"""Settings whose upper bound depends on the machine (the CPUs): not in the schema."""

PATTERN_PROBES: dict[str, tuple[list[Any], list[Any]]] = {
    "model": (["qwen2.5-coder-0.5b", "/m/x.gguf"], ["", "   "]),
    "backend.url": (
        ["", "http://127.0.0.1:8080", "https://gpu.example:443/v1"],
        ["ftp://h", "h:80"],
    ),
    "backend.apiKeyEnv": (["CODER_LSP_API_KEY", "_K1"], ["1KEY", "my-key", ""]),
}
"""Values that match / do not match each pattern, with the converter's answer the same."""


def _props() -> list[tuple[str, dict[str, Any]]]:
    """Every setting, nested ones as ``backend.key``, with its schema."""
    out = list(settings_schema()["properties"].items())
    out += [(f"backend.{k}", v) for k, v in backend_schema()["properties"].items()]
    return out


def _accepts(path: str, value: Any) -> bool:
    """Whether the server's converter takes ``value`` for setting ``path`` without error."""
    if path.startswith("backend."):
        key = path.split(".", 1)[1]
        extra = {"url": "http://127.0.0.1:1"} if key == "kind" else {}
        raw: dict[str, Any] = {"backend": {key: value, **extra}}
    else:
        raw = {path: value}
    return parse_settings(raw).errors == ()


_WRONG = {"string": 7, "integer": "7", "number": "7", "boolean": 1, "array": "x", "object": 7}
"""For each JSON type, a value of another type."""


def _valid_type(value: Any, types: list[str]) -> bool:
    """Whether ``value`` has one of the JSON Schema ``types`` (an integer is a number)."""
    if isinstance(value, bool):
        return "boolean" in types
    if isinstance(value, int):
        return "integer" in types or "number" in types
    return {str: "string", float: "number", list: "array", dict: "object"}[type(value)] in types


def _types(prop: dict[str, Any]) -> list[str]:
    return prop["type"] if isinstance(prop["type"], list) else [prop["type"]]


def test_every_field_is_in_the_schema_under_its_camel_case_name() -> None:
    schema = settings_schema()
    names = [f.name for f in dataclasses.fields(Settings)]
    assert list(schema["properties"]) == [camel(n) for n in names]
    assert [_snake(camel(n)) for n in names] == names  # the converter maps them back
    assert list(backend_schema()["properties"]) == [
        camel(f.name) for f in dataclasses.fields(BackendSettings)
    ]
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for _, p in _props())


def test_the_schema_defaults_are_the_settings_defaults() -> None:
    schema = settings_schema()
    defaults = {k: p["default"] for k, p in schema["properties"].items()}
    assert defaults == schema["default"]
    parsed = parse_settings(json.loads(json.dumps(defaults)))
    assert parsed.errors == ()
    assert parsed.settings == Settings()
    assert schema["properties"]["repoContext"] == {
        "type": "boolean",
        "default": True,
        "description": schema["properties"]["repoContext"]["description"],
    }
    assert schema["properties"]["backend"]["default"]["kind"] == "local"


def test_upper_bounds_come_from_the_converter_but_not_the_machine() -> None:
    props = settings_schema()["properties"]
    assert props["nCtx"]["maximum"] == 1 << 20
    assert props["maxTokens"]["maximum"] == 8192
    assert props["repoShare"]["maximum"] == 0.8
    assert "maximum" not in props["nThreads"]  # the CPUs of the machine that runs it
    parsed = parse_settings({"nThreads": 10**6})
    assert parsed.errors and parsed.settings.n_threads == available_cpus()


def test_descriptions_use_the_json_names() -> None:
    text = json.dumps(settings_schema())
    assert "n_ctx" not in text and "nCtx minus the output reserve" in text
    assert "None" not in text and "null" in text


@pytest.mark.parametrize("path,prop", _props(), ids=[p for p, _ in _props()])
def test_the_converter_enforces_what_the_schema_says(path: str, prop: dict[str, Any]) -> None:
    name = path.rsplit(".", 1)[-1]
    types = _types(prop)
    assert _accepts(path, prop["default"])
    # null
    if "null" in types:
        assert _accepts(path, None)
    elif (name, "null") not in LENIENT:
        assert not _accepts(path, None)
    # a value of another JSON type than the schema allows
    for t in types:
        value = _WRONG.get(t)
        if value is not None and not _valid_type(value, types):
            assert not _accepts(path, value), f"{path} took {value!r} ({t} expected)"
    if "integer" in types:
        assert not _accepts(path, True)
        assert not _accepts(path, (prop.get("minimum") or 0) + 1.5)
    if "array" in types:
        assert _accepts(path, ["a", "b"])
        assert not _accepts(path, [1])
    # bounds: the edge is in, one step beyond is out
    step = 1 if "integer" in types else 0.001
    if "minimum" in prop:
        assert _accepts(path, prop["minimum"])
        assert not _accepts(path, prop["minimum"] - step)
    if "maximum" in prop:
        assert _accepts(path, prop["maximum"])
        assert not _accepts(path, prop["maximum"] + step)
    elif ("integer" in types or "number" in types) and name not in MACHINE_BOUNDS:
        assert _accepts(path, 10**12), f"{path} has a bound the schema does not state"
    # enums: every member is in, anything else is out
    if "enum" in prop:
        for member in prop["enum"]:
            assert _accepts(path, member), f"{path} refused its enum member {member!r}"
        if (name, "enum") not in LENIENT:
            assert not _accepts(path, "no-such-" + name)
    # patterns: probes on both sides
    if "pattern" in prop:
        good, bad = PATTERN_PROBES[path]
        for value in good:
            assert re.search(prop["pattern"], value) and _accepts(path, value), value
        for value in bad:
            assert not re.search(prop["pattern"], value) and not _accepts(path, value), value


def test_vscode_manifest_declares_exactly_the_schema_settings() -> None:
    manifest = json.loads((ROOT / "editors/vscode/package.json").read_text(encoding="utf-8"))
    declared = manifest["contributes"]["configuration"]["properties"]
    expected = vscode_properties()
    server = {k: v for k, v in declared.items() if k in expected}
    extra = {k.removeprefix(f"{VSCODE_SECTION}.") for k in declared if k not in expected}
    assert extra == EXTENSION_ONLY, "run scripts/sync-vscode-settings.py"
    assert server == expected, "run scripts/sync-vscode-settings.py"
    assert set(expected) == {f"{VSCODE_SECTION}.{k}" for k in settings_schema()["properties"]}
    repo = expected["coderLsp.repoContext"]
    assert repo["type"] == "boolean" and repo["default"] is True


def _readme_table(header: str) -> list[list[str]]:
    """The rows of the README table whose header row is ``header``, cells stripped."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _cell_value(cell: str) -> Any:
    """A default as the README writes it: JSON, possibly in backticks, or a bare word."""
    text = cell.strip("`")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def test_readme_settings_table_lists_the_schema_settings_and_defaults() -> None:
    rows = _readme_table("| setting | default | meaning |")
    props = settings_schema()["properties"]
    assert [r[0].strip("`") for r in rows] == list(props)
    for name, default, _meaning in rows:
        expected = props[name.strip("`")]["default"]
        value = _cell_value(default)
        if isinstance(expected, dict):  # the README names the keys that matter
            assert value == {k: expected[k] for k in value}, name
        else:
            assert value == expected, name


def test_readme_backend_table_lists_the_backend_keys() -> None:
    rows = _readme_table("| key | meaning |")
    assert [r[0].strip("`") for r in rows] == list(backend_schema()["properties"])


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == settings_schema()
