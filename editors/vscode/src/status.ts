/**
 * Pure status-bar model: a reducer over the events the extension sees (client lifecycle,
 * `$/progress`, the server's `coder-lsp/status` notification, completion requests) and a
 * renderer from that state to the status bar's text, tooltip and colour. No `vscode`
 * import, so every transition is unit-tested without an editor.
 */

import * as path from "node:path";

/** Model states the server reports in `coder-lsp/status`. */
export type ServerModelState = "loading" | "ready" | "failed" | "unloaded";

/** Where the client process stands. */
export type ConnectionState = "starting" | "running" | "stopped" | "missing";

/** One `$/progress` the server has begun and not yet ended. */
export interface ProgressInfo {
  title: string;
  message?: string;
  percentage?: number;
  /** Whether this progress is a model download (decided at begin; reports change the message). */
  downloading: boolean;
  /** What is being downloaded, from a begin message like "Downloading NAME". */
  subject?: string;
}

/** Classify a progress from its begin title and message. */
export function classifyProgress(title: string, message: string | undefined): Pick<ProgressInfo, "downloading" | "subject"> {
  const text = `${title} ${message ?? ""}`;
  const m = /download(?:ing)?\s+(\S+)/i.exec(text);
  return { downloading: /download/i.test(text), subject: m?.[1] };
}

/** Everything the status bar depends on. */
export interface StatusState {
  connection: ConnectionState;
  /** Why the connection is stopped / missing (shown in the tooltip). */
  connectionDetail?: string;
  enabled: boolean;
  model?: string;
  modelState?: ServerModelState;
  modelDetail?: string;
  /** Active progress, by token, in begin order. */
  progress: ReadonlyArray<readonly [string, ProgressInfo]>;
  /** Completion requests in flight. */
  inFlight: number;
}

/** An event the extension feeds to {@link reduce}. */
export type StatusEvent =
  | { kind: "starting"; model?: string }
  | { kind: "running" }
  | { kind: "stopped"; detail: string }
  | { kind: "missing"; detail: string }
  | { kind: "enabled"; enabled: boolean }
  | { kind: "model"; model?: string }
  | { kind: "serverStatus"; state: string; model?: unknown; detail?: unknown }
  | { kind: "progressBegin"; token: string; title: string; message?: string; percentage?: number }
  | { kind: "progressReport"; token: string; message?: string; percentage?: number }
  | { kind: "progressEnd"; token: string }
  | { kind: "requestStart" }
  | { kind: "requestEnd" };

/** The state before the server has started. */
export function initialStatus(enabled: boolean, model?: string): StatusState {
  return { connection: "starting", enabled, model, progress: [], inFlight: 0 };
}

const MODEL_STATES: readonly string[] = ["loading", "ready", "failed", "unloaded"];

/** Apply one event; returns a new state (the input is never mutated). */
export function reduce(state: StatusState, event: StatusEvent): StatusState {
  switch (event.kind) {
    case "starting":
      return {
        ...state,
        connection: "starting",
        connectionDetail: undefined,
        model: event.model ?? state.model,
        modelState: undefined,
        modelDetail: undefined,
        progress: [],
        inFlight: 0,
      };
    case "running":
      return { ...state, connection: "running", connectionDetail: undefined };
    case "stopped":
      return { ...state, connection: "stopped", connectionDetail: event.detail, progress: [], inFlight: 0 };
    case "missing":
      return { ...state, connection: "missing", connectionDetail: event.detail, progress: [], inFlight: 0 };
    case "enabled":
      return { ...state, enabled: event.enabled };
    case "model":
      return { ...state, model: event.model };
    case "serverStatus": {
      if (!MODEL_STATES.includes(event.state)) {
        return state; // a newer server's state we do not know: keep what we show
      }
      const model = typeof event.model === "string" && event.model !== "" ? event.model : state.model;
      const detail = typeof event.detail === "string" && event.detail !== "" ? event.detail : undefined;
      return { ...state, modelState: event.state as ServerModelState, model, modelDetail: detail };
    }
    case "progressBegin": {
      const info: ProgressInfo = {
        title: event.title,
        message: event.message,
        percentage: event.percentage,
        ...classifyProgress(event.title, event.message),
      };
      const rest = state.progress.filter(([t]) => t !== event.token);
      return { ...state, progress: [...rest, [event.token, info] as const] };
    }
    case "progressReport":
      return {
        ...state,
        progress: state.progress.map(([t, info]) =>
          t === event.token
            ? ([
                t,
                {
                  ...info,
                  message: event.message ?? info.message,
                  percentage: event.percentage ?? info.percentage,
                },
              ] as const)
            : ([t, info] as const),
        ),
      };
    case "progressEnd":
      return { ...state, progress: state.progress.filter(([t]) => t !== event.token) };
    case "requestStart":
      return { ...state, inFlight: state.inFlight + 1 };
    case "requestEnd":
      return { ...state, inFlight: Math.max(0, state.inFlight - 1) };
  }
}

