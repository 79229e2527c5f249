"""The settings as JSON Schema, derived from the :mod:`lsp_server.settings` dataclasses.

Nothing here restates a setting: names come from the fields (camelCase, as editors send
them), types from the annotations, defaults from the field defaults, descriptions from
the field docstrings, bounds / enums / patterns from each field's ``metadata["schema"]`` and
upper bounds from each field's clamp (:func:`lsp_server.settings.rules`).
``coder-lsp settings --schema`` prints :func:`settings_schema`; the VS Code extension's
``contributes.configuration`` is generated from it (:func:`vscode_properties`,
``scripts/sync-vscode-settings``) and a unit test checks that it and the README's table
still match.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import re
import types
import typing
from functools import cache
from typing import Any

from lsp_server import settings as settings_module
from lsp_server.settings import BackendSettings, Settings, camel

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""VS Code validates settings with draft-07, so the schema uses it too."""

_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@cache
def _field_docs(cls_name: str) -> dict[str, str]:
    """The docstring under each field of class ``cls_name``, whitespace collapsed."""
    tree = ast.parse(inspect.getsource(settings_module))
    docs: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls_name:
            body = node.body
            for stmt, nxt in itertools.pairwise(body):
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)
                ):
                    docs[stmt.target.id] = _for_json(" ".join(nxt.value.value.split()))
    return docs


_PY_TO_JSON = {"None": "null", "True": "true", "False": "false"}


def _for_json(doc: str) -> str:
    """A field docstring in the words of a JSON settings file: ``null`` for None, camelCase
    setting names (the docstrings are written for Python readers)."""
    doc = re.sub(r"\b(None|True|False)\b", lambda m: _PY_TO_JSON[m.group(1)], doc)
    names = {f.name for cls in (Settings, BackendSettings) for f in dataclasses.fields(cls)}
    return re.sub(
        r"\b[a-z]+(?:_[a-z]+)+\b",
        lambda m: camel(m.group(0)) if m.group(0) in names else m.group(0),
        doc,
    )


def _json_default(value: Any) -> Any:
    """A field default as JSON: tuples become lists, nested settings objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            camel(f.name): _json_default(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    return value


def _type_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema for a field's type: scalars, ``X | None``, ``tuple[str, ...]``, objects."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"unsupported settings type {annotation!r}")
        schema = _type_schema(inner[0])
        schema["type"] = [schema["type"], "null"]
        return schema
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _type_schema(args[0])}
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if dataclasses.is_dataclass(annotation):
        return _object_schema(annotation)
    raise TypeError(f"unsupported settings type {annotation!r}")


def _object_schema(cls: type) -> dict[str, Any]:
    """The schema of one settings dataclass: every field, nothing else allowed."""
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls.__name__)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name])
        for key, value in f.metadata.get("schema", {}).items():
            prop[key] = list(value() if callable(value) else value) if key == "enum" else value
        # The converter lowers larger values to a field's clamp (with a message);
        # nThreads' clamp is this machine's CPUs (a function), so no schema (nor the VS
        # Code manifest built from it) states it.
        bound = f.metadata.get("clamp")
        if bound is not None and not callable(bound) and "maximum" not in prop:
            prop["maximum"] = bound
        if "enum" in prop and isinstance(prop["type"], list):
            prop["enum"] = [None, *prop["enum"]]
        prop["default"] = _json_default(f.default)
        if f.name in docs:
            prop["description"] = docs[f.name]
        properties[camel(f.name)] = prop
    return {"type": "object", "properties": properties, "additionalProperties": False}


def settings_schema() -> dict[str, Any]:
    """The whole settings object (``initializationOptions``) as a JSON Schema document."""
    body = _object_schema(Settings)
    body["default"] = _json_default(Settings())
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "coder-lsp settings",
        "description": (
            "initializationOptions and workspace/didChangeConfiguration settings "
            '(bare or under a "coderLsp" key)'
        ),
        **body,
    }


def backend_schema() -> dict[str, Any]:
    """The ``backend`` object's schema (its own README table lists these keys)."""
    return _object_schema(BackendSettings)


VSCODE_SECTION = "coderLsp"
"""The VS Code settings section: ``coderLsp.<setting>``."""


def _markdown(text: str) -> str:
    """Docstring markup (rST double backticks) as markdown code spans."""
    return text.replace("``", "`")


def vscode_properties() -> dict[str, Any]:
    """``contributes.configuration.properties`` entries for every server setting.

    Same types, defaults, bounds and enums as :func:`settings_schema`; the description is
    shown as markdown.
    """
    out: dict[str, Any] = {}
    for name, prop in settings_schema()["properties"].items():
        entry = {k: v for k, v in prop.items() if k != "description"}
        if "description" in prop:
            entry["markdownDescription"] = _markdown(prop["description"])
        if "properties" in entry:
            entry["properties"] = {
                key: {k: v for k, v in sub.items() if k != "description"}
                | (
                    {"markdownDescription": _markdown(sub["description"])}
                    if "description" in sub
                    else {}
                )
                for key, sub in entry["properties"].items()
            }
        out[f"{VSCODE_SECTION}.{name}"] = entry
    return out
