/**
 * The engine: decides how many loops run and where, binds the addresses, fires `serving`, runs the
 * ticker, and turns a Shutdown (from any callback, an AbortSignal, or a failure) into an orderly
 * stop that settles serve()'s promise only after every connection has closed.
 */
import type { Addr, ListenSpec } from '../addr.js';
import { createBackend, type BackendKind } from '../backend/select.js';
import type { Events, LoadBalance, Server } from '../events.js';
import type { LoopTuning } from '../loop/tuning.js';
import { LoopHost } from './host.js';
import { runMultiLoop } from './multi.js';

/** Settings the engine runs with, already validated by serve(). */
export interface EngineOptions {
  readonly tuning: LoopTuning;
  /** How long a shutdown lets connections finish writing before closing them (0: at once). */
  readonly graceMs: number;
  readonly backend: BackendKind;
  readonly tcpNoDelay: boolean;
  readonly numLoops: number;
  readonly loadBalance: LoadBalance;
  readonly signal: AbortSignal | undefined;
  readonly onError: (err: Error) => void;
  /** The module the events came from, when they came from one (needed for several loops). */
  readonly eventsModule: string | null;
}

/** A promise of the first shutdown request, and the function that makes one. */
export function shutdownLatch(signal: AbortSignal | undefined): {
  requested: Promise<Error | undefined>;
  request: (err?: Error) => void;
  dispose: () => void;
} {
  let request!: (err?: Error) => void;
  const requested = new Promise<Error | undefined>((resolve) => {
    request = (err?: Error) => resolve(err);
  });
  const onAbort = (): void => request();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) request();
  return { requested, request, dispose: () => signal?.removeEventListener('abort', onAbort) };
}

/** Runs one server to completion: resolves when it has shut down, rejects on a failure to start. */
export async function runEngine(events: Events, opts: EngineOptions, specs: readonly ListenSpec[]): Promise<void> {
  if (opts.numLoops > 1) return runMultiLoop(events, opts, specs);
  const backend = await createBackend(opts.backend, { tcpNoDelay: opts.tcpNoDelay });
  const latch = shutdownLatch(opts.signal);
  const host = new LoopHost(backend, events, { ...opts.tuning, onError: opts.onError, requestShutdown: latch.request });
  let addrs: Addr[];
  try {
    addrs = await host.listenAll(specs);
  } catch (err) {
    latch.dispose();
    await host.stop();
    throw err;
  }
  host.loop.setListenerAddrs(addrs);
  const server: Server = Object.freeze({ addrs: Object.freeze(addrs), numLoops: 1, backend: backend.name });
  if (!opts.signal?.aborted) host.begin(server);
  const failure = await latch.requested;
  latch.dispose();
  await host.stop(failure ? 0 : opts.graceMs);
  if (failure) throw failure;
}
