/** Unit tests of config.ts: settings conversion, server path resolution, selectors. */

import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  completionWanted,
  documentSelector,
  EXTENSION_KEYS,
  expandPath,
  INSTALL_COMMAND,
  resolveServerPath,
  type ResolveEnv,
  serverSettingSpecs,
  toServerSettings,
} from "../config";

function getter(values: Record<string, unknown>): (key: string) => unknown {
  return (key) => values[key];
}

/** The extension's real manifest (out/test/ -> the package root). */
const manifest = JSON.parse(readFileSync(path.join(__dirname, "..", "..", "package.json"), "utf8")) as {
  contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
};
const properties = manifest.contributes.configuration.properties;
const specs = serverSettingSpecs(manifest);

/** What VS Code's `get` answers with no user settings: each property's default. */
function defaults(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).map(([name, p]) => [name.slice("coderLsp.".length), p.default]));
}

test("every coderLsp setting but the extension's own is a server setting", () => {
  const all = Object.keys(properties).map((name) => name.slice("coderLsp.".length));
  for (const key of EXTENSION_KEYS) {
    assert.ok(all.includes(key), `${key} is declared in package.json`);
  }
  assert.deepEqual(
    specs.map((s) => s.key),
    all.filter((k) => !EXTENSION_KEYS.includes(k)),
  );
  for (const key of ["repoContext", "repoShare", "maxPredictMs", "kvPrompt", "cacheSize", "backend"]) {
    assert.ok(specs.some((s) => s.key === key), `${key} is forwarded`);
  }
});

test("VS Code defaults become the server's settings: every server setting, none of the extension's", () => {
  const s = toServerSettings(getter(defaults()), specs);
  assert.deepEqual(Object.keys(s), specs.map((spec) => spec.key));
  for (const spec of specs) {
    assert.deepEqual(s[spec.key], properties[`coderLsp.${spec.key}`].default, spec.key);
  }
  for (const key of EXTENSION_KEYS) {
    assert.equal(key in s, false, `${key} is not sent to the server`);
  }
});

test("user values are forwarded with the server's camelCase names", () => {
  const s = toServerSettings(
    getter({
      ...defaults(),
      model: "  qwen2.5-coder-0.5b ",
      nGpuLayers: -1,
      nThreads: 4,
      maxTokens: 64,
      languages: [" python", "", "go"],
      repoContext: false,
      repoShare: 0.25,
      backend: { kind: "llama-server", url: "http://127.0.0.1:8080" },
    }),
    specs,
  );
  assert.equal(s.model, "qwen2.5-coder-0.5b");
  assert.equal(s.nGpuLayers, -1);
  assert.equal(s.nThreads, 4);
  assert.equal(s.maxTokens, 64);
  assert.deepEqual(s.languages, ["python", "go"]);
  assert.equal(s.repoContext, false);
  assert.equal(s.repoShare, 0.25);
  assert.deepEqual(s.backend, { kind: "llama-server", url: "http://127.0.0.1:8080" });
});

test("values of the wrong type, and empty strings, are left out instead of being sent", () => {
  const s = toServerSettings(
    getter({
      nCtx: "4096",
      maxTokens: Number.NaN,
      nGpuLayers: 1.5,
      enable: "yes",
      languages: "python",
      disabledLanguages: [1],
      template: "",
      model: "  ",
      nThreads: "auto",
      repoContext: "no",
      backend: "llama-server",
    }),
    specs,
  );
  assert.deepEqual(s, {});
});

const noFolders: ResolveEnv = {
  pathVar: "/usr/local/bin:/usr/bin",
  home: "/home/u",
  workspaceFolders: [],
  isExecutable: () => false,
};

test("the configured server path wins and ~ is expanded", () => {
  const r = resolveServerPath("~/venv/bin/coder-lsp", {
    ...noFolders,
    isExecutable: (p) => p === "/home/u/venv/bin/coder-lsp" || p === "/usr/bin/coder-lsp",
  });
  assert.deepEqual(r, { ok: true, command: "/home/u/venv/bin/coder-lsp", source: "setting" });
});

test("a configured path that does not exist is an error naming it and the install command", () => {
  const r = resolveServerPath("/opt/nope/coder-lsp", { ...noFolders, isExecutable: (p) => p === "/usr/bin/coder-lsp" });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /not found/);
    assert.match(r.message, /\/opt\/nope\/coder-lsp/);
    assert.ok(r.message.includes(INSTALL_COMMAND));
    assert.match(r.message, /coderLsp\.serverPath/);
  }
});

