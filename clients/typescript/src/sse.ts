/**
 * A parser for the `text/event-stream` format, as the HTML standard defines it
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
 *
 * Feed it decoded text in chunks of any size (a line, or a CRLF, may be split between two
 * chunks); it returns the events each chunk completes. It keeps the "last event ID" across
 * events, as an `EventSource` does, so a reconnect can send it as `Last-Event-ID`.
 */

export interface SseEvent {
  /** The `event:` field; `"message"` when the block had none. */
  event: string;
  /** The `data:` lines, joined with newlines. */
  data: string;
  /** The last event ID at this event (the `id:` of this block or an earlier one). */
  id: string;
}

export class SseParser {
  /** The last event ID: what a reconnect sends as `Last-Event-ID` ("" for none). */
  lastEventId: string;
  /** The reconnection time the stream asked for (`retry:`), in milliseconds, if it did. */
  retry: number | undefined;

  private buffer = "";
  private started = false;
  private afterCR = false;
  private data = "";
  private hasData = false;
  private eventType = "";
  private idBuffer: string;

  constructor(lastEventId = "") {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** The events that `chunk` completes, in order. */
  feed(chunk: string): SseEvent[] {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1); // one leading BOM is dropped
    }
    if (chunk.length === 0) return [];
    if (this.afterCR && chunk.startsWith("\n")) chunk = chunk.slice(1); // the LF of a split CRLF
    this.afterCR = false;
    const events: SseEvent[] = [];
    let text = this.buffer + chunk;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      this.line(text.slice(start, i), events);
      if (c === 0x0d) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 0x0a) i++;
        } else {
          this.afterCR = true;
        }
      }
      start = i + 1;
    }
    text = text.slice(start);
    this.buffer = text;
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line.startsWith(":")) return; // a comment
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data += value + "\n";
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private dispatch(events: SseEvent[]): void {
    this.lastEventId = this.idBuffer;
    if (!this.hasData) {
      this.eventType = "";
      return;
    }
    const data = this.data.endsWith("\n") ? this.data.slice(0, -1) : this.data;
    events.push({ event: this.eventType || "message", data, id: this.lastEventId });
    this.data = "";
    this.hasData = false;
    this.eventType = "";
  }
}
