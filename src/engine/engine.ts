/**
 * The engine: decides how many loops run and where, binds the addresses, fires `init` and
 * `serving`, runs the ticker, and turns a Shutdown (from any callback, Server.shutdown(), an
 * AbortSignal, or a failure) into an orderly stop that settles the server's `closed` only after
 * every connection has closed.
 */
import type { Addr, ListenSpec } from '../addr.js';
import { backendKindFor, createBackend } from '../backend/select.js';
import { BackendUnavailableError } from '../errors.js';
import type { Events } from '../events.js';
import { newCounters } from '../loop/counters.js';
import { LoopChannel } from './broadcast.js';
import { ServerHandle } from './handle.js';
import { LoopHost } from './host.js';
import { startMultiLoop } from './multi.js';
import type { EngineOptions } from './options.js';
import { shutdownLatch } from './shutdown.js';

/**
 * Starts a server: binds every address, runs each loop's `init` and then `serving`, and resolves
 * with its handle. Rejects when an address cannot be bound or `init`/`serving` fails; a `serving`
 * that returns Shutdown resolves with a handle whose server has already stopped.
 */
export async function startEngine(
  events: Events,
  opts: EngineOptions,
  specs: readonly ListenSpec[],
): Promise<ServerHandle> {
  const tlsSpec = specs.find((s) => s.tls);
  if (opts.numLoops > 1 && tlsSpec !== undefined)
    throw new BackendUnavailableError(
      `numLoops ${opts.numLoops} with ${tlsSpec.text}: TLS servers run one loop for now (use numLoops 1)`,
    );
  if (opts.numLoops > 1) return startMultiLoop(events, opts, specs);
  const backend = await createBackend(backendKindFor(opts.backend, specs, opts.tls), {
    tcpNoDelay: opts.tcpNoDelay,
    proxyHeaderTimeoutMs: opts.proxyHeaderTimeoutMs,
    tls: opts.tls,
  });
  const latch = shutdownLatch(opts.signal);
  const counters = newCounters(false);
  const host = new LoopHost(backend, events, {
    ...opts.tuning,
    loopIndex: 0,
    counters,
    onError: opts.onError,
    requestShutdown: latch.request,
  });
  const channel = new LoopChannel(null, (v) => host.deliver(v));
  const stop = async (): Promise<void> => {
    const { err, graceMs } = await latch.requested;
    latch.dispose();
    await host.stop(err ? 0 : (graceMs ?? opts.graceMs));
    channel.close();
    if (err) throw err;
  };
  let addrs: Addr[];
  try {
    addrs = await host.listenAll(specs);
    await host.init({
      loopIndex: 0,
      numLoops: 1,
      workerData: cloneWorkerData(opts.workerData),
      broadcast: (v) => channel.send(v),
    });
  } catch (err) {
    latch.request(err as Error);
    await stop().catch(() => {});
    throw err;
  }
  host.loop.setListenerAddrs(addrs);
  const closed = stop();
  const handle = new ServerHandle({
    addrs,
    backend: backend.name,
    counters: [counters],
    acceptorCounters: null,
    closed,
    shutdown: (graceMs) => {
      latch.request(undefined, graceMs);
      return closed.catch(() => {});
    },
    broadcast: (v) => channel.send(v),
    dial: (target, o) => host.loop.dial(target, o).then(() => undefined),
  });
  if (!opts.signal?.aborted && !host.begin(handle)) await closed;
  return handle;
}

/** ServeOptions.workerData as a loop gets it: a structured clone (a SharedArrayBuffer stays shared), as a worker's copy would be. */
function cloneWorkerData(v: unknown): unknown {
  return v === undefined ? undefined : structuredClone(v);
}
