/**
 * Late answers: completions that arrive after VS Code stopped waiting for them.
 *
 * VS Code cancels an inline completion request it still wants. With its default
 * `editor.quickSuggestions` ("offWhenInlineCompletions") the suggest controller gives the
 * inline providers 750 ms after a keystroke inside a word, then stops the inline model
 * (cancelling the request) and opens its own suggest widget instead; nothing asks again
 * until the next keystroke. A local model needs longer than that on a laptop CPU, so ghost
 * text never appeared while the cursor was inside a word.
 *
 * The extension therefore never passes VS Code's cancellation on to the server (the
 * server supersedes an old request by itself when a newer one comes), keeps an answer
 * that arrives after VS Code gave up when the editor is still where it was asked, and
 * asks VS Code to show inline suggestions again; the next request at that spot is
 * answered from here at once. Nothing here imports `vscode`, so it is unit-tested with
 * node's runner.
 */

/** Where a completion was asked for: a document version and a cursor position. */
export interface Spot {
  uri: string;
  version: number;
  line: number;
  character: number;
}

/** Whether two spots are the same document version and cursor position. */
export function sameSpot(a: Spot, b: Spot): boolean {
  return a.uri === b.uri && a.version === b.version && a.line === b.line && a.character === b.character;
}

/** How long a kept answer may wait for VS Code to ask again. */
export const LATE_ANSWER_TTL_MS = 30_000;

/** Whether a provider result holds at least one item (an array or `{ items }`). */
export function hasItems(result: unknown): boolean {
  if (Array.isArray(result)) {
    return result.length > 0;
  }
  const items = (result as { items?: unknown } | null | undefined)?.items;
  return Array.isArray(items) && items.length > 0;
}

/** One kept answer, handed out for the spot it was asked for while it is fresh. */
export class LateAnswers<T> {
  private kept: { spot: Spot; value: T; at: number } | undefined;

  constructor(
    private readonly ttlMs = LATE_ANSWER_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keep `value` for `spot` (replacing any older answer). */
  keep(spot: Spot, value: T): void {
    this.kept = { spot, value, at: this.now() };
  }

  /**
   * The answer kept for `spot`, if any and still fresh. It stays kept for further asks at
   * the same spot (VS Code asks again when, e.g., its suggest widget's selection changes);
   * an ask at any other spot drops it, since the editor has moved on.
   */
  take(spot: Spot): T | undefined {
    const kept = this.kept;
    if (kept === undefined) {
      return undefined;
    }
    if (!sameSpot(kept.spot, spot) || this.now() - kept.at > this.ttlMs) {
      this.kept = undefined;
      return undefined;
    }
    return kept.value;
  }

  /** Forget the kept answer. */
  clear(): void {
    this.kept = undefined;
  }
}

/** What became of a request VS Code may stop waiting for. */
export type Raced<T> = { settled: true; value: T } | { settled: false; later: Promise<T> };

/**
 * Wait for `request` or for `cancelled`, whichever comes first. When the cancellation
 * wins, the request goes on and its outcome is handed back as `later`.
 */
export async function raceCancellation<T>(request: Promise<T>, cancelled: Promise<void>): Promise<Raced<T>> {
  const CANCELLED = Symbol("cancelled");
  const first = await Promise.race([request, cancelled.then(() => CANCELLED)]);
  if (first === CANCELLED) {
    return { settled: false, later: request };
  }
  return { settled: true, value: first as T };
}

/**
 * The server's `coder-lsp/completionReady` notification: a completion that a time limit
 * had cut short (the editor got an empty answer on a busy machine) has been finished in
 * the background and is in the server's cache.
 */
export const READY_NOTIFICATION = "coder-lsp/completionReady";

/**
 * The spot a `coder-lsp/completionReady` notification names
 * (`{textDocument: {uri, version}, position: {line, character}}`), or undefined when the
 * params are not of that shape.
 */
export function readySpot(params: unknown): Spot | undefined {
  const p = params as {
    textDocument?: { uri?: unknown; version?: unknown };
    position?: { line?: unknown; character?: unknown };
  } | null;
  const uri = p?.textDocument?.uri;
  const version = p?.textDocument?.version;
  const line = p?.position?.line;
  const character = p?.position?.character;
  if (typeof uri !== "string" || typeof version !== "number" || typeof line !== "number" || typeof character !== "number") {
    return undefined;
  }
  return { uri, version, line, character };
}