test("without a setting, PATH is searched, then the workspace's .venv", () => {
  const onPath = resolveServerPath("", { ...noFolders, isExecutable: (p) => p === "/usr/bin/coder-lsp" });
  assert.deepEqual(onPath, { ok: true, command: "/usr/bin/coder-lsp", source: "path" });
  const inVenv = resolveServerPath("", {
    ...noFolders,
    workspaceFolders: ["/w/a", "/w/b"],
    isExecutable: (p) => p === "/w/b/.venv/bin/coder-lsp",
  });
  assert.deepEqual(inVenv, { ok: true, command: "/w/b/.venv/bin/coder-lsp", source: "workspace-venv" });
});

test("nothing found lists every place looked at", () => {
  const r = resolveServerPath("", { ...noFolders, workspaceFolders: ["/w/a"], loginPath: () => "/usr/bin:/opt/x/bin" });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.deepEqual(r.tried, [
      "coder-lsp on PATH",
      "/w/a/.venv/bin/coder-lsp",
      "/w/a/venv/bin/coder-lsp",
      "/w/a/env/bin/coder-lsp",
      "/home/u/.local/bin/coder-lsp",
      "coder-lsp on the login shell's PATH",
    ]);
    assert.match(r.message, /\/w\/a\/\.venv\/bin\/coder-lsp/);
  }
});

test("other venv names, ~/.local/bin and then the login shell's PATH are searched", () => {
  const venv = resolveServerPath("", { ...noFolders, workspaceFolders: ["/w/a"], isExecutable: (p) => p === "/w/a/venv/bin/coder-lsp" });
  assert.deepEqual(venv, { ok: true, command: "/w/a/venv/bin/coder-lsp", source: "workspace-venv" });
  const user = resolveServerPath("", { ...noFolders, isExecutable: (p) => p === "/home/u/.local/bin/coder-lsp" });
  assert.deepEqual(user, { ok: true, command: "/home/u/.local/bin/coder-lsp", source: "user-bin" });
  let asked = 0;
  const login = resolveServerPath("", {
    ...noFolders,
    loginPath: () => {
      asked++;
      return "/usr/bin:/home/u/src/coder-lsp/.venv/bin";
    },
    isExecutable: (p) => p === "/home/u/src/coder-lsp/.venv/bin/coder-lsp",
  });
  assert.deepEqual(login, { ok: true, command: "/home/u/src/coder-lsp/.venv/bin/coder-lsp", source: "login-path" });
  assert.equal(asked, 1);
  let unused = 0;
  resolveServerPath("", { ...noFolders, isExecutable: (p) => p === "/usr/bin/coder-lsp", loginPath: () => String(unused++) });
  assert.equal(unused, 0, "the login shell is only asked when nothing else was found");
});

test("a bare configured name is looked up on PATH", () => {
  const r = resolveServerPath("my-coder-lsp", { ...noFolders, isExecutable: (p) => p === "/usr/local/bin/my-coder-lsp" });
  assert.deepEqual(r, { ok: true, command: "/usr/local/bin/my-coder-lsp", source: "setting" });
});

test("${workspaceFolder} and workspace-relative paths are expanded", () => {
  const env = { home: "/home/u", workspaceFolders: ["/w/a"] };
  assert.equal(expandPath("${workspaceFolder}/.venv/bin/coder-lsp", env), "/w/a/.venv/bin/coder-lsp");
  assert.equal(expandPath("tools/coder-lsp", env), "/w/a/tools/coder-lsp");
  assert.equal(expandPath("${userHome}/bin/x", env), "/home/u/bin/x");
});

test("the document selector is every file, or the configured languages", () => {
  assert.deepEqual(documentSelector([]), [{ scheme: "file" }, { scheme: "untitled" }]);
  assert.deepEqual(documentSelector(["python", " "]), [
    { scheme: "file", language: "python" },
    { scheme: "untitled", language: "python" },
  ]);
});

test("completionWanted honours the toggle and the language lists", () => {
  assert.equal(completionWanted({}, "python"), true);
  assert.equal(completionWanted({ enable: false }, "python"), false);
  assert.equal(completionWanted({ disabledLanguages: ["markdown"] }, "markdown"), false);
  assert.equal(completionWanted({ languages: ["python"] }, "go"), false);
  assert.equal(completionWanted({ languages: ["python"], disabledLanguages: ["python"] }, "python"), false);
});
