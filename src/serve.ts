/**
 * serve(): validates what the user passed, then hands it to the engine.
 */
import { availableParallelism } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseAddress, type ListenSpec } from './addr.js';
import type { BackendKind } from './backend/select.js';
import { startEngine } from './engine/engine.js';
import { resolveOptions } from './engine/options.js';
import { errorText, InvalidArgumentError } from './errors.js';
import { checkServerTls, type TlsOptions } from './tls-options.js';
import { LoadBalance, type Events, type Server } from './events.js';

/** The second argument of serve() in its long form. */
export interface ServeOptions {
  /**
   * The server's idle timeout (the seed's waitTimeout): close a connection after this many ms
   * without progress (input, or output the kernel takes); 0 (default) never.
   */
  waitTimeout?: number;
  /** 'native' (the epoll addon), 'portable' (node:net), or 'auto' (default): native where it loads. */
  backend?: BackendKind;
  /** Aborting it shuts the server down, like Action.Shutdown. */
  signal?: AbortSignal;
  /** TCP_NODELAY on accepted connections (default true). */
  tcpNoDelay?: boolean;
  /**
   * On listeners with `?proxy=true`: how many ms a new connection has to send its complete PROXY
   * protocol header before it is closed and reported as a ProxyProtocolError 'timeout' (default 5000).
   */
  proxyHeaderTimeout?: number;
  /** Receives errors no connection or caller can take, such as a throwing `closed` or accept failures (default: console.error). */
  onError?: (err: Error) => void;
  /** Queued output per connection above which reading pauses and `c.write()` returns false (default 64 KiB). */
  highWaterMark?: number;
  /** Queued output at which reading resumes and `drained` fires (default a quarter of highWaterMark). */
  lowWaterMark?: number;
  /** Queued output past which a connection is closed with OutputLimitError (default Infinity). */
  maxOutputBytes?: number;
  /**
   * Unconsumed input per connection past which it is closed with InputLimitError
   * (ERR_GEVENT_INPUT_LIMIT): the bound on a message a `data` handler waits for in full (default
   * 64 MiB; Infinity lifts it).
   */
  maxInputBytes?: number;
  /** Open connections past which new ones are closed at once, firing `dropped` (default Infinity; split evenly over loops). */
  maxConnections?: number;
  /** Keep a connection writable after the peer's FIN and fire `end`, instead of closing it (default false). */
  allowHalfOpen?: boolean;
  /** On shutdown, stop accepting and give connections this many ms to finish writing before closing them (default 0: at once). */
  grace?: number;
  /**
   * After Action.Close or a handler's error: half-close once the output is written, read and drop
   * input, and close when the peer's FIN comes or after this many ms (default 2000); 0 closes
   * right after the output is written, which lets unread input turn the close into a RST.
   */
  linger?: number;
  /**
   * Any structured-clonable value, given to every loop's `init` (cloned for each; a
   * SharedArrayBuffer in it is shared, not copied): shared state for a server on several loops.
   */
  workerData?: unknown;
  /**
   * The server side of every `tls://`, `tls4://` and `tls6://` address: key and certificate (PEM),
   * SNI certificates, ALPN, client certificates, versions, ciphers, session tickets (see TlsOptions).
   * Needed when an address is TLS, refused when none is. A key that does not match its
   * certificate, or a PEM OpenSSL cannot read, rejects listen() with TlsConfigError.
   */
  tls?: TlsOptions;
}

/** Every key ServeOptions has: any other is refused, naming it (a misspelt option must not be ignored). */
const kServeOptionKeys: ReadonlySet<string> = new Set([
  'waitTimeout',
  'backend',
  'signal',
  'tcpNoDelay',
  'proxyHeaderTimeout',
  'onError',
  'highWaterMark',
  'lowWaterMark',
  'maxOutputBytes',
  'maxInputBytes',
  'maxConnections',
  'allowHalfOpen',
  'grace',
  'linger',
  'workerData',
  'tls',
]);

/** Every member an Events object may have. */
const kEventKeys: ReadonlySet<string> = new Set([
  'numLoops',
  'loadBalance',
  'init',
  'serving',
  'opened',
  'data',
  'closed',
  'end',
  'drained',
  'dropped',
  'preWrite',
  'tick',
  'message',
]);

/**
 * The most loops a server runs: each is a worker thread with a V8 heap of its own (about 10 MiB
 * before it serves anything), and loops beyond a few per core only add switching. 16 per CPU,
 * and never more than 1024, whatever the machine.
 */
function maxLoops(): number {
  return Math.min(1024, 16 * availableParallelism());
}

/** The longest delay a timer takes (setTimeout's limit, about 24.8 days). */
const kMaxTimerMs = 2 ** 31 - 1;

/** Checks an optional numeric option: absent, or a number >= min (Infinity allowed where `infinite`). */
function numberOption(name: string, value: unknown, min: number, infinite: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < min ||
    (!infinite && !Number.isFinite(value)) ||
    (Number.isFinite(value) && !Number.isInteger(value))
  ) {
    throw new InvalidArgumentError(`options.${name}`, value, `an integer >= ${min}${infinite ? ' or Infinity' : ''}`);
  }
  return value;
}

