#!/usr/bin/env python3
"""Regenerate the VS Code extension's server settings from the server's settings schema.

Rewrites ``contributes.configuration.properties`` in editors/vscode/package.json: every
``coderLsp.<server setting>`` entry comes from lsp_server.settings_schema.vscode_properties
(types, defaults, bounds, enums, descriptions); the extension's own settings (serverPath,
serverArgs, maxRestarts, completionPopup: those the server does not know) are kept as they
are, first. Run it after adding or changing a field in lsp_server/settings.py;
tests/unit/test_settings_schema.py fails until package.json matches.

Usage: PYTHONPATH=. .venv/bin/python scripts/sync-vscode-settings.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsp_server.settings_schema import vscode_properties  # noqa: E402

MANIFEST = ROOT / "editors" / "vscode" / "package.json"


def main() -> int:
    """Rewrite the manifest in place; report whether anything changed."""
    text = MANIFEST.read_text(encoding="utf-8")
    manifest = json.loads(text)
    props = manifest["contributes"]["configuration"]["properties"]
    server = vscode_properties()
    extension_only = {k: v for k, v in props.items() if k not in server}
    manifest["contributes"]["configuration"]["properties"] = {**extension_only, **server}
    new_text = json.dumps(manifest, indent=2) + "\n"
    if new_text == text:
        print("package.json already matches the settings schema")
        return 0
    MANIFEST.write_text(new_text, encoding="utf-8")
    print(f"rewrote {MANIFEST.relative_to(ROOT)}: {len(server)} server settings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
