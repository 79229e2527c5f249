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

/** Server setting keys forwarded as-is, with the JSON types the server accepts. */
const NUMBER_KEYS = ["nCtx", "nGpuLayers", "maxTokens", "temperature"] as const;
const NULLABLE_NUMBER_KEYS = ["nThreads", "promptTokens", "timeBudgetMs"] as const;
const LIST_KEYS = ["languages", "disabledLanguages"] as const;

/** The JSON object the server reads (camelCase names, see the server's README). */
export interface ServerSettings {
  model?: string;
  enable?: boolean;
  nCtx?: number;
  nGpuLayers?: number;
  maxTokens?: number;
  temperature?: number;
  nThreads?: number | null;
  promptTokens?: number | null;
  timeBudgetMs?: number | null;
  languages?: string[];
  disabledLanguages?: string[];
  template?: string | null;
  logLevel?: string;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/**
 * Convert the extension's settings into the server's settings object.
 *
 * Values of the wrong type are left out (the server then keeps its own value) rather than
 * sent, so a typo in settings.json cannot make the server warn on every change. An empty
 * `model` means "the server's default" and is left out too.
 */
export function toServerSettings(get: SettingGetter): ServerSettings {
  const out: ServerSettings = {};
  const model = get("model");
  if (typeof model === "string" && model.trim() !== "") {
    out.model = model.trim();
  }
  const enable = get("enable");
  if (typeof enable === "boolean") {
    out.enable = enable;
  }
  for (const key of NUMBER_KEYS) {
    const value = get(key);
    if (isFiniteNumber(value)) {
      out[key] = value;
    }
  }
  for (const key of NULLABLE_NUMBER_KEYS) {
    const value = get(key);
    if (value === null || isFiniteNumber(value)) {
      out[key] = value;
    }
  }
  for (const key of LIST_KEYS) {
    const value = get(key);
    if (isStringList(value)) {
      out[key] = value.map((v) => v.trim()).filter((v) => v !== "");
    }
  }
  const template = get("template");
  if (template === null || (typeof template === "string" && template !== "")) {
    out.template = template;
  }
  const logLevel = get("logLevel");
  if (typeof logLevel === "string" && logLevel !== "") {
    out.logLevel = logLevel;
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
