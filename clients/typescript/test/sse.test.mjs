// The event-stream parser on its own: the text/event-stream rules of the HTML standard.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser } from "../dist/index.js";

/** Every event of `text`, fed in pieces of `size` characters. */
function parse(text, size = text.length, lastEventId = "") {
  const parser = new SseParser(lastEventId);
  const events = [];
  for (let i = 0; i < text.length; i += size) events.push(...parser.feed(text.slice(i, i + size)));
  return { events, parser };
}

const STREAM =
  "retry: 1000\n\n" +
  "id: 1207\nevent: created\ndata: {\"status\":\"queued\"}\n\n" +
  ": ping\n\n" +
  "id: 1208\r\nevent: status\r\ndata: {\"status\":\"running\"}\r\n\r\n" +
  "id: 1209\revent: step\rdata: {\"a\":1}\r\r";

test("events, ids and types come out whatever the line endings and however the text is cut", () => {
  const expected = [
    { event: "created", data: '{"status":"queued"}', id: "1207" },
    { event: "status", data: '{"status":"running"}', id: "1208" },
    { event: "step", data: '{"a":1}', id: "1209" },
  ];
  for (const size of [STREAM.length, 1, 2, 3, 7, 16]) {
    const { events, parser } = parse(STREAM, size);
    assert.deepEqual(events, expected, `in pieces of ${size}`);
    assert.equal(parser.lastEventId, "1209");
    assert.equal(parser.retry, 1000);
  }
});

test("a CRLF split by an empty piece is still one line end", () => {
  const parser = new SseParser();
  const events = ["data: a\r", "", "\n", "\r\n"].flatMap((piece) => parser.feed(piece));
  assert.deepEqual(events, [{ event: "message", data: "a", id: "" }]);
});

test("data lines join with newlines; a missing event name is message; one leading space is dropped", () => {
  const { events } = parse("data: one\ndata:two\ndata:  three\n\ndata\n\n");
  assert.deepEqual(events, [
    { event: "message", data: "one\ntwo\n three", id: "" },
    { event: "message", data: "", id: "" },
  ]);
});

test("a block without data is not an event, but its id still counts", () => {
  const { events, parser } = parse("id: 7\nevent: status\n\ndata: x\n\n");
  assert.deepEqual(events, [{ event: "message", data: "x", id: "7" }]);
  assert.equal(parser.lastEventId, "7");
});

test("an unfinished event is not given out, and does not move the last event id", () => {
  const { events, parser } = parse("id: 1\ndata: a\n\nid: 2\ndata: b\n", 5, "0");
  assert.deepEqual(events, [{ event: "message", data: "a", id: "1" }]);
  assert.equal(parser.lastEventId, "1");
});

test("comments, unknown fields, bad retry values and ids with NUL are ignored; a BOM is dropped", () => {
  const { events, parser } = parse("\uFEFF: hello\nfoo: bar\nretry: soon\nid: a\0b\ndata: x\n\n", 1, "5");
  assert.deepEqual(events, [{ event: "message", data: "x", id: "5" }]);
  assert.equal(parser.retry, undefined);
});

test("the last event id given at the start carries on until an id field changes it", () => {
  const { events } = parse("data: a\n\nid:\ndata: b\n\n", undefined, "41");
  assert.deepEqual(
    events.map((event) => event.id),
    ["41", ""],
  );
});
