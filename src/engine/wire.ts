/**
 * What crosses between the engine (main thread) and its loop workers: plain, structured-clone-safe
 * messages. Errors travel as their name, code, message and stack, and are rebuilt on arrival.
 */
import { Addr, type ListenSpec, type Network } from '../addr.js';
import * as errors from '../errors.js';
import type { LoopTuning } from '../loop/tuning.js';

export interface WireAddr {
  network: Network;
  host: string;
  port: number;
  path: string;
}

export interface WireError {
  name: string;
  code: string | undefined;
  message: string;
  stack: string | undefined;
  /** The error's own string, number and boolean fields (address, errno, handler, ...). */
  fields: Record<string, string | number | boolean>;
  cause?: WireError;
}

/** DialOptions as they cross to a worker: without the signal (the engine sends `undial` instead). */
export interface WireDialOptions {
  context?: unknown;
  timeout?: number;
  localAddress?: string;
  localPort?: number;
}

/** Engine → worker. */
export type ToWorker =
  | { t: 'listen'; id: number; spec: ListenSpec }
  | { t: 'start'; addrs: WireAddr[]; numLoops: number }
  | { t: 'serve' }
  | { t: 'adopt'; fd: number; listenerIndex: number; proxyProtocol: boolean }
  | { t: 'dial'; id: number; target: string; opts: WireDialOptions }
  | { t: 'undial'; id: number }
  | { t: 'stop'; graceMs: number };

/** Worker → engine. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'begun'; ok: boolean; error?: WireError }
  | { t: 'listened'; id: number; addr?: WireAddr; error?: WireError }
  | { t: 'dialed'; id: number; error?: WireError }
  | { t: 'shutdown'; error?: WireError; graceMs?: number }
  | { t: 'error'; error: WireError }
  | { t: 'stopped' };

/** What each worker is started with (its workerData). */
export interface WorkerConfig {
  index: number;
  numLoops: number;
  eventsModule: string;
  tuning: LoopTuning;
  tcpNoDelay: boolean;
  proxyHeaderTimeoutMs: number;
  /** One cell per loop: connections assigned to it (shared with the acceptor). */
  counts: Int32Array;
  /** Listener indexes whose connections the acceptor hands over (and counts). */
  handOff: number[];
  /** Every loop's counter array (shared memory), by index: this loop writes its own, Server.stats() reads all. */
  counters: Float64Array[];
  /** The acceptor's counters (shared memory), for Server.stats() on loop 0. */
  acceptorCounters: Float64Array;
  /** The BroadcastChannel that Server.broadcast() uses. */
  channelName: string;
  /** ServeOptions.workerData (cloned on its way to the worker). */
  workerData: unknown;
}

export function toWireAddr(a: Addr): WireAddr {
  return { network: a.network, host: a.host, port: a.port, path: a.path };
}

export function fromWireAddr(a: WireAddr): Addr {
  return new Addr(a.network, a.host, a.port, a.path);
}

export function toWireError(err: unknown, depth = 0): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
  }
  const w: WireError = {
    name: e.name,
    code: (e as { code?: string }).code,
    message: e.message,
    stack: e.stack,
    fields,
  };
  if (e.cause !== undefined && depth < 4) w.cause = toWireError(e.cause, depth + 1);
  return w;
}

/** The library's error classes by name, so an error that crossed a thread keeps its class. */
const kErrorClasses: Record<string, { prototype: Error }> = Object.fromEntries(
  Object.entries(errors).filter(
    ([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error,
  ),
) as Record<string, { prototype: Error }>;

/** Rebuilds an error that crossed a thread: same class (for the library's own), name, message, fields, stack and cause. */
export function fromWireError(w: WireError): Error {
  const ctor = kErrorClasses[w.name];
  const e: Error = ctor ? Object.create(ctor.prototype) : new Error();
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  Object.assign(e, w.fields);
  if (w.stack) Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  if (w.cause) Object.defineProperty(e, 'cause', { value: fromWireError(w.cause), writable: true, configurable: true });
  return e;
}
