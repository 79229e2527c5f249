/** Unit tests of late.ts: answers kept for the spot they were asked for, and the race. */

import { strict as assert } from "node:assert";
import { test } from "node:test";
import { hasItems, LateAnswers, raceCancellation, readySpot, sameSpot, type Spot } from "../late";

const spot: Spot = { uri: "file:///w/a.py", version: 3, line: 4, character: 7 };

test("a kept answer is handed out for its spot, again and again while fresh", () => {
  let now = 1000;
  const late = new LateAnswers<string>(30_000, () => now);
  late.keep(spot, "urn a + b");
  assert.equal(late.take({ ...spot }), "urn a + b");
  now += 10_000;
  assert.equal(late.take(spot), "urn a + b", "VS Code may ask twice at the same spot");
  now += 25_000;
  assert.equal(late.take(spot), undefined, "stale after the TTL");
});

test("an ask anywhere else drops the kept answer: the editor moved on", () => {
  const late = new LateAnswers<string>();
  late.keep(spot, "x");
  assert.equal(late.take({ ...spot, version: 4 }), undefined);
  assert.equal(late.take(spot), undefined, "dropped, not just skipped");
  late.keep(spot, "y");
  assert.equal(late.take({ ...spot, character: 8 }), undefined);
  late.keep(spot, "z");
  assert.equal(late.take({ ...spot, uri: "file:///w/b.py" }), undefined);
  late.keep(spot, "w");
  late.clear();
  assert.equal(late.take(spot), undefined);
});

test("sameSpot compares document, version and position", () => {
  assert.ok(sameSpot(spot, { ...spot }));
  assert.ok(!sameSpot(spot, { ...spot, line: 5 }));
});

test("hasItems accepts both result shapes", () => {
  assert.ok(hasItems([{ insertText: "a" }]));
  assert.ok(hasItems({ items: [{ insertText: "a" }] }));
  assert.ok(!hasItems([]));
  assert.ok(!hasItems({ items: [] }));
  assert.ok(!hasItems(null));
  assert.ok(!hasItems(undefined));
});

test("the race returns the answer when it comes first", async () => {
  const raced = await raceCancellation(Promise.resolve("answer"), new Promise<void>(() => undefined));
  assert.deepEqual(raced, { settled: true, value: "answer" });
});

test("when the cancellation comes first, the request goes on and its answer comes later", async () => {
  let resolve: (v: string) => void = () => undefined;
  const request = new Promise<string>((r) => {
    resolve = r;
  });
  const raced = await raceCancellation(request, Promise.resolve());
  assert.equal(raced.settled, false);
  if (!raced.settled) {
    resolve("late answer");
    assert.equal(await raced.later, "late answer");
  }
});

test("readySpot reads the completionReady params and refuses other shapes", () => {
  const params = { textDocument: { uri: spot.uri, version: 3 }, position: { line: 4, character: 7 } };
  assert.deepEqual(readySpot(params), spot);
  assert.equal(readySpot(null), undefined);
  assert.equal(readySpot({ textDocument: { uri: spot.uri }, position: { line: 4, character: 7 } }), undefined);
  assert.equal(readySpot({ textDocument: { uri: spot.uri, version: 3 }, position: { line: "4", character: 7 } }), undefined);
});
