/**
 * Event streams over `fetch` (an `EventSource` cannot send the API key): each connection's body
 * is read as it arrives and parsed by `SseParser`; a connection that drops, goes silent, or ends
 * before the job's terminal event is opened again with `Last-Event-ID` after the wait the server
 * asked for (`retry:`), so the caller sees every event once, in order. A job's stream ends when the
 * server closes it after a terminal event (or when a resume finds nothing after the given id:
 * 204): a job retried after it ended has more than one end in its history, and the server closes
 * the stream only after the last. The workspace stream runs until the caller stops it.
 */

import { ApiError, ConnectionFailed } from "./errors.js";
import { type Query, type Transport, sleep } from "./http.js";
import { SseParser } from "./sse.js";
import type { StreamEvent } from "./types.js";

export interface StreamSpec<Change> {
  path: string;
  query?: Query | undefined;
  lastEventId?: string | number | undefined;
  signal?: AbortSignal | undefined;
  /** For a job's stream: the change after which it is over. */
  isTerminal?: ((change: Change) => boolean) | undefined;
}

/** The reconnection wait until the server names one (it sends `retry: 1000` first). */
const DEFAULT_RETRY_MS = 1000;
/**
 * The server pings an idle stream every 15 s: a connection silent for a minute more than the
 * client's timeout is dead (a peer gone without a word), and is resumed.
 */
const SILENCE_MS = 60_000;
const SILENT = Symbol("silent");

export async function* eventStream<Change>(
  transport: Transport,
  spec: StreamSpec<Change>,
): AsyncGenerator<StreamEvent<Change>> {
  let lastEventId = spec.lastEventId === undefined ? "" : String(spec.lastEventId);
  let retryMs = DEFAULT_RETRY_MS;
  let failures = 0;
  let ended = false; // the last event was a terminal one: over if the server closes now
  for (;;) {
    spec.signal?.throwIfAborted();
    const connection = new AbortController();
    const stop = () => connection.abort(spec.signal?.reason);
    spec.signal?.addEventListener("abort", stop, { once: true });
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const listen = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => connection.abort(SILENT), transport.timeoutMs + SILENCE_MS);
    };
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let heard = false;
    let lost: unknown = undefined;
    try {
      const response = await transport.open({
        method: "GET",
        path: spec.path,
        query: spec.query,
        // Only headers the server's CORS setting allows: a browser page may read streams too.
        headers: { Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
        signal: connection.signal,
      });
      if (response.status === 204 || response.body === null) return; // nothing after lastEventId: it has ended
      const type = response.headers.get("Content-Type") ?? "";
      if (!type.startsWith("text/event-stream")) {
        throw new ApiError(`Unexpected answer from GET ${spec.path}: ${type || "no Content-Type"}, not an event stream`, {
          status: response.status,
          code: "UNEXPECTED_RESPONSE",
        });
      }
      const parser = new SseParser(lastEventId);
      const decoder = new TextDecoder();
      reader = response.body.getReader();
      for (;;) {
        listen();
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          lost = error; // the connection dropped, or went silent, mid-stream
          break;
        }
        if (chunk.done) {
          if (ended) return;
          break;
        }
        heard = true;
        for (const event of parser.feed(decoder.decode(chunk.value, { stream: true }))) {
          const change = parse<Change>(spec.path, event.data);
          lastEventId = event.id;
          ended = spec.isTerminal?.(change) ?? false;
          yield { id: Number(event.id), event: event.event, job: change };
        }
        lastEventId = parser.lastEventId;
        if (parser.retry !== undefined) retryMs = parser.retry;
      }
    } catch (error) {
      if (spec.signal?.aborted) throw spec.signal.reason;
      throw error; // an error answer, after the transport's own retries
    } finally {
      clearTimeout(watchdog);
      spec.signal?.removeEventListener("abort", stop);
      connection.abort(); // stops the body, also when the caller leaves the loop early
      reader?.releaseLock();
    }
    if (spec.signal?.aborted) throw spec.signal.reason;
    failures = heard ? 0 : failures + 1;
    if (failures > transport.retries) {
      throw new ConnectionFailed(`The event stream ${spec.path} keeps closing before its end`, { cause: lost });
    }
    await sleep(Math.min(retryMs, transport.maxRetryWaitMs), spec.signal);
  }
}

function parse<Change>(path: string, text: string): Change {
  try {
    return JSON.parse(text) as Change;
  } catch (cause) {
    throw new ApiError(`Unexpected event on ${path}: its data is not JSON`, { code: "UNEXPECTED_RESPONSE", cause });
  }
}
