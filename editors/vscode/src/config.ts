/**
 * Pure configuration logic of the extension: VS Code settings -> the server's settings
 * (initializationOptions / didChangeConfiguration), server executable resolution, and the
 * document selector. Nothing here imports `vscode`, so it is unit-tested with node's runner.
 */

import * as path from "node:path";

/** The settings section, as in `coderLsp.model`. */
export const SECTION = "coderLsp";

/**
 * How to install the server, shown when the executable is missing. coder-lsp builds
 * llama.cpp from source, so the one-step install is its checkout's setup script.
 */
export const INSTALL_COMMAND = "scripts/setup.sh";

/** The full install hint (from a coder-lsp checkout). */
export const INSTALL_HINT =
  "run `scripts/setup.sh` in a coder-lsp checkout (or `pip install <checkout>`), then put " +
  "its `.venv/bin` on PATH or set \"coderLsp.serverPath\" to `<checkout>/.venv/bin/coder-lsp`";

/** Reads one setting (a `WorkspaceConfiguration.get` look-alike); undefined when absent. */
export type SettingGetter = (key: string) => unknown;

/**
 * The extension's own settings: read by the extension, never sent to the server. Every
 * other `coderLsp.*` setting in package.json is a server setting; package.json's server
 * settings are generated from the server's schema (scripts/sync-vscode-settings.py) and a
 * server unit test checks they still match it.
 */
export const EXTENSION_KEYS: readonly string[] = ["serverPath", "serverArgs", "maxRestarts", "completionPopup"];

/** A server setting as package.json declares it: its name and the JSON types it takes. */
export interface SettingSpec {
  /** The name without the section, as the server reads it (`repoContext`). */
  key: string;
  /** JSON Schema types (`integer`, `null`, ...). */
  types: readonly string[];
  /** For arrays, the type of each item. */
  items?: string;
}

/**
 * The server settings the extension forwards: every `coderLsp.*` property of the
 * manifest (package.json) but the extension's own.
 */
export function serverSettingSpecs(manifest: unknown): SettingSpec[] {
  const props = (manifest as { contributes?: { configuration?: { properties?: unknown } } })?.contributes
    ?.configuration?.properties;
  if (typeof props !== "object" || props === null) {
    return [];
  }
  const prefix = `${SECTION}.`;
  const specs: SettingSpec[] = [];
  for (const [name, raw] of Object.entries(props as Record<string, unknown>)) {
    const key = name.slice(prefix.length);
    if (!name.startsWith(prefix) || EXTENSION_KEYS.includes(key) || typeof raw !== "object" || raw === null) {
      continue;
    }
    const decl = raw as { type?: unknown; items?: { type?: unknown } };
    const types = (Array.isArray(decl.type) ? decl.type : [decl.type]).filter((t): t is string => typeof t === "string");
    const items = typeof decl.items?.type === "string" ? decl.items.type : undefined;
    specs.push(items === undefined ? { key, types } : { key, types, items });
  }
  return specs;
}

/** The JSON object the server reads (camelCase names, see `coder-lsp settings --schema`). */
export interface ServerSettings {
  [key: string]: unknown;
  model?: string;
  enable?: boolean;
  languages?: string[];
  disabledLanguages?: string[];
}

/** Whether `value` is of JSON Schema type `type` (a plain object for `object`). */
function hasType(value: unknown, type: string, items?: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "array":
      return Array.isArray(value) && (items === undefined || value.every((v) => hasType(v, items)));
    case "object":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    default:
      return false;
  }
}

/**
 * Convert the extension's settings into the server's settings object: every server
 * setting in `specs` (from package.json), under the server's own name.
 *
 * Values of the wrong JSON type are left out (the server then keeps its own value) rather
 * than sent, so a typo in settings.json cannot make the server warn on every change; values
 * of the right type are the server's to check (it reports bad ones with a message). An
 * empty string means "the server's default" (e.g. `model`) and is left out too; strings
 * and list items are trimmed.
 */
export function toServerSettings(get: SettingGetter, specs: readonly SettingSpec[]): ServerSettings {
  const out: ServerSettings = {};
  for (const spec of specs) {
    let value = get(spec.key);
    if (!spec.types.some((t) => hasType(value, t, spec.items))) {
      continue;
    }
    if (typeof value === "string") {
      value = value.trim();
      if (value === "") {
        continue;
      }
    } else if (Array.isArray(value)) {
      value = value.map((v) => (typeof v === "string" ? v.trim() : v)).filter((v) => v !== "");
    }
    out[spec.key] = value;
  }
  return out;
}

/** The settings whose change needs a server restart instead of didChangeConfiguration. */
export const RESTART_KEYS: readonly string[] = ["serverPath", "serverArgs"];

/** What the environment looks like, for resolving the server executable. */
export interface ResolveEnv {
  /** `process.env.PATH`. */
  pathVar: string | undefined;
  /** The user's home directory (for `~`). */
  home: string;
  /** Workspace folder paths, first one first. */
  workspaceFolders: readonly string[];
  /** Whether `p` is an executable file. */
  isExecutable: (p: string) => boolean;
  /** `process.platform`. */
  platform?: string;
  /**
   * PATH as the user's login shell sets it, asked for only when nothing else was found
   * (remote and code-server extension hosts may not have the user's own PATH).
   */
  loginPath?: () => string | undefined;
}

