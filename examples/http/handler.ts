/**
 * The HTTP server's routes and responses: parsed requests in, response bytes out.
 *
 *   GET|HEAD /plaintext  200 text/plain "Hello, World!"           (TechEmpower plaintext)
 *   GET|HEAD /json       200 application/json {"message":"Hello, World!"}, serialized per request
 *   POST     /echo       200 with the request body and its Content-Type
 *   GET|HEAD /ip         200 text/plain `host:port` of the client (c.remoteAddr: behind a PROXY
 *                        protocol balancer, the balancer's client), or its socket path for unix peers
 *   other methods on those paths: 405 with Allow; any other path: 404
 *
 * Every response of one `data` call (pipelined requests, in order) is pushed to one
 * ResponseBuffer, which the session (session.ts) writes at once. A response carries
 * `Connection: close` when the request asked for it (or was HTTP/1.0 without keep-alive); an
 * error response always does.
 *
 * Module state (the cached /plaintext response) is per loop: each loop runs on its own thread
 * with its own copy of this module.
 */
import { dateGeneration, dateLine } from './date.js';
import type { HttpError } from './errors.js';
import type { HttpRequest } from './parser.js';
import type { Conn } from '../../src/index.js';

const kServerLine = 'Server: gevent\r\n';
const kTextPlain = 'Content-Type: text/plain\r\n';
const kJsonType = 'Content-Type: application/json\r\n';
const kHelloBody = 'Hello, World!';
/** The interim response to `Expect: 100-continue`. */
export const kContinue = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const kStatusText: Record<HttpError['status'], string> = {
  400: '400 Bad Request',
  408: '408 Request Timeout',
  413: '413 Content Too Large',
  431: '431 Request Header Fields Too Large',
  503: '503 Service Unavailable',
};

/**
 * The responses of one `data` call, joined into one output when taken. Strings must hold only
 * latin1 characters (each is written as one byte); header values taken from a request are.
 */
export class ResponseBuffer {
  #parts: (Uint8Array | string)[] = [];
  #bytes = 0;

  push(part: Uint8Array | string): void {
    this.#parts.push(part);
    this.#bytes += part.length;
  }

  /** Drops whatever was pushed and not taken (left behind only if a response threw halfway). */
  clear(): void {
    if (this.#parts.length === 0) return;
    this.#parts = [];
    this.#bytes = 0;
  }

  /** Everything pushed, as one new array (or the only part pushed); null when nothing was. */
  take(): Uint8Array | null {
    const parts = this.#parts;
    if (parts.length === 0) return null;
    let out: Uint8Array;
    if (parts.length === 1) {
      const only = parts[0]!;
      out = typeof only === 'string' ? Buffer.from(only, 'latin1') : only;
    } else {
      const buf = Buffer.allocUnsafe(this.#bytes);
      let off = 0;
      for (const p of parts) {
        if (typeof p === 'string') off += buf.write(p, off, 'latin1');
        else {
          buf.set(p, off);
          off += p.length;
        }
      }
      out = buf;
    }
    this.#parts = [];
    this.#bytes = 0;
    return out;
  }
}

let cacheGeneration = -1;
let plaintextBytes = Buffer.alloc(0);
let jsonHead = '';

/** Rebuilds the cached response parts when the Date line has changed. */
function refreshCache(): void {
  const date = dateLine();
  if (cacheGeneration === dateGeneration()) return;
  plaintextBytes = Buffer.from(
    `HTTP/1.1 200 OK\r\n${kServerLine}${kTextPlain}${date}Content-Length: ${kHelloBody.length}\r\n\r\n${kHelloBody}`,
    'latin1',
  );
  jsonHead = `HTTP/1.1 200 OK\r\n${kServerLine}${kJsonType}${date}Content-Length: `;
  cacheGeneration = dateGeneration();
}

/** The whole keep-alive GET /plaintext response, the same bytes for a whole second. */
function plaintextResponse(): Buffer {
  refreshCache();
  return plaintextBytes;
}

/** The keep-alive GET /json response: a cached head, and the body serialized for this request. */
function jsonResponse(): string {
  refreshCache();
  const body = JSON.stringify({ message: 'Hello, World!' });
  return `${jsonHead}${body.length}\r\n\r\n${body}`;
}

/** Appends one response; `req` null means an error response, which always closes. */
function write(
  out: ResponseBuffer,
  req: HttpRequest | null,
  status: string,
  fields: string,
  body: Uint8Array | string,
  omitBody: boolean,
): void {
  const connection =
    req === null || !req.keepAlive
      ? 'Connection: close\r\n'
      : req.minorVersion === 0
        ? 'Connection: keep-alive\r\n'
        : '';
  const head = `HTTP/1.1 ${status}\r\n${kServerLine}${fields}${dateLine()}Content-Length: ${body.length}\r\n${connection}\r\n`;
  if (omitBody || body.length === 0) out.push(head);
  else if (typeof body === 'string') out.push(head + body);
  else {
    out.push(head);
    out.push(body);
  }
}

function methodNotAllowed(out: ResponseBuffer, req: HttpRequest, allow: string): void {
  write(
    out,
    req,
    '405 Method Not Allowed',
    `${kTextPlain}Allow: ${allow}\r\n`,
    'Method Not Allowed\n',
    req.method === 'HEAD',
  );
}

/** The client's address as /ip answers it: `host:port` (IPv6 in brackets), or the path of a unix peer. */
export function clientAddress(c: Pick<Conn, 'remoteAddr'>): string {
  const a = c.remoteAddr;
  if (a.network === 'unix') return a.path;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Appends the response to one request on connection `c`. */
export function respond(out: ResponseBuffer, req: HttpRequest, c: Pick<Conn, 'remoteAddr'>): void {
  const method = req.method;
  const isHead = method === 'HEAD';
  switch (req.path) {
    case '/plaintext':
      if (method !== 'GET' && !isHead) return methodNotAllowed(out, req, 'GET, HEAD');
      if (!isHead && req.keepAlive && req.minorVersion === 1) return out.push(plaintextResponse());
      return write(out, req, '200 OK', kTextPlain, kHelloBody, isHead);
    case '/json':
      if (method !== 'GET' && !isHead) return methodNotAllowed(out, req, 'GET, HEAD');
      if (!isHead && req.keepAlive && req.minorVersion === 1) return out.push(jsonResponse());
      return write(out, req, '200 OK', kJsonType, JSON.stringify({ message: 'Hello, World!' }), isHead);
    case '/echo':
      if (method !== 'POST') return methodNotAllowed(out, req, 'POST');
      return write(
        out,
        req,
        '200 OK',
        `Content-Type: ${req.header('content-type') ?? 'application/octet-stream'}\r\n`,
        req.body,
        false,
      );
    case '/ip':
      if (method !== 'GET' && !isHead) return methodNotAllowed(out, req, 'GET, HEAD');
      return write(out, req, '200 OK', kTextPlain, `${clientAddress(c)}\n`, isHead);
    default:
      return write(out, req, '404 Not Found', kTextPlain, 'Not Found\n', isHead);
  }
}

/** Appends the response to a refused request: its status, the reason as text, `Connection: close`. */
export function respondError(out: ResponseBuffer, err: HttpError): void {
  write(
    out,
    null,
    kStatusText[err.status],
    kTextPlain,
    `${kStatusText[err.status]}: ${err.message.replace(/^http: /, '')}\n`,
    false,
  );
}