/** What the status bar item shows. */
export interface StatusView {
  /** One word for tests and accessibility: the state shown. */
  phase: "starting" | "loading" | "downloading" | "ready" | "working" | "off" | "no-model" | "error";
  text: string;
  tooltip: string;
  severity: "normal" | "warning" | "error";
}

/** A short display name for a model: a registry name as is, a path by its file stem. */
export function modelLabel(model: string | undefined): string {
  if (model === undefined || model === "") {
    return "default model";
  }
  if (model.includes("/") || model.includes("\\") || model.endsWith(".gguf")) {
    return path.basename(model.replace(/\\/g, "/")).replace(/\.gguf$/i, "");
  }
  return model;
}

function percent(p: number | undefined): string {
  return p === undefined ? "" : ` ${Math.max(0, Math.min(100, Math.round(p)))}%`;
}

/** Render the status bar item for a state. Errors win over everything else. */
export function render(state: StatusState): StatusView {
  const label = modelLabel(state.model);
  const help = "Click for coder-lsp commands.";
  if (state.connection === "missing") {
    return {
      phase: "error",
      text: "$(error) coder-lsp: not installed",
      tooltip: `${state.connectionDetail ?? "The coder-lsp executable was not found."}\n${help}`,
      severity: "error",
    };
  }
  if (state.connection === "stopped") {
    return {
      phase: "error",
      text: "$(error) coder-lsp: stopped",
      tooltip: `The server is not running: ${state.connectionDetail ?? "stopped"}\n${help}`,
      severity: "error",
    };
  }
  if (state.modelState === "failed") {
    return {
      phase: "error",
      text: `$(error) coder-lsp: ${label} failed`,
      tooltip: `Model ${label} could not be loaded: ${state.modelDetail ?? "see the server log"}\n${help}`,
      severity: "error",
    };
  }
  const last = state.progress[state.progress.length - 1];
  if (last !== undefined) {
    const info = last[1];
    const phase = info.downloading ? "downloading" : "loading";
    const verb = phase;
    const subject = info.downloading ? modelLabel(info.subject ?? state.model) : label;
    return {
      phase,
      text: `$(sync~spin) coder-lsp: ${verb} ${subject}${percent(info.percentage)}`,
      tooltip: `${info.title}: ${info.message ?? verb}${percent(info.percentage)}\n${help}`,
      severity: "normal",
    };
  }
  if (!state.enabled) {
    return {
      phase: "off",
      text: "$(circle-slash) coder-lsp: off",
      tooltip: `Completions are turned off (model ${label}).\n${help}`,
      severity: "warning",
    };
  }
  if (state.modelState === "loading") {
    return {
      phase: "loading",
      text: `$(sync~spin) coder-lsp: loading ${label}`,
      tooltip: `Loading model ${label}${state.modelDetail ? `: ${state.modelDetail}` : ""}\n${help}`,
      severity: "normal",
    };
  }
  if (state.modelState === "unloaded") {
    return {
      phase: "no-model",
      text: "$(circle-outline) coder-lsp: no model",
      tooltip: `No model is loaded${state.modelDetail ? `: ${state.modelDetail}` : ""}\n${help}`,
      severity: "warning",
    };
  }
  if (state.modelState === "ready") {
    if (state.inFlight > 0) {
      return {
        phase: "working",
        text: `$(loading~spin) coder-lsp: working (${label})`,
        tooltip: `Completing with ${label}\n${help}`,
        severity: "normal",
      };
    }
    return {
      phase: "ready",
      text: `$(check) coder-lsp: ready (${label})`,
      tooltip: `Model ${label} is ready${state.modelDetail ? ` (${state.modelDetail})` : ""}\n${help}`,
      severity: "normal",
    };
  }
  return {
    phase: "starting",
    text: "$(sync~spin) coder-lsp: starting",
    tooltip: `Starting the coder-lsp server (model ${label})\n${help}`,
    severity: "normal",
  };
}
