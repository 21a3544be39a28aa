/**
 * Shared plumbing of the HTTP example's tests: a server on port 0 with counted connections and an
 * fd check, Node's http client for one request, and raw-socket exchanges with a minimal response
 * parser (Content-Length framing only, which is all the example sends).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Events, ServeOptions } from '../src/index.js';
import { httpEvents } from '../examples/http/events.js';
import { kDefaultLimits, type HttpLimits } from '../examples/http/parser.js';
import { kDefaultTimeouts, type HttpTimeouts } from '../examples/http/timeouts.js';
import { connectTo, openFdCount, readEnd, startServer, waitFor, type BackendName } from './helpers.js';

export interface Tally {
  opened: number;
  closed: number;
  errors: Error[];
}

/** The example's settings a test may change, and further ServeOptions. */
export interface ServerConfig {
  limits?: Partial<HttpLimits>;
  timeouts?: Partial<HttpTimeouts>;
  bodyBudgetBytes?: number;
  serve?: Omit<ServeOptions, 'backend' | 'signal'>;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reusedSocket: boolean;
}

/**
 * Runs `body` against a fresh server; afterwards every connection has closed, none with an error
 * (but those the test expects, listed by class name in `expected`), and no fd leaked.
 */
export async function withServer(
  backend: BackendName,
  config: ServerConfig,
  body: (port: number, tally: Tally) => Promise<void>,
  expected: string[] = [],
): Promise<void> {
  const fds = openFdCount();
  const tally: Tally = { opened: 0, closed: 0, errors: [] };
  const inner = httpEvents({
    loops: 1,
    limits: { ...kDefaultLimits, ...config.limits },
    timeouts: { ...kDefaultTimeouts, ...config.timeouts },
    ...(config.bodyBudgetBytes !== undefined ? { bodyBudgetBytes: config.bodyBudgetBytes } : {}),
    log: false,
  });
  const events: Events = {
    ...inner,
    opened(c) {
      tally.opened++;
      return inner.opened!.call(inner, c);
    },
    closed(c, err) {
      tally.closed++;
      if (err !== null) tally.errors.push(err);
      return inner.closed?.call(inner, c, err);
    },
  };
  const running = await startServer(events, { ...config.serve, backend }, 'tcp://127.0.0.1:0');
  try {
    await body(running.server.addrs[0]!.port, tally);
    await waitFor(() => tally.closed === tally.opened, 'every connection to close');
  } finally {
    await running.stop();
  }
  assert.equal(tally.closed, tally.opened);
  assert.deepEqual(
    tally.errors.map((e) => e.name),
    expected,
  );
  await waitFor(() => openFdCount() <= fds, `fds back to ${fds} (now ${openFdCount()})`);
}

/** One request with Node's http client; `chunks` are written one by one (chunked without a length). */
export function request(port: number, opts: http.RequestOptions, chunks: (string | Buffer)[] = []): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(parts),
          reusedSocket: req.reusedSocket,
        }),
      );
      res.once('error', reject);
    });
    req.once('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

/** A parsed raw response. */
export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Splits raw bytes into complete Content-Length-framed responses; returns them and the rest. */
export function parseResponses(data: Buffer): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let p = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', p);
    if (end < 0) break;
    const [statusLine, ...lines] = data.toString('latin1', p, end).split('\r\n');
    const headers = new Map(
      lines.map(
        (l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string],
      ),
    );
    const length = Number(headers.get('content-length') ?? 0);
    if (data.length < end + 4 + length) break;
    responses.push({
      status: Number(statusLine!.split(' ')[1]),
      headers,
      body: data.toString('latin1', end + 4, end + 4 + length),
    });
    p = end + 4 + length;
  }
  return { responses, rest: data.subarray(p) };
}

/** Writes `text` on a raw connection and reads until the server closes it. */
export async function rawExchange(
  port: number,
  text: string | Buffer,
): Promise<{ how: string; responses: RawResponse[] }> {
  const s = await connectTo({ network: 'tcp', port, path: '' });
  const ended = readEnd(s);
  s.write(text);
  const { how, data } = await ended;
  s.destroy();
  return { how, responses: parseResponses(data).responses };
}

/** A keep-alive raw connection: send requests, collect exactly `n` responses (rejects if the connection ends first). */
export async function rawRequests(s: Socket, text: string, n: number): Promise<RawResponse[]> {
  let buf: Buffer = Buffer.alloc(0);
  const got: RawResponse[] = [];
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      const { responses, rest } = parseResponses(Buffer.concat([buf, d]));
      buf = rest;
      got.push(...responses);
      if (got.length >= n) {
        cleanup();
        resolve(got);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`the server closed the connection after ${got.length} of ${n} responses`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
    s.write(text);
  });
}
