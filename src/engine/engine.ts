/**
 * The engine: decides how many loops run and where, binds the addresses, fires `serving`, runs the
 * ticker, and turns a Shutdown (from any callback, an AbortSignal, or a failure) into an orderly
 * stop that settles serve()'s promise only after every connection has closed.
 */
import type { Addr, ListenSpec } from '../addr.js';
import type { BackendKind } from '../backend/select.js';
import { createBackend } from '../backend/select.js';
import { BackendUnavailableError, HandlerError } from '../errors.js';
import { Action, type Events, type Server } from '../events.js';
import { Loop } from '../loop/loop.js';
import { parseReply } from '../loop/reply.js';
import { Ticker } from './ticker.js';

/** Settings the engine runs with, already validated by serve(). */
export interface EngineOptions {
  readonly waitTimeoutMs: number;
  readonly backend: BackendKind;
  readonly tcpNoDelay: boolean;
  readonly numLoops: number;
  readonly signal: AbortSignal | undefined;
  readonly onError: (err: Error) => void;
}

/** Runs one server to completion: resolves when it has shut down, rejects on a failure to start. */
export async function runEngine(events: Events, opts: EngineOptions, specs: readonly ListenSpec[]): Promise<void> {
  if (opts.numLoops > 1) {
    throw new BackendUnavailableError(
      `numLoops ${opts.numLoops} needs several event loops on worker threads, which only the native backend runs; ` +
        `the ${opts.backend === 'auto' ? 'selected' : opts.backend} backend runs one loop (use numLoops 1)`,
    );
  }
  const backend = await createBackend(opts.backend, { tcpNoDelay: opts.tcpNoDelay });
  let requestShutdown!: (err?: Error) => void;
  const shutdown = new Promise<Error | undefined>((resolve) => {
    requestShutdown = (err?: Error) => resolve(err);
  });
  const loop = new Loop(backend, events, { waitTimeoutMs: opts.waitTimeoutMs, onError: opts.onError, requestShutdown });
  backend.start(loop);
  const addrs: Addr[] = [];
  try {
    for (const spec of specs) addrs.push(await backend.listen(spec));
  } catch (err) {
    await loop.stop();
    throw err;
  }
  loop.setListenerAddrs(addrs);

  const onAbort = (): void => requestShutdown();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) requestShutdown();

  const server: Server = Object.freeze({ addrs: Object.freeze(addrs), numLoops: 1, backend: backend.name });
  const ticker = new Ticker(events, requestShutdown);
  try {
    const p = parseReply('serving', events.serving?.call(events, server));
    if (p.action === Action.Shutdown) requestShutdown();
    else ticker.start();
  } catch (err) {
    requestShutdown(new HandlerError('serving', err));
  }

  const failure = await shutdown;
  ticker.stop();
  opts.signal?.removeEventListener('abort', onAbort);
  await loop.stop();
  if (failure) throw failure;
}
