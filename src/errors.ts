/**
 * Every failure the library reports is one of these classes. Each has a stable `code` that callers
 * can switch on, and a message prefixed `gevent:` that names the bad value.
 */
import type { Addr } from './addr.js';
import type { ProxyRefusal } from './backend/backend.js';

/** Base class of every error thrown or rejected by gevent. */
export class GeventError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`gevent: ${message}`, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An address string that cannot be parsed: unknown scheme, missing port, bad option. */
export class BadAddressError extends GeventError {
  readonly address: string;
  constructor(address: string, reason: string) {
    super('ERR_GEVENT_BAD_ADDRESS', `bad address ${JSON.stringify(address)}: ${reason}`);
    this.address = address;
  }
}

/** A well-formed address that could not be bound (EADDRINUSE, EACCES, ...). */
export class ListenError extends GeventError {
  readonly address: string;
  /** The system error name, such as `EADDRINUSE`. */
  readonly errno: string;
  constructor(address: string, errno: string, detail: string, cause?: unknown) {
    super('ERR_GEVENT_LISTEN', `cannot listen on ${JSON.stringify(address)}: ${errno}${detail ? ` (${detail})` : ''}`, {
      cause,
    });
    this.address = address;
    this.errno = errno;
  }
}

/** An argument of the wrong type or out of range. */
export class InvalidArgumentError extends GeventError {
  constructor(what: string, value: unknown, expected: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_INVALID_ARGUMENT', `${what} must be ${expected}, got ${safeDescribe(value)}`, options);
  }
}

/** The requested backend cannot run here, or cannot do what was asked of it. */
export class BackendUnavailableError extends GeventError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_BACKEND_UNAVAILABLE', message, options);
  }
}

/** A user callback threw; the original error is the `cause`. */
export class HandlerError extends GeventError {
  readonly handler: string;
  constructor(handler: string, cause: unknown) {
    super('ERR_GEVENT_HANDLER', `the ${handler} handler threw: ${errorText(cause)}`, { cause });
    this.handler = handler;
  }
}

/** A connection-level system error (ECONNRESET, EPIPE, ...), as passed to `closed`. */
export class ConnectionError extends GeventError {
  /** The system error name, such as `ECONNRESET`. */
  readonly errno: string;
  constructor(errno: string, detail?: string) {
    super(`ERR_GEVENT_CONNECTION`, `connection error ${errno}${detail ? `: ${detail}` : ''}`);
    this.errno = errno;
  }
}

/** A loop's worker thread failed (an uncaught exception there) or exited unexpectedly. */
export class WorkerError extends GeventError {
  /** The loop's index. */
  readonly loop: number;
  constructor(loop: number, message: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_WORKER', `loop ${loop} ${message}`, options);
    this.loop = loop;
  }
}

/** A RingBuffer read that needed more bytes than the buffer holds. */
export class BufferEmptyError extends GeventError {
  constructor() {
    super('ERR_GEVENT_BUFFER_EMPTY', 'ring buffer is empty');
  }
}

/**
 * The message of a thrown value, for building another error's message. Never throws: a value whose
 * `message` getter, `toString` or prototype chain throws (a revoked Proxy, `Object.create(null)`)
 * is described by its type instead.
 */
export function errorText(err: unknown): string {
  try {
    if (err instanceof Error) {
      const m: unknown = err.message;
      return typeof m === 'string' ? m : describe(m);
    }
    if (typeof err === 'string') return err;
    if (err === null || (typeof err !== 'object' && typeof err !== 'function')) return String(err);
  } catch {
    // Falls through to a description that reads nothing user-defined.
  }
  return safeDescribe(err);
}

/** describe(), or a bare type name when even that throws (a revoked Proxy throws on any inspection). */
function safeDescribe(value: unknown): string {
  try {
    return describe(value);
  } catch {
    return `a value of type ${typeof value} that cannot be inspected`;
  }
}

/** A short description of a value for error messages: its type and, when small, its contents. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? value.slice(0, 61) + '...' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `a ${value.constructor.name} of ${value.length} bytes`;
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}

/**
 * A connection closed because its unconsumed input passed `maxInputBytes`: the `data` handler kept
 * input it never consumed (a frame that never completes, a peer that sends more than it may).
 */
export class InputLimitError extends GeventError {
  readonly limitBytes: number;
  readonly inputBytes: number;
  constructor(limitBytes: number, inputBytes: number) {
    super(
      'ERR_GEVENT_INPUT_LIMIT',
      `connection has ${inputBytes} bytes of unconsumed input, over maxInputBytes ${limitBytes}`,
    );
    this.limitBytes = limitBytes;
    this.inputBytes = inputBytes;
  }
}

/**
 * Memory for a connection's buffers could not be allocated (the native core's malloc failed, or a
 * buffer could not grow). Only that connection closes; the loop goes on serving the others.
 */
