/**
 * What crosses between the engine (main thread) and its loop workers: plain, structured-clone-safe
 * messages. Errors travel as their name, code, message and stack, and are rebuilt on arrival.
 */
import { Addr, type ListenSpec, type Network } from '../addr.js';
import { GeventError } from '../errors.js';
import type { Server } from '../events.js';

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
}

/** Engine → worker. */
export type ToWorker =
  | { t: 'listen'; id: number; spec: ListenSpec }
  | { t: 'start'; addrs: WireAddr[]; numLoops: number }
  | { t: 'adopt'; fd: number; listener: number }
  | { t: 'stop' };

/** Worker → engine. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'listened'; id: number; addr?: WireAddr; error?: WireError }
  | { t: 'shutdown'; error?: WireError }
  | { t: 'error'; error: WireError }
  | { t: 'stopped' };

/** What each worker is started with (its workerData). */
export interface WorkerConfig {
  index: number;
  numLoops: number;
  eventsModule: string;
  waitTimeoutMs: number;
  tcpNoDelay: boolean;
  /** One cell per loop: connections assigned to it (shared with the acceptor). */
  counts: Int32Array;
  /** Listener indexes whose connections the acceptor hands over (and counts). */
  handOff: number[];
}

export function toWireAddr(a: Addr): WireAddr {
  return { network: a.network, host: a.host, port: a.port, path: a.path };
}

export function fromWireAddr(a: WireAddr): Addr {
  return new Addr(a.network, a.host, a.port, a.path);
}

export function toWireError(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, code: (e as { code?: string }).code, message: e.message, stack: e.stack };
}

/** Rebuilds an error that crossed a thread; it keeps its name, code, message and stack. */
export function fromWireError(w: WireError): Error {
  const message = w.message.startsWith('gevent: ') ? w.message.slice(8) : w.message;
  const e = w.code ? new GeventError(w.code, message) : new Error(w.message);
  e.name = w.name;
  if (w.stack) e.stack = w.stack;
  return e;
}

export function serverOf(addrs: readonly Addr[], numLoops: number): Server {
  return Object.freeze({ addrs: Object.freeze([...addrs]), numLoops, backend: 'native' as const });
}
