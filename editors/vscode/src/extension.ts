/**
 * The VS Code side of coder-lsp: starts `coder-lsp --stdio` through vscode-languageclient
 * (which provides LSP 3.18 inline completion as ghost text), forwards the settings, keeps a
 * status bar item in step with the server (`$/progress` and `coder-lsp/status`), restarts a
 * crashed server a few times, and offers commands to toggle completions, pull a model,
 * restart, and show the server log. The decisions live in the pure modules config.ts,
 * status.ts and restart.ts; this file only wires them to the editor.
 */

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as vscode from "vscode";
import {
  CloseAction,
  type CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandlerResult,
  ExecuteCommandRequest,
  type FeatureState,
  InlineCompletionRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  type StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressBegin,
  type WorkDoneProgressReport,
  type ClientCapabilities,
} from "vscode-languageclient/node";
import {
  completionWanted,
  documentSelector,
  RESTART_KEYS,
  resolveServerPath,
  SECTION,
  type ServerSettings,
  serverSettingSpecs,
  type SettingSpec,
  toServerSettings,
} from "./config";
import { hasItems, LateAnswers, raceCancellation, READY_NOTIFICATION, readySpot, type Spot } from "./late";
import { CrashPolicy } from "./restart";
import { initialStatus, reduce, render, type StatusEvent, type StatusState } from "./status";

const STATUS_NOTIFICATION = "coder-lsp/status";
const SERVER_CMD_STATUS = "coder-lsp.status";
const SERVER_CMD_PULL = "coder-lsp.pullModel";
/** Show "working" only for requests slower than this, so fast ones do not flicker. */
const WORKING_DELAY_MS = 250;
/** Pause before restarting a server that died, so a crash at start-up does not spin. */
const RESTART_DELAY_MS = 500;

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false; // missing or not executable: the caller tries the next candidate
  }
}

/** VS Code's command that asks the inline completion providers again (Alt+\ by default). */
const TRIGGER_INLINE = "editor.action.inlineSuggest.trigger";

/**
 * PATH as the user's login shell sets it. Remote and code-server extension hosts do not
 * always inherit it, and a venv's bin folder is often only added there. Asked only when
 * the server was found nowhere else; a shell that hangs or fails gives nothing.
 */
function loginShellPath(): string | undefined {
  if (process.platform === "win32") {
    return undefined;
  }
  const shell = process.env.SHELL || "/bin/sh";
  try {
    const out = execFileSync(shell, ["-lc", 'printf "\\n%s" "$PATH"'], {
      encoding: "utf8",
      timeout: 5000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    // The last line: a profile may print its own text first.
    return out.split("\n").pop()?.trim() || undefined;
  } catch {
    return undefined; // no login shell to ask: the caller reports what it tried
  }
}

function spotOf(document: vscode.TextDocument, position: vscode.Position): Spot {
  return { uri: document.uri.toString(), version: document.version, line: position.line, character: position.character };
}

function isCancellation(err: unknown): boolean {
  return err instanceof vscode.CancellationError || (err as { code?: number } | null)?.code === -32800;
}

/**
 * Mirrors server `$/progress` into the status bar and a window progress indicator.
 *
 * It replaces the client's built-in handler for `window/workDoneProgress/create` (a later
 * `onRequest` for the same method wins), because a token can have only one progress
 * listener and the status bar needs to see every begin/report/end.
 */
class ProgressBridge implements StaticFeature {
  private readonly active = new Map<string, { dispose(): void; resolve(): void }>();

  constructor(
    private readonly client: LanguageClient,
    private readonly emit: (e: StatusEvent) => void,
  ) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = capabilities.window ?? {};
    capabilities.window.workDoneProgress = true;
  }

  initialize(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      this.track(String(params.token), params.token);
    });
  }

  getState(): FeatureState {
    return { kind: "static" };
  }

  clear(): void {
    for (const [token, part] of this.active) {
      part.dispose();
      part.resolve();
      this.emit({ kind: "progressEnd", token });
    }
    this.active.clear();
  }

  private track(key: string, token: string | number): void {
    let report: ((value: { message?: string; increment?: number }) => void) | undefined;
    let resolve: () => void = () => undefined;
    let reported = 0;
    const listener = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === "begin") {
        const begin = value as WorkDoneProgressBegin;
        this.emit({ kind: "progressBegin", token: key, title: begin.title, message: begin.message, percentage: begin.percentage });
        void vscode.window.withProgress(
          {
            location: vscode.ProgressLocation.Window,
            title: begin.title.startsWith("coder-lsp") ? begin.title : `coder-lsp: ${begin.title}`,
          },
          (progress) => {
            report = (v) => progress.report(v);
            report({ message: begin.message });
            return new Promise<void>((r) => {
              resolve = r;
            });
          },
        );
      } else if (value.kind === "report") {
        const rep = value as WorkDoneProgressReport;
        this.emit({ kind: "progressReport", token: key, message: rep.message, percentage: rep.percentage });
        const pct = typeof rep.percentage === "number" ? Math.max(reported, Math.min(100, rep.percentage)) : reported;
        report?.({ message: rep.message, increment: pct - reported });
        reported = pct;
      } else {
        this.emit({ kind: "progressEnd", token: key });
        this.active.get(key)?.dispose();
        this.active.delete(key);
        resolve();
      }
    });
    this.active.set(key, { dispose: () => listener.dispose(), resolve: () => resolve() });
  }
}

