/**
 * The body of one loop worker thread: imports the events module, hosts a native loop, listens
 * where the engine asks (reuseport and UDP listeners), adopts the connections the acceptor hands
 * it, and stops when told. Loop 0 also fires `serving` and runs the ticker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { originIsDial, originListener } from '../backend/backend.js';
import { NativeBackend } from '../backend/native.js';
import { InvalidArgumentError } from '../errors.js';
import type { Events } from '../events.js';
import { LoopHost } from './host.js';
import type { Addr } from '../addr.js';
import { LoopChannel } from './broadcast.js';
import { ServerHandle } from './handle.js';
import { fromWireAddr, toWireAddr, toWireError, type FromWorker, type ToWorker, type WorkerConfig } from './wire.js';

const config = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

const mod = (await import(config.eventsModule)) as { default?: unknown };
const events = mod.default as Events;
if (events === null || typeof events !== 'object') {
  throw new InvalidArgumentError(`the default export of ${config.eventsModule}`, events, 'an Events object');
}

const handOff = new Set(config.handOff);
const backend = new NativeBackend({ tcpNoDelay: config.tcpNoDelay, proxyHeaderTimeoutMs: config.proxyHeaderTimeoutMs });
let shutdownSent = false;
const requestShutdown = (err?: Error, graceMs?: number): void => {
  if (shutdownSent) return;
  shutdownSent = true;
  post({ t: 'shutdown', error: err ? toWireError(err) : undefined, graceMs });
};
let onStopped!: () => void;
const stopped = new Promise<void>((resolve) => (onStopped = resolve));
const host = new LoopHost(backend, events, {
  ...config.tuning,
  loopIndex: config.index,
  counters: config.counters[config.index]!,
  onError: (err) => post({ t: 'error', error: toWireError(err) }),
  requestShutdown,
  // The acceptor counts the connections it hands over; this loop counts the rest (reuseport
  // listeners', dialled ones) as they open, and every one as it closes.
  onCount: (delta, origin) => {
    if (delta < 0) Atomics.sub(config.counts, config.index, 1);
    else if (originIsDial(origin) || !handOff.has(originListener(origin))) Atomics.add(config.counts, config.index, 1);
  },
});
const channel = new LoopChannel(config.channelName, (v) => host.deliver(v));
let stopping = false;
/** Dials the engine asked for (Server.dial), by its id, until they settle: aborting one cancels it. */
const dials = new Map<number, AbortController>();

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'listen':
      backend.listen(m.spec).then(
        (addr) => post({ t: 'listened', id: m.id, addr: toWireAddr(addr) }),
        (err) => post({ t: 'listened', id: m.id, error: toWireError(err) }),
      );
      break;
    case 'start': {
      const addrs = m.addrs.map(fromWireAddr);
      host.loop.setListenerAddrs(addrs);
      backend.declareListeners(addrs);
      host
        .init({
          loopIndex: config.index,
          numLoops: m.numLoops,
          workerData: config.workerData,
          broadcast: (v) => channel.send(v),
        })
        .then(
          () => post({ t: 'begun', ok: config.index === 0 ? host.begin(serverHandle(addrs)) : true }),
          (err: unknown) => post({ t: 'begun', ok: false, error: toWireError(err) }),
        );
      break;
    }
    case 'serve':
      host.startServing();
      break;
    case 'adopt':
      // The acceptor counted this connection for the balancer when it handed it over: a
      // connection that is not adopted gives its count back.
      if (stopping) {
        NativeBackend.closeFd(m.fd);
        Atomics.sub(config.counts, config.index, 1);
        break;
      }
      try {
        backend.adopt(m.fd, m.listenerIndex, m.proxyProtocol);
      } catch (err) {
        NativeBackend.closeFd(m.fd);
        Atomics.sub(config.counts, config.index, 1);
        post({ t: 'error', error: toWireError(err) });
      }
      break;
    case 'dial': {
      const ac = new AbortController();
      dials.set(m.id, ac);
      host.loop.dial(m.target, { ...m.opts, signal: ac.signal }).then(
        () => {
          dials.delete(m.id);
          post({ t: 'dialed', id: m.id });
        },
        (err: unknown) => {
          dials.delete(m.id);
          post({ t: 'dialed', id: m.id, error: toWireError(err) });
        },
      );
      break;
    }
    case 'undial':
      dials.get(m.id)?.abort();
      break;
    case 'stop':
      stopping = true;
      host.stop(m.graceMs).then(() => {
        channel.close();
        onStopped();
        post({ t: 'stopped' });
        port.close();
      });
      break;
  }
});
/** The Server that `serving` gets on loop 0: counts read from shared memory, shutdown asked of the engine. */
function serverHandle(addrs: readonly Addr[]): ServerHandle {
  return new ServerHandle({
    addrs,
    backend: 'native',
    counters: config.counters,
    acceptorCounters: config.acceptorCounters,
    closed: stopped,
    shutdown: (graceMs) => {
      requestShutdown(undefined, graceMs);
      return stopped;
    },
    broadcast: (v) => channel.send(v),
    // This handle lives on loop 0's thread: it dials on loop 0, where `serving` runs.
    dial: (target, o) => host.loop.dial(target, o).then(() => undefined),
  });
}

post({ t: 'ready' });
