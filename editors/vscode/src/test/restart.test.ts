/** Unit tests of restart.ts: the crash-restart policy. */

import { strict as assert } from "node:assert";
import { test } from "node:test";
import { CrashPolicy } from "../restart";

test("restarts maxRestarts times, then gives up with a message", () => {
  const p = new CrashPolicy(3);
  assert.deepEqual([1, 2, 3].map((t) => p.onCrash(t * 1000).restart), [true, true, true]);
  const last = p.onCrash(4000);
  assert.equal(last.restart, false);
  assert.equal(last.crashes, 4);
  assert.match(last.message ?? "", /crashed 4 times in 3 minutes/);
  assert.match(last.message ?? "", /Restart Server/);
});

test("crashes older than the window are forgotten", () => {
  const p = new CrashPolicy(1, 60_000);
  assert.equal(p.onCrash(0).restart, true);
  assert.equal(p.onCrash(61_000).restart, true);
  assert.equal(p.onCrash(62_000).restart, false);
});

test("maxRestarts 0 never restarts; reset forgets", () => {
  assert.equal(new CrashPolicy(0).onCrash(0).restart, false);
  const p = new CrashPolicy(1);
  p.onCrash(0);
  p.reset();
  assert.equal(p.onCrash(1).restart, true);
});