/** Owns the client, the status bar item, the output channel and the commands. */
class Controller implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private state: StatusState;
  private readonly output = vscode.window.createOutputChannel("coder-lsp", { log: true });
  private readonly item = vscode.window.createStatusBarItem("coder-lsp.status", vscode.StatusBarAlignment.Right, 100);
  private readonly disposables: vscode.Disposable[] = [];
  private crashPolicy: CrashPolicy;
  private settings: ServerSettings;
  /** Bumped on each (re)start so callbacks of an old client are ignored. */
  private generation = 0;
  /** Answers that came after VS Code stopped waiting (see late.ts). */
  private readonly late = new LateAnswers<vscode.InlineCompletionItem[] | vscode.InlineCompletionList>();
  /** A document the user typed in before the server could answer (asked again once it can). */
  private typedBeforeReady: vscode.TextDocument | undefined;

  /** The server settings declared in package.json: all are forwarded. */
  private readonly specs: readonly SettingSpec[];

  constructor(manifest: unknown) {
    this.specs = serverSettingSpecs(manifest);
    this.settings = this.readSettings();
    this.crashPolicy = new CrashPolicy(this.maxRestarts());
    this.state = initialStatus(this.settings.enable !== false, this.settings.model);
    this.item.name = "coder-lsp";
    this.item.command = "coderLsp.menu";
    this.render();
    this.item.show();
  }

  private config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }

  private readSettings(): ServerSettings {
    const cfg = this.config();
    return toServerSettings((key) => cfg.get(key), this.specs);
  }

  private maxRestarts(): number {
    const n = this.config().get<number>("maxRestarts", 3);
    return Number.isInteger(n) && n >= 0 ? n : 3;
  }

  emit(event: StatusEvent): void {
    this.state = reduce(this.state, event);
    this.render();
  }

  private render(): void {
    const view = render(this.state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.accessibilityInformation = { label: `coder-lsp status: ${view.phase}. ${view.tooltip}` };
    this.item.backgroundColor =
      view.severity === "error"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : view.severity === "warning"
          ? new vscode.ThemeColor("statusBarItem.warningBackground")
          : undefined;
  }

  log(line: string): void {
    this.output.info(`[client] ${line}`);
  }

  async start(): Promise<void> {
    const generation = ++this.generation;
    this.settings = this.readSettings();
    this.emit({ kind: "enabled", enabled: this.settings.enable !== false });
    this.emit({ kind: "starting", model: this.settings.model });
    const cfg = this.config();
    const resolved = resolveServerPath(cfg.get<string>("serverPath", ""), {
      pathVar: process.env.PATH,
      home: os.homedir(),
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      isExecutable,
      platform: process.platform,
      loginPath: loginShellPath,
    });
    if (!resolved.ok) {
      this.log(resolved.message);
      this.emit({ kind: "missing", detail: resolved.message });
      void this.showError(resolved.message, ["Open Settings", "Show Log"]);
      return;
    }
    const args = cfg.get<string[]>("serverArgs", ["--stdio"]);
    this.log(`starting ${resolved.command} ${args.join(" ")} (found via ${resolved.source})`);
    const serverOptions: ServerOptions = { command: resolved.command, args, options: { env: process.env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(cfg.get<string[]>("languages", [])),
      outputChannel: this.output,
      initializationOptions: this.settings,
      errorHandler: {
        error: (error, _message, count): ErrorHandlerResult => {
          this.log(`connection error: ${error.message}`);
          return { action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
        },
        // Restarts are ours, never the library's: it restarts the same client object in
        // place, and a server that dies again during that restart's initialize can leave the
        // client stopped without calling closed() again (the status then said "starting"
        // for ever). Each start gets a fresh client instead; see serverGone().
        closed: (): CloseHandlerResult => {
          this.serverGone(generation, "the server exited");
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      initializationFailedHandler: (error) => {
        this.log(`initialize failed: ${error instanceof Error ? error.message : String(error)}`);
        return false; // serverGone() decides about restarts
      },
      middleware: {
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.provideInline(document, position, context, token, next),
        provideCompletionItem: (document, position, context, token, next) =>
          this.config().get<boolean>("completionPopup", false) && completionWanted(this.settings, document.languageId)
            ? this.tracked(() => next(document, position, context, token))
            : null,
      },
    };
    const client = new LanguageClient("coder-lsp", "coder-lsp", serverOptions, clientOptions);
    client.registerFeature(new ProgressBridge(client, (e) => generation === this.generation && this.emit(e)));
    client.onNotification(STATUS_NOTIFICATION, (params: { state?: unknown; model?: unknown; detail?: unknown }) => {
      if (generation !== this.generation || typeof params?.state !== "string") {
        return;
      }
      this.emit({ kind: "serverStatus", state: params.state, model: params.model, detail: params.detail });
    });
    client.onNotification(READY_NOTIFICATION, (params: unknown) => {
      if (generation === this.generation) {
        void this.completionReady(client, params);
      }
    });
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        if (generation === this.generation) {
          this.emit({ kind: "running" });
        }
      } else if (e.newState === State.Stopped || e.newState === State.StartFailed) {
        // Covers the ways out that skip closed(): a failed spawn or initialize, or the
        // library's own stop after a connection error.
        this.serverGone(generation, "the server stopped");
      }
    });
    this.client = client;
    try {
      await client.start();
    } catch (err) {
      this.log(`start failed: ${err instanceof Error ? err.message : String(err)}`);
      this.serverGone(generation, "the server failed to start");
      return;
    }
    if (generation === this.generation) {
      this.askAgainIfTypedBeforeReady();
    }
  }

  /**
   * Remember that the user typed while the server was not running yet: VS Code had no
   * inline provider to ask then, and nothing asks again once there is one.
   */
  noteEdit(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0 || this.client?.state === State.Running) {
      return;
    }
    if (vscode.window.activeTextEditor?.document === e.document) {
      this.typedBeforeReady = e.document;
    }
  }

  /** The server is up: ask for the document the user typed in meanwhile, if still in front. */
  private askAgainIfTypedBeforeReady(): void {
    const doc = this.typedBeforeReady;
    this.typedBeforeReady = undefined;
    if (doc === undefined || vscode.window.activeTextEditor?.document !== doc) {
      return;
    }
    if (!completionWanted(this.settings, doc.languageId)) {
      return;
    }
    this.log("asking for the completion typed for while the server was starting");
    // The server keeps the latest request while its model loads and answers it then.
    void vscode.commands.executeCommand(TRIGGER_INLINE);
  }

  /**
   * Inline completion, without VS Code's cancellation (see late.ts): a request VS Code
   * gives up on goes on, and its answer is shown when it comes if the editor is still
   * where it was asked.
   */
  private async provideInline(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
    next: (
      document: vscode.TextDocument,
      position: vscode.Position,
      context: vscode.InlineCompletionContext,
      token: vscode.CancellationToken,
    ) => vscode.ProviderResult<vscode.InlineCompletionItem[] | vscode.InlineCompletionList>,
  ): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined> {
    if (!completionWanted(this.settings, document.languageId)) {
      return null;
    }
    const spot = spotOf(document, position);
    const kept = this.late.take(spot);
    if (kept !== undefined) {
      this.log("answered with the completion that came after VS Code stopped waiting");
      return kept;
    }
    // Never cancelled: the server drops a superseded request by itself, at once.
    const request = this.tracked(() => next(document, position, context, new vscode.CancellationTokenSource().token));
    let listener: vscode.Disposable | undefined;
    const cancelled = new Promise<void>((resolve) => {
      listener = token.onCancellationRequested(() => resolve());
      if (token.isCancellationRequested) {
        resolve();
      }
    });
    try {
      const raced = await raceCancellation(request, cancelled);
      if (raced.settled) {
        return raced.value;
      }
      void raced.later.then((value) => this.lateAnswer(document, spot, value));
      return null;
    } finally {
      listener?.dispose();
    }
  }

  /** Whether the active editor still shows `spot`: that document version, the cursor there. */
  private stillAt(document: vscode.TextDocument, spot: Spot): boolean {
    const editor = vscode.window.activeTextEditor;
    const cursor = editor?.selection;
    return (
      editor?.document === document &&
      document.uri.toString() === spot.uri &&
      document.version === spot.version &&
      cursor !== undefined &&
      cursor.isEmpty &&
      cursor.active.line === spot.line &&
      cursor.active.character === spot.character &&
      completionWanted(this.settings, document.languageId)
    );
  }

  /** An answer VS Code stopped waiting for: keep it and ask VS Code to show it. */
  private lateAnswer(
    document: vscode.TextDocument,
    spot: Spot,
    value: vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined,
    why = "a completion arrived after VS Code stopped waiting; showing it",
  ): void {
    if (value === null || value === undefined || !hasItems(value) || !this.stillAt(document, spot)) {
      return; // nothing to show, or the user moved on
    }
    this.late.keep(spot, value);
    this.log(why);
    void vscode.commands.executeCommand(TRIGGER_INLINE);
  }

  /**
   * `coder-lsp/completionReady`: the server gave an empty answer because a time limit cut
   * the generation short (a busy machine), then finished it in the background into its
   * cache. When the editor is still at that document version and cursor, ask again — an
   * automatic request, which the server answers from its cache at once; VS Code's own
   * re-trigger would be an explicit request, which skips the cache — and show the answer
   * the way a late one is shown. Otherwise the user moved on: nothing to do.
   */
  private async completionReady(client: LanguageClient, params: unknown): Promise<void> {
    const spot = readySpot(params);
    const document = vscode.window.activeTextEditor?.document;
    if (spot === undefined || document === undefined || !this.stillAt(document, spot)) {
      return;
    }
    const position = new vscode.Position(spot.line, spot.character);
    const context = {
      triggerKind: vscode.InlineCompletionTriggerKind.Automatic,
      selectedCompletionInfo: undefined,
    } as vscode.InlineCompletionContext;
    let value: vscode.InlineCompletionItem[] | vscode.InlineCompletionList | undefined;
    try {
      const answer = await this.tracked(() =>
        client.sendRequest(
          InlineCompletionRequest.type,
          client.code2ProtocolConverter.asInlineCompletionParams(document, position, context),
        ),
      );
      value = await client.protocol2CodeConverter.asInlineCompletionResult(answer ?? null);
    } catch (err) {
      this.log(`asking again after completionReady failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.lateAnswer(document, spot, value, "a completion the time limit cut short is ready; showing it");
  }

  /**
   * The client of `generation` lost its server without being asked to stop. Counted once
   * per client (later callbacks of that client see a newer generation and are ignored):
   * restart with a fresh client, or give up and say so once.
   */
  private serverGone(generation: number, why: string): void {
    if (generation !== this.generation) {
      return; // an older client, or one that stop() is stopping on purpose
    }
    const gone = ++this.generation;
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      // Not from inside the library's own callback that called us.
      setTimeout(() => void client.dispose().catch(() => undefined), 0);
    }
    const decision = this.crashPolicy.onCrash(Date.now());
    if (decision.restart) {
      this.log(`${why} unexpectedly; restarting (${decision.crashes}/${this.crashPolicy.maxRestarts})`);
      this.emit({ kind: "starting" });
      setTimeout(() => {
        if (this.generation === gone) {
          void this.start(); // unless a stop or a manual restart came in between
        }
      }, RESTART_DELAY_MS);
      return;
    }
    const message = decision.message ?? "coder-lsp: the server stopped.";
    this.log(message);
    this.emit({ kind: "stopped", detail: `crashed ${decision.crashes} times` });
    void this.showError(message, ["Show Log", "Restart Server"]);
  }

  private async showError(message: string, actions: string[]): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.serverPath`);
    } else if (choice === "Show Log") {
      this.output.show(true);
    } else if (choice === "Restart Server") {
      await this.restart();
    }
  }

  /** Run one completion request: show "working", never surface errors as pop-ups. */
  private async tracked<T>(run: () => vscode.ProviderResult<T>): Promise<T | null | undefined> {
    const generation = this.generation;
    let shown = false;
    const timer = setTimeout(() => {
      shown = true;
      this.emit({ kind: "requestStart" });
    }, WORKING_DELAY_MS);
    try {
      return await run();
    } catch (err) {
      // A failed completion is logged, not shown: an error toast per keystroke is spam.
      if (!isCancellation(err)) {
        this.log(`completion failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return null;
    } finally {
      clearTimeout(timer);
      if (shown && generation === this.generation) {
        this.emit({ kind: "requestEnd" });
      }
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.generation++;
    if (client !== undefined && client.state !== State.Stopped) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.log(`stop failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  async restart(): Promise<void> {
    this.crashPolicy = new CrashPolicy(this.maxRestarts());
    await this.stop();
    await this.start();
  }

  async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) {
      return;
    }
    const needsRestart = [...RESTART_KEYS, "languages", "maxRestarts"].some((k) =>
      e.affectsConfiguration(`${SECTION}.${k}`),
    );
    if (needsRestart || this.client === undefined || this.state.connection !== "running") {
      this.log("settings changed; restarting the server");
      await this.restart();
      return;
    }
    this.settings = this.readSettings();
    this.emit({ kind: "enabled", enabled: this.settings.enable !== false });
    if (this.settings.model !== undefined && this.settings.model !== this.state.model) {
      this.emit({ kind: "model", model: this.settings.model });
    }
    this.log(`settings changed: ${JSON.stringify(this.settings)}`);
    await this.client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [SECTION]: this.settings },
    });
  }

  async toggle(): Promise<void> {
    const enabled = this.config().get<boolean>("enable", true);
    await this.config().update("enable", !enabled, vscode.ConfigurationTarget.Global);
    vscode.window.setStatusBarMessage(`coder-lsp: completions ${enabled ? "off" : "on"}`, 3000);
  }

  private runningClient(): LanguageClient | undefined {
    if (this.client === undefined || this.client.state !== State.Running) {
      void vscode.window.showWarningMessage("coder-lsp: the server is not running.", "Show Log").then((c) => {
        if (c === "Show Log") {
          this.output.show(true);
        }
      });
      return undefined;
    }
    return this.client;
  }

  async pullModel(name?: string): Promise<void> {
    const client = this.runningClient();
    if (client === undefined) {
      return;
    }
    const model =
      name ??
      (await vscode.window.showInputBox({
        title: "coder-lsp: pull a model",
        prompt: "Registry name (see `coder-lsp models list`), e.g. qwen2.5-coder-0.5b or deepseek-coder-1.3b-base",
        value: this.settings.model ?? "qwen2.5-coder-0.5b",
      }));
    if (model === undefined || model.trim() === "") {
      return;
    }
    this.log(`pulling model ${model}`);
    let result: unknown;
    try {
      result = await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_CMD_PULL, arguments: [model.trim()] });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`pull failed: ${message}`);
      void vscode.window.showErrorMessage(`coder-lsp: pulling ${model} failed: ${message}`);
      return;
    }
    const res = (result ?? {}) as { ok?: boolean; path?: string; error?: string };
    if (res.ok) {
      this.log(`pulled ${model} to ${res.path}`);
      const use = model.trim() === this.settings.model ? [] : ["Use This Model"];
      const choice = await vscode.window.showInformationMessage(`coder-lsp: ${model} is ready (${res.path}).`, ...use);
      if (choice === "Use This Model") {
        await this.config().update("model", model.trim(), vscode.ConfigurationTarget.Global);
      }
    } else {
      this.log(`pull failed: ${res.error}`);
      // The server has already shown its own error message; do not repeat it.
    }
  }

  async showStatus(): Promise<void> {
    const client = this.runningClient();
    if (client === undefined) {
      return;
    }
    const res = (await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_CMD_STATUS, arguments: [] })) as {
      state?: string;
      model?: string;
      error?: string | null;
      version?: string;
    } | null;
    const text = `coder-lsp ${res?.version ?? "?"}: model ${res?.model ?? "?"} is ${res?.state ?? "?"}${res?.error ? ` (${res.error})` : ""}`;
    this.log(text);
    void vscode.window.showInformationMessage(text);
  }

  async menu(): Promise<void> {
    const enabled = this.config().get<boolean>("enable", true);
    const items: (vscode.QuickPickItem & { command: string })[] = [
      { label: enabled ? "$(circle-slash) Turn completions off" : "$(check) Turn completions on", command: "coderLsp.toggle" },
      { label: "$(cloud-download) Pull a model…", command: "coderLsp.pullModel" },
      { label: "$(info) Show server status", command: "coderLsp.showStatus" },
      { label: "$(output) Show server log", command: "coderLsp.showLog" },
      { label: "$(debug-restart) Restart server", command: "coderLsp.restart" },
      { label: "$(gear) Settings", command: "workbench.action.openSettings" },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: render(this.state).text.replace(/\$\([^)]*\)\s*/g, "") });
    if (pick !== undefined) {
      await vscode.commands.executeCommand(pick.command, ...(pick.command === "workbench.action.openSettings" ? [SECTION] : []));
    }
  }

  showLog(): void {
    this.output.show(true);
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) {
      d.dispose();
    }
    this.item.dispose();
    this.output.dispose();
  }
}

let controller: Controller | undefined;

/** Extension entry point: create the controller, register commands, start the server. */
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ctl = new Controller(context.extension.packageJSON);
  controller = ctl;
  context.subscriptions.push(
    ctl,
    vscode.commands.registerCommand("coderLsp.toggle", () => ctl.toggle()),
    vscode.commands.registerCommand("coderLsp.pullModel", (name?: unknown) =>
      ctl.pullModel(typeof name === "string" ? name : undefined),
    ),
    vscode.commands.registerCommand("coderLsp.showLog", () => ctl.showLog()),
    vscode.commands.registerCommand("coderLsp.restart", () => ctl.restart()),
    vscode.commands.registerCommand("coderLsp.showStatus", () => ctl.showStatus()),
    vscode.commands.registerCommand("coderLsp.menu", () => ctl.menu()),
    vscode.workspace.onDidChangeConfiguration((e) => ctl.onConfigurationChanged(e)),
    vscode.workspace.onDidChangeTextDocument((e) => ctl.noteEdit(e)),
  );
  await ctl.start();
}

/** Extension exit point: stop the server. */
export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