/**
 * Serves `events` on every address until the server shuts down: listen(), then the server's
 * `closed`. The promise resolves once every connection has closed and every loop has stopped; it
 * rejects when an address is bad or cannot be bound (the error names it), or when `init`,
 * `serving` or `tick` throws.
 */
export async function serve(
  events: Events | string | URL,
  idleTimeout: number | ServeOptions,
  ...addrs: string[]
): Promise<void> {
  const server = await listen(events, idleTimeout, ...addrs);
  await server.closed;
}

/**
 * Starts a server and resolves with its handle once every address is bound, every loop's `init`
 * has run and `serving` has returned. Rejects as serve() does: a bad or unbindable address (the
 * error names it), a bad option, `init` or `serving` throwing.
 *
 * `events` is an Events object, or the path or URL of a module whose default export is one. Several
 * loops (numLoops > 1) run on worker threads, which cannot receive functions: they need the module
 * form, and each loop imports the module for itself. `idleTimeout` is the server's idle timeout in
 * ms (the seed's waitTimeout), or a ServeOptions object. `addrs` may be empty: the loops then run
 * with no listener (ticks and messages today; outbound connections once they exist).
 */
export async function listen(
  events: Events | string | URL,
  idleTimeout: number | ServeOptions,
  ...addrs: string[]
): Promise<Server> {
  let eventsModule: string | null = null;
  if (typeof events === 'string' || events instanceof URL) {
    eventsModule = moduleHref(events);
    events = await importEvents(eventsModule);
  }
  if (events === null || typeof events !== 'object')
    throw new InvalidArgumentError('events', events, 'an Events object, or a module path or URL');
  const o: ServeOptions = typeof idleTimeout === 'number' ? { waitTimeout: idleTimeout } : (idleTimeout ?? {});
  if (typeof o !== 'object')
    throw new InvalidArgumentError('waitTimeout', idleTimeout, 'a number of milliseconds or a ServeOptions object');
  for (const key of Object.keys(o)) {
    if (!kServeOptionKeys.has(key))
      throw new InvalidArgumentError(
        `options.${key}`,
        (o as Record<string, unknown>)[key],
        `a known option (${[...kServeOptionKeys].join(', ')}); ${JSON.stringify(key)} is none`,
      );
  }
  checkEventKeys(events);
  let workerData: unknown;
  if (o.workerData !== undefined) {
    try {
      workerData = structuredClone(o.workerData);
    } catch (err) {
      throw new InvalidArgumentError('options.workerData', o.workerData, 'a structured-clonable value', { cause: err });
    }
    workerData = o.workerData;
  }
  const idleTimeoutMs = o.waitTimeout;
  if (
    idleTimeoutMs !== undefined &&
    (typeof idleTimeoutMs !== 'number' || !Number.isFinite(idleTimeoutMs) || idleTimeoutMs < 0)
  ) {
    throw new InvalidArgumentError('waitTimeout', idleTimeoutMs, 'a finite number of milliseconds >= 0');
  }
  const backend = o.backend;
  if (backend !== undefined && backend !== 'native' && backend !== 'portable' && backend !== 'auto') {
    throw new InvalidArgumentError('options.backend', backend, "'native', 'portable' or 'auto'");
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new InvalidArgumentError('options.signal', o.signal, 'an AbortSignal');
  if (o.tcpNoDelay !== undefined && typeof o.tcpNoDelay !== 'boolean')
    throw new InvalidArgumentError('options.tcpNoDelay', o.tcpNoDelay, 'a boolean');
  if (o.onError !== undefined && typeof o.onError !== 'function')
    throw new InvalidArgumentError('options.onError', o.onError, 'a function');
  const highWaterMark = numberOption('highWaterMark', o.highWaterMark, 1, false);
  const lowWaterMark = numberOption('lowWaterMark', o.lowWaterMark, 0, false);
  const maxOutputBytes = numberOption('maxOutputBytes', o.maxOutputBytes, 1, true);
  const maxInputBytes = numberOption('maxInputBytes', o.maxInputBytes, 1, true);
  const maxConnections = numberOption('maxConnections', o.maxConnections, 1, true);
  const graceMs = numberOption('grace', o.grace, 0, false);
  const lingerMs = numberOption('linger', o.linger, 0, false);
  if (lingerMs !== undefined && lingerMs > kMaxTimerMs)
    throw new InvalidArgumentError('options.linger', lingerMs, `an integer from 0 to ${kMaxTimerMs}`);
  const proxyHeaderTimeoutMs = numberOption('proxyHeaderTimeout', o.proxyHeaderTimeout, 1, false);
  if (proxyHeaderTimeoutMs !== undefined && proxyHeaderTimeoutMs > kMaxTimerMs)
    throw new InvalidArgumentError(
      'options.proxyHeaderTimeout',
      proxyHeaderTimeoutMs,
      `an integer from 1 to ${kMaxTimerMs}`,
    );
  if (o.allowHalfOpen !== undefined && typeof o.allowHalfOpen !== 'boolean')
    throw new InvalidArgumentError('options.allowHalfOpen', o.allowHalfOpen, 'a boolean');
  const numLoops = readEvent(events, 'numLoops');
  if (numLoops !== undefined && !Number.isInteger(numLoops))
    throw new InvalidArgumentError('events.numLoops', numLoops, 'an integer');
  const loopCap = maxLoops();
  if (numLoops !== undefined && numLoops > loopCap) {
    throw new InvalidArgumentError(
      'events.numLoops',
      numLoops,
      `at most ${loopCap} (16 per CPU, 1024 at most), or negative for one loop per CPU`,
    );
  }
  const loadBalance = readEvent(events, 'loadBalance');
  if (
    loadBalance !== undefined &&
    loadBalance !== LoadBalance.Random &&
    loadBalance !== LoadBalance.RoundRobin &&
    loadBalance !== LoadBalance.LeastConnections
  ) {
    throw new InvalidArgumentError(
      'events.loadBalance',
      loadBalance,
      'LoadBalance.Random, RoundRobin or LeastConnections',
    );
  }
  for (const name of [
    'init',
    'serving',
    'opened',
    'closed',
    'preWrite',
    'data',
    'tick',
    'end',
    'drained',
    'dropped',
    'message',
  ] as const) {
    const fn = readEvent(events, name);
    if (fn !== undefined && typeof fn !== 'function')
      throw new InvalidArgumentError(`events.${name}`, fn, 'a function');
  }
  const opts = resolveOptions({
    idleTimeoutMs,
    highWaterMark,
    lowWaterMark,
    maxOutputBytes,
    maxInputBytes,
    maxConnections,
    allowHalfOpen: o.allowHalfOpen,
    lingerMs,
    graceMs,
    backend,
    tcpNoDelay: o.tcpNoDelay,
    proxyHeaderTimeoutMs,
    numLoops,
    loadBalance,
    signal: o.signal,
    onError: o.onError,
    eventsModule,
    workerData,
  });
  const tuning = opts.tuning;
  if (tuning.lowWaterMark > tuning.highWaterMark) {
    throw new InvalidArgumentError(
      'options.lowWaterMark',
      tuning.lowWaterMark,
      `at most highWaterMark (${tuning.highWaterMark})`,
    );
  }
  const specs: ListenSpec[] = addrs.map((a, i) => parseAddress(a, i));
  const tlsSpec = specs.find((s) => s.tls);
  if (tlsSpec !== undefined && o.tls === undefined)
    throw new InvalidArgumentError('options.tls', undefined, `given for ${tlsSpec.text} (at least { key, cert })`);
  if (tlsSpec === undefined && o.tls !== undefined)
    throw new InvalidArgumentError('options.tls', o.tls, 'absent: no address is tls://, tls4:// or tls6://');
  return startEngine(events, { ...opts, tls: o.tls === undefined ? null : checkServerTls(o.tls) }, specs);
}

/** Reads one member of the events object; a getter (or Proxy trap) that throws is refused, naming the member. */
function readEvent<K extends keyof Events>(events: Events, name: K): Events[K] {
  try {
    return events[name];
  } catch (err) {
    throw new InvalidArgumentError(`events.${name}`, err, `a readable property (reading it threw: ${errorText(err)})`, {
      cause: err,
    });
  }
}

/** Refuses an own enumerable member of `events` that no Events member is called (a misspelt callback must not be ignored). */
function checkEventKeys(events: Events): void {
  let keys: string[];
  try {
    keys = Object.keys(events);
  } catch (err) {
    throw new InvalidArgumentError('events', events, 'an object whose keys can be listed', { cause: err });
  }
  for (const key of keys) {
    if (kEventKeys.has(key)) continue;
    throw new InvalidArgumentError(
      `events.${key}`,
      readEvent(events, key as keyof Events),
      `a known member (${[...kEventKeys].join(', ')}); ${JSON.stringify(key)} is none. Keep application state in module scope, a closure or c.context`,
    );
  }
}

/** A module specifier as an absolute URL: URLs and file: strings as they are, paths from the cwd. */
function moduleHref(spec: string | URL): string {
  if (spec instanceof URL) return spec.href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^[a-z]:[\\/]/i.test(spec)) return spec;
  return pathToFileURL(resolvePath(spec)).href;
}

async function importEvents(href: string): Promise<Events> {
  let mod: { default?: unknown };
  try {
    mod = (await import(href)) as { default?: unknown };
  } catch (err) {
    throw new InvalidArgumentError('the events module', href, `an importable module (${(err as Error).message})`);
  }
  if (mod.default === null || typeof mod.default !== 'object') {
    throw new InvalidArgumentError(`the default export of ${href}`, mod.default, 'an Events object');
  }
  return mod.default as Events;
}