export class NoMemoryError extends GeventError {
  /** What was being allocated, such as `output queue`. */
  readonly what: string;
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_NO_MEMORY', `out of memory for a connection's ${what}; the connection was closed`, options);
    this.what = what;
  }
}

/** A connection closed because no data arrived for its idle timeout. */
export class IdleTimeoutError extends GeventError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super('ERR_GEVENT_IDLE_TIMEOUT', `connection idle for ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** A connection closed because its queued output passed `maxOutputBytes` (a peer that does not read). */
export class OutputLimitError extends GeventError {
  readonly limitBytes: number;
  readonly queuedBytes: number;
  constructor(limitBytes: number, queuedBytes: number) {
    super(
      'ERR_GEVENT_OUTPUT_LIMIT',
      `connection has ${queuedBytes} bytes of output queued, over maxOutputBytes ${limitBytes}`,
    );
    this.limitBytes = limitBytes;
    this.queuedBytes = queuedBytes;
  }
}

/**
 * A shutdown closed a connection before its queued output was written: at the `grace` deadline,
 * or at once when there was no grace.
 */
export class ShutdownError extends GeventError {
  /** The grace period the shutdown gave, in ms (0 for none). */
  readonly graceMs: number;
  /** Output dropped, as the loop last knew it (the backend's last report of what it held). */
  readonly droppedBytes: number;
  constructor(graceMs: number, droppedBytes: number) {
    super(
      'ERR_GEVENT_SHUTDOWN',
      `server shut down ${graceMs > 0 ? `at its ${graceMs} ms grace deadline` : 'without a grace period'} with ${droppedBytes} bytes of output not written`,
    );
    this.graceMs = graceMs;
    this.droppedBytes = droppedBytes;
  }
}

/** accept() failed on a listener (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...); the listener goes on. */
export class AcceptError extends GeventError {
  readonly errno: string;
  readonly address: string;
  /** How many accept errors this report stands for (reports are limited to one a second). */
  readonly count: number;
  constructor(address: string, errno: string, count: number) {
    super(
      'ERR_GEVENT_ACCEPT',
      `accept on ${address} failed: ${errno}${count > 1 ? ` (${count} times since the last report)` : ''}; still listening`,
    );
    this.errno = errno;
    this.address = address;
    this.count = count;
  }
}

/**
 * Connections on a PROXY protocol listener (`?proxy=true`) closed before they opened: the header
 * was refused by the parser ('signature', 'version', 'command', 'family', 'v1-syntax', 'too-long',
 * 'address-length', 'tlv'), did not arrive within proxyHeaderTimeout ('timeout'), or the peer left
 * before it was complete ('closed'). Reported through onError at most once a second per listener;
 * `count` says how many refusals the report stands for (`reason` and `peer` are the last one's).
 */
export class ProxyProtocolError extends GeventError {
  readonly reason: ProxyRefusal;
  /** The listener's bound address. */
  readonly listener: Addr;
  /** The socket's peer: the balancer (or whoever connected), not a header's source. */
  readonly peer: Addr;
  /** How many refusals this report stands for. */
  readonly count: number;
  constructor(reason: ProxyRefusal, listener: Addr, peer: Addr, count: number) {
    super(
      'ERR_GEVENT_PROXY_PROTOCOL',
      `PROXY protocol header from ${String(peer)} on ${String(listener)} refused: ${reason}` +
        `${count > 1 ? ` (${count} connections since the last report)` : ''}; still listening`,
    );
    this.reason = reason;
    this.listener = listener;
    this.peer = peer;
    this.count = count;
  }
}

/**
 * An outbound connection (a dial) that did not open: the connect failed (ECONNREFUSED, ENOENT,
 * EHOSTUNREACH, ...), the host name did not resolve (ENOTFOUND), the connect timeout passed
 * (ETIMEDOUT), or it was cancelled by a shutdown or an AbortSignal (ECANCELED).
 */
export class DialError extends GeventError {
  /** The target as given to dial(), such as `tcp://127.0.0.1:6379`. */
  readonly address: string;
  /** The system error name, such as `ECONNREFUSED`. */
  readonly errno: string;
  constructor(address: string, errno: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_DIAL', `dial ${address}: ${detail}`, options);
    this.address = address;
    this.errno = errno;
  }
}

/**
 * ServeOptions.tls (or a TLS dial's options) that TLS cannot use: a PEM that does not parse, a
 * private key that does not match its certificate, a wrong passphrase, a cipher list OpenSSL
 * refuses. `field` names the option (such as `options.tls.cert` or `options.tls.sni["a.example"]`);
 * `reason` is OpenSSL's error code where there is one.
 */
export class TlsConfigError extends GeventError {
  /** The option at fault, such as `options.tls.key`. */
  readonly field: string;
  /** OpenSSL's (or Node's) code for the failure, such as `ERR_OSSL_X509_KEY_VALUES_MISMATCH`. */
  readonly reason: string;
  constructor(field: string, reason: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_GEVENT_TLS_CONFIG', `${field}: ${detail}${reason ? ` (${reason})` : ''}`, options);
    this.field = field;
    this.reason = reason;
  }
}

/**
 * A TLS handshake that failed. On a listener: the connection closed before it opened (plain text
 * or garbage sent to a TLS port, a protocol or cipher the server refuses, no common ALPN protocol, a
 * missing or refused client certificate, a peer that left or stalled mid-handshake); reported
 * through onError at most once a second per listener, `count` saying how many failures the report
 * stands for (`reason` and `peer` are the last one's). On a dial: the promise rejects with it (a
 * certificate that does not verify or name the host, a protocol mismatch), with `count` 1.
 */
export class TlsHandshakeError extends GeventError {
  /** OpenSSL's or Node's code, such as `ERR_SSL_WRONG_VERSION_NUMBER`, `ERR_TLS_CERT_ALTNAME_INVALID` or `ECONNRESET`. */
  readonly reason: string;
  /** The listener's bound address, or the dial's target. */
  readonly address: string;
  /** The peer's address, when known (null for a dial that never connected). */
  readonly peer: Addr | null;
  /** How many failed handshakes this report stands for. */
  readonly count: number;
  constructor(
    address: string,
    peer: Addr | null,
    reason: string,
    count: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'ERR_GEVENT_TLS_HANDSHAKE',
      `TLS handshake ${peer !== null ? `with ${String(peer)} ` : ''}on ${address} failed: ${reason}` +
        `${detail ? ` (${detail})` : ''}${count > 1 ? ` (${count} connections since the last report)` : ''}`,
      options,
    );
    this.reason = reason;
    this.address = address;
    this.peer = peer;
    this.count = count;
  }
}
