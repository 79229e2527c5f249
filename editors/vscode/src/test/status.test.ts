/** Unit tests of status.ts: the status bar's state machine and texts. */

import { strict as assert } from "node:assert";
import { test } from "node:test";
import { initialStatus, modelLabel, reduce, render, type StatusEvent, type StatusState } from "../status";

function run(events: StatusEvent[], start: StatusState = initialStatus(true, "qwen2.5-coder-0.5b")): StatusState {
  return events.reduce(reduce, start);
}

test("starting, then loading with progress, then ready", () => {
  assert.equal(render(initialStatus(true, "m")).text, "$(sync~spin) coder-lsp: starting");
  const loading = run([
    { kind: "running" },
    { kind: "serverStatus", state: "loading", model: "qwen2.5-coder-0.5b", detail: "" },
    { kind: "progressBegin", token: "t", title: "coder-lsp", message: "Loading model qwen2.5-coder-0.5b" },
    { kind: "progressReport", token: "t", percentage: 40 },
  ]);
  const view = render(loading);
  assert.equal(view.phase, "loading");
  assert.equal(view.text, "$(sync~spin) coder-lsp: loading qwen2.5-coder-0.5b 40%");
  const ready = run([{ kind: "progressEnd", token: "t" }, { kind: "serverStatus", state: "ready", model: "qwen2.5-coder-0.5b" }], loading);
  assert.equal(render(ready).text, "$(check) coder-lsp: ready (qwen2.5-coder-0.5b)");
  assert.equal(render(ready).severity, "normal");
});

test("a model path is shown by its file stem", () => {
  assert.equal(modelLabel("/models/deepseek-coder-1.3b-base.Q4_K_M.gguf"), "deepseek-coder-1.3b-base.Q4_K_M");
  assert.equal(modelLabel("qwen2.5-coder-0.5b"), "qwen2.5-coder-0.5b");
  assert.equal(modelLabel(undefined), "default model");
  const s = run([{ kind: "serverStatus", state: "ready", model: "/tmp/x/tiny.gguf" }]);
  assert.equal(render(s).text, "$(check) coder-lsp: ready (tiny)");
});

test("working shows only while requests are in flight and never goes negative", () => {
  const ready = run([{ kind: "running" }, { kind: "serverStatus", state: "ready" }]);
  const busy = run([{ kind: "requestStart" }, { kind: "requestStart" }, { kind: "requestEnd" }], ready);
  assert.equal(render(busy).phase, "working");
  assert.equal(render(busy).text, "$(loading~spin) coder-lsp: working (qwen2.5-coder-0.5b)");
  const idle = run([{ kind: "requestEnd" }, { kind: "requestEnd" }], busy);
  assert.equal(idle.inFlight, 0);
  assert.equal(render(idle).phase, "ready");
});

test("a download's progress reads 'downloading'", () => {
  const s = run([
    { kind: "serverStatus", state: "ready" },
    { kind: "progressBegin", token: "p", title: "coder-lsp", message: "Downloading qwen2.5-coder-1.5b", percentage: 0 },
    { kind: "progressReport", token: "p", message: "12/1117 MB", percentage: 1.4 },
  ]);
  assert.equal(render(s).phase, "downloading");
  assert.equal(render(s).text, "$(sync~spin) coder-lsp: downloading qwen2.5-coder-1.5b 1%");
  assert.match(render(s).tooltip, /12\/1117 MB/);
});

test("a failed model is an error with the server's detail in the tooltip", () => {
  const s = run([{ kind: "serverStatus", state: "failed", model: "m", detail: "file not found: /x.gguf" }]);
  const view = render(s);
  assert.equal(view.phase, "error");
  assert.equal(view.severity, "error");
  assert.equal(view.text, "$(error) coder-lsp: m failed");
  assert.match(view.tooltip, /file not found: \/x\.gguf/);
});

test("missing and stopped servers are errors and win over everything", () => {
  const missing = run([{ kind: "missing", detail: "install it" }]);
  assert.equal(render(missing).text, "$(error) coder-lsp: not installed");
  assert.match(render(missing).tooltip, /install it/);
  const stopped = run([
    { kind: "serverStatus", state: "ready" },
    { kind: "requestStart" },
    { kind: "progressBegin", token: "t", title: "x" },
    { kind: "stopped", detail: "crashed 4 times" },
  ]);
  assert.equal(render(stopped).text, "$(error) coder-lsp: stopped");
  assert.equal(stopped.inFlight, 0);
  assert.equal(stopped.progress.length, 0);
});

test("toggled off shows 'off'; on again shows ready", () => {
  const off = run([{ kind: "serverStatus", state: "ready" }, { kind: "enabled", enabled: false }]);
  assert.equal(render(off).text, "$(circle-slash) coder-lsp: off");
  assert.equal(render(off).severity, "warning");
  assert.equal(render(reduce(off, { kind: "enabled", enabled: true })).phase, "ready");
});

test("unknown server states are ignored; unloaded reads 'no model'", () => {
  const ready = run([{ kind: "serverStatus", state: "ready" }]);
  assert.equal(reduce(ready, { kind: "serverStatus", state: "warming-up" }), ready);
  assert.equal(render(run([{ kind: "serverStatus", state: "unloaded" }])).text, "$(circle-outline) coder-lsp: no model");
});

test("a restart clears model state, progress and requests", () => {
  const s = run([
    { kind: "serverStatus", state: "ready" },
    { kind: "progressBegin", token: "t", title: "x" },
    { kind: "requestStart" },
    { kind: "starting" },
  ]);
  assert.equal(s.modelState, undefined);
  assert.equal(s.progress.length, 0);
  assert.equal(s.inFlight, 0);
  assert.equal(render(s).phase, "starting");
});

test("reduce never mutates its input", () => {
  const start = initialStatus(true, "m");
  const frozen = JSON.stringify(start);
  run([{ kind: "progressBegin", token: "t", title: "x" }, { kind: "requestStart" }], start);
  assert.equal(JSON.stringify(start), frozen);
});
