/**
 * Pure crash-restart policy: restart a crashed server at most `maxRestarts` times within a
 * sliding window, then give up with a message that says so (instead of restarting forever
 * or silently).
 */

/** The decision after one crash. */
export interface CrashDecision {
  restart: boolean;
  /** Crashes counted inside the window, this one included. */
  crashes: number;
  /** The message to show when giving up; undefined when restarting. */
  message?: string;
}

/** Counts crashes in a sliding time window. */
export class CrashPolicy {
  private times: number[] = [];

  /**
   * @param maxRestarts restarts allowed inside the window (0 = never restart)
   * @param windowMs the window, 3 minutes by default like VS Code's own client
   */
  constructor(
    readonly maxRestarts: number,
    readonly windowMs: number = 3 * 60 * 1000,
  ) {}

  /** Record a crash at `now` (ms) and decide whether to restart. */
  onCrash(now: number): CrashDecision {
    this.times = this.times.filter((t) => now - t < this.windowMs);
    this.times.push(now);
    const crashes = this.times.length;
    if (crashes <= this.maxRestarts) {
      return { restart: true, crashes };
    }
    const minutes = Math.round(this.windowMs / 60000);
    return {
      restart: false,
      crashes,
      message:
        `coder-lsp: the server crashed ${crashes} times in ${minutes} minutes and will not be ` +
        `restarted. See the server log ("coder-lsp: Show Server Log"), fix the cause, then run ` +
        `"coder-lsp: Restart Server".`,
    };
  }

  /** Forget past crashes (after a manual restart). */
  reset(): void {
    this.times = [];
  }
}
