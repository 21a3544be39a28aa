/**
 * serve(): validates what the user passed, then hands it to the engine.
 */
import { availableParallelism } from 'node:os';
import { parseAddress, type ListenSpec } from './addr.js';
import type { BackendKind } from './backend/select.js';
import { runEngine } from './engine/engine.js';
import { BadAddressError, InvalidArgumentError } from './errors.js';
import type { Events } from './events.js';

/** The second argument of serve() in its long form. */
export interface ServeOptions {
  /** Close a connection after this many ms without incoming data; 0 (default) never. */
  waitTimeout?: number;
  /** 'native' (the epoll addon), 'portable' (node:net), or 'auto' (default): native where it loads. */
  backend?: BackendKind;
  /** Aborting it shuts the server down, like Action.Shutdown. */
  signal?: AbortSignal;
  /** TCP_NODELAY on accepted connections (default true). */
  tcpNoDelay?: boolean;
  /** Receives errors no connection or caller can take, such as a throwing `closed` (default: console.error). */
  onError?: (err: Error) => void;
}

/**
 * Serves `events` on every address until the server shuts down. The promise resolves once every
 * connection has closed and every loop has stopped; it rejects when an address is bad or cannot be
 * bound (the error names it), or when `serving` or `tick` throws.
 */
export async function serve(events: Events, waitTimeout: number | ServeOptions, ...addrs: string[]): Promise<void> {
  if (events === null || typeof events !== 'object') throw new InvalidArgumentError('events', events, 'an Events object');
  const o: ServeOptions = typeof waitTimeout === 'number' ? { waitTimeout } : waitTimeout ?? {};
  if (typeof o !== 'object') throw new InvalidArgumentError('waitTimeout', waitTimeout, 'a number of milliseconds or a ServeOptions object');
  const waitTimeoutMs = o.waitTimeout ?? 0;
  if (typeof waitTimeoutMs !== 'number' || !Number.isFinite(waitTimeoutMs) || waitTimeoutMs < 0) {
    throw new InvalidArgumentError('waitTimeout', waitTimeoutMs, 'a finite number of milliseconds >= 0');
  }
  const backend = o.backend ?? 'auto';
  if (backend !== 'native' && backend !== 'portable' && backend !== 'auto') {
    throw new InvalidArgumentError('options.backend', backend, "'native', 'portable' or 'auto'");
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new InvalidArgumentError('options.signal', o.signal, 'an AbortSignal');
  const tcpNoDelay = o.tcpNoDelay ?? true;
  if (typeof tcpNoDelay !== 'boolean') throw new InvalidArgumentError('options.tcpNoDelay', tcpNoDelay, 'a boolean');
  if (o.onError !== undefined && typeof o.onError !== 'function') throw new InvalidArgumentError('options.onError', o.onError, 'a function');
  const numLoops = events.numLoops ?? 0;
  if (!Number.isInteger(numLoops)) throw new InvalidArgumentError('events.numLoops', numLoops, 'an integer');
  for (const name of ['serving', 'opened', 'closed', 'preWrite', 'data', 'tick'] as const) {
    const fn = events[name];
    if (fn !== undefined && typeof fn !== 'function') throw new InvalidArgumentError(`events.${name}`, fn, 'a function');
  }
  if (addrs.length === 0) throw new BadAddressError('', 'serve() needs at least one address');
  const specs: ListenSpec[] = addrs.map((a, i) => parseAddress(a, i));
  return runEngine(events, {
    waitTimeoutMs,
    backend,
    tcpNoDelay,
    numLoops: numLoops < 0 ? availableParallelism() : Math.max(1, numLoops),
    signal: o.signal,
    onError: o.onError ?? defaultOnError,
  }, specs);
}

function defaultOnError(err: Error): void {
  console.error(err);
}