/** Where the server executable was found, or why it was not. */
export type ResolveResult =
  | { ok: true; command: string; source: "setting" | "path" | "workspace-venv" | "user-bin" | "login-path" }
  | { ok: false; message: string; tried: string[] };

/** Expand `~` and `${workspaceFolder}` / `${userHome}` in a configured path. */
export function expandPath(raw: string, env: Pick<ResolveEnv, "home" | "workspaceFolders">): string {
  let p = raw.trim();
  const folder = env.workspaceFolders[0];
  if (folder !== undefined) {
    p = p.split("${workspaceFolder}").join(folder);
  }
  p = p.split("${userHome}").join(env.home);
  if (p === "~") {
    p = env.home;
  } else if (p.startsWith("~/")) {
    p = path.join(env.home, p.slice(2));
  }
  if (!path.isAbsolute(p) && p.includes("/") && folder !== undefined) {
    // A relative path with a directory part is relative to the workspace, like tasks.json.
    p = path.join(folder, p);
  }
  return p;
}

/** The message shown when no server executable can be found. */
export function missingServerMessage(tried: readonly string[]): string {
  return (
    `coder-lsp: the language server executable was not found (looked at: ${tried.join(", ")}). ` +
    `To install it, ${INSTALL_HINT}.`
  );
}

/** Virtual environment folders looked for in each workspace folder, in this order. */
export const VENV_DIRS: readonly string[] = [".venv", "venv", "env"];

/**
 * Find the server executable: the `serverPath` setting if set (it must exist: a typo
 * should not silently fall back to another install), else `coder-lsp` on PATH, else in a
 * workspace folder's virtual environment (`.venv`, `venv`, `env`), else `~/.local/bin`
 * (pip --user, pipx), else on the PATH of the user's login shell.
 */
export function resolveServerPath(configured: string, env: ResolveEnv): ResolveResult {
  const exe = env.platform === "win32" ? "coder-lsp.exe" : "coder-lsp";
  if (configured.trim() !== "") {
    const expanded = expandPath(configured, env);
    if (!expanded.includes("/") && !expanded.includes("\\")) {
      // A bare name: look it up on PATH like a shell would.
      for (const dir of splitPath(env.pathVar, env.platform)) {
        const candidate = path.join(dir, expanded);
        if (env.isExecutable(candidate)) {
          return { ok: true, command: candidate, source: "setting" };
        }
      }
      return { ok: false, message: missingServerMessage([`${expanded} (on PATH)`]), tried: [expanded] };
    }
    if (env.isExecutable(expanded)) {
      return { ok: true, command: expanded, source: "setting" };
    }
    return { ok: false, message: missingServerMessage([expanded]), tried: [expanded] };
  }
  const tried: string[] = [];
  for (const dir of splitPath(env.pathVar, env.platform)) {
    const candidate = path.join(dir, exe);
    if (env.isExecutable(candidate)) {
      return { ok: true, command: candidate, source: "path" };
    }
  }
  tried.push(`${exe} on PATH`);
  const bin = env.platform === "win32" ? "Scripts" : "bin";
  for (const folder of env.workspaceFolders) {
    for (const venv of VENV_DIRS) {
      const candidate = path.join(folder, venv, bin, exe);
      tried.push(candidate);
      if (env.isExecutable(candidate)) {
        return { ok: true, command: candidate, source: "workspace-venv" };
      }
    }
  }
  if (env.platform !== "win32") {
    const candidate = path.join(env.home, ".local", "bin", exe);
    tried.push(candidate);
    if (env.isExecutable(candidate)) {
      return { ok: true, command: candidate, source: "user-bin" };
    }
  }
  if (env.loginPath !== undefined) {
    const seen = new Set(splitPath(env.pathVar, env.platform));
    for (const dir of splitPath(env.loginPath(), env.platform)) {
      const candidate = path.join(dir, exe);
      if (!seen.has(dir) && env.isExecutable(candidate)) {
        return { ok: true, command: candidate, source: "login-path" };
      }
    }
    tried.push(`${exe} on the login shell's PATH`);
  }
  return { ok: false, message: missingServerMessage(tried), tried };
}

function splitPath(pathVar: string | undefined, platform: string | undefined): string[] {
  const sep = platform === "win32" ? ";" : ":";
  return (pathVar ?? "").split(sep).filter((d) => d !== "");
}

/** One entry of a VS Code DocumentSelector (kept structural to stay vscode-free). */
export interface SelectorEntry {
  scheme: string;
  language?: string;
}

/**
 * The documents the client sends to the server: every file (and untitled buffer), or
 * only the configured languages. `disabledLanguages` is enforced by the server so that
 * toggling it needs no restart.
 */
export function documentSelector(languages: readonly string[]): SelectorEntry[] {
  const schemes = ["file", "untitled"];
  const langs = languages.map((l) => l.trim()).filter((l) => l !== "");
  if (langs.length === 0) {
    return schemes.map((scheme) => ({ scheme }));
  }
  return schemes.flatMap((scheme) => langs.map((language) => ({ scheme, language })));
}

/** Whether the client should ask the server for a completion in this language. */
export function completionWanted(settings: ServerSettings, languageId: string): boolean {
  if (settings.enable === false) {
    return false;
  }
  if (settings.disabledLanguages?.includes(languageId)) {
    return false;
  }
  const langs = settings.languages ?? [];
  return langs.length === 0 || langs.includes(languageId);
}
