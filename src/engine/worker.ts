/**
 * The body of one loop worker thread: imports the events module, hosts a native loop, listens
 * where the engine asks (reuseport and UDP listeners), adopts the connections the acceptor hands
 * it, and stops when told. Loop 0 also fires `serving` and runs the ticker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NativeBackend } from '../backend/native.js';
import { InvalidArgumentError } from '../errors.js';
import type { Events } from '../events.js';
import { LoopHost } from './host.js';
import { fromWireAddr, serverOf, toWireAddr, toWireError, type FromWorker, type ToWorker, type WorkerConfig } from './wire.js';

const config = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

const mod = (await import(config.eventsModule)) as { default?: unknown };
const events = mod.default as Events;
if (events === null || typeof events !== 'object') {
  throw new InvalidArgumentError(`the default export of ${config.eventsModule}`, events, 'an Events object');
}

const handOff = new Set(config.handOff);
const backend = new NativeBackend({ tcpNoDelay: config.tcpNoDelay });
let shutdownSent = false;
const host = new LoopHost(backend, events, {
  ...config.tuning,
  onError: (err) => post({ t: 'error', error: toWireError(err) }),
  requestShutdown: (err) => {
    if (shutdownSent) return;
    shutdownSent = true;
    post(err ? { t: 'shutdown', error: toWireError(err) } : { t: 'shutdown' });
  },
  onCount: (delta, listener) => {
    if (delta < 0) Atomics.sub(config.counts, config.index, 1);
    else if (!handOff.has(listener)) Atomics.add(config.counts, config.index, 1);
  },
});
let stopping = false;

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
      if (config.index === 0) post({ t: 'begun', ok: host.begin(serverOf(addrs, m.numLoops)) });
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
        backend.adopt(m.fd, m.listener);
      } catch (err) {
        NativeBackend.closeFd(m.fd);
        Atomics.sub(config.counts, config.index, 1);
        post({ t: 'error', error: toWireError(err) });
      }
      break;
    case 'stop':
      stopping = true;
      host.stop(m.graceMs).then(() => {
        post({ t: 'stopped' });
        port.close();
      });
      break;
  }
});
post({ t: 'ready' });
