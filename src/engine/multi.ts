/**
 * Several loops: one worker thread per loop, each with its own native epoll loop and libuv loop.
 * Without reuseport, this thread's acceptor owns the listeners and hands each accepted fd to the
 * loop the balancer picks; with reuseport, every loop has its own listener and the kernel spreads
 * connections. UDP without reuseport is served by loop 0.
 *
 * `serving` fires once (on loop 0), `tick` runs on loop 0, and a Shutdown from any loop stops them
 * all; serve() settles after every loop has closed its connections.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Addr, ListenSpec } from '../addr.js';
import type { NativeBackendHandler } from '../backend/native.js';
import { resolveBackendKind } from '../backend/select.js';
import { BackendUnavailableError, DialError, InvalidArgumentError, WorkerError } from '../errors.js';
import type { DialOptions, Events } from '../events.js';
import { checkDialOptions, parseDialTarget } from '../loop/dial.js';
import { AcceptErrorReporter, ProxyRefusalReporter } from '../loop/accept-errors.js';
import { Counter, newCounters } from '../loop/counters.js';
import type { LoopTuning } from '../loop/tuning.js';
import { Balancer } from './balancer.js';
import { LoopChannel } from './broadcast.js';
import type { EngineOptions } from './options.js';
import { shutdownLatch } from './shutdown.js';
import { ServerHandle } from './handle.js';
import {
  fromWireAddr,
  fromWireError,
  toWireAddr,
  type FromWorker,
  type ToWorker,
  type WireAddr,
  type WireDialOptions,
  type WorkerConfig,
} from './wire.js';

const kWorkerUrl = new URL('./worker.js', import.meta.url);

/** The engine's side of one loop worker. */
class LoopWorker {
  readonly index: number;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  readonly #worker: Worker;
  readonly #listens = new Map<number, { resolve: (a: WireAddr) => void; reject: (e: Error) => void }>();
  #nextListen = 1;
  readonly #dials = new Map<number, { resolve: () => void; reject: (e: Error) => void; target: string }>();
  #nextDial = 1;
  #stopped: Promise<void> | null = null;
  #onStopped: (() => void) | null = null;
  #gone = false;
  #onBegun: ((r: boolean | Error) => void) | null = null;

  constructor(config: WorkerConfig, request: (err?: Error, graceMs?: number) => void, onError: (err: Error) => void) {
    this.index = config.index;
    this.#worker = new Worker(kWorkerUrl, { workerData: config, name: `gevent-loop-${config.index}` });
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'ready':
          onReady();
          break;
        case 'begun':
          this.#onBegun?.(m.error ? fromWireError(m.error) : m.ok);
          break;
        case 'listened': {
          const p = this.#listens.get(m.id)!;
          this.#listens.delete(m.id);
          if (m.addr) p.resolve(m.addr);
          else p.reject(fromWireError(m.error!));
          break;
        }
        case 'dialed': {
          const p = this.#dials.get(m.id);
          if (p === undefined) break;
          this.#dials.delete(m.id);
          if (m.error) p.reject(fromWireError(m.error));
          else p.resolve();
          break;
        }
        case 'shutdown':
          request(m.error ? fromWireError(m.error) : undefined, m.graceMs);
          break;
        case 'error':
          onError(fromWireError(m.error));
          break;
        case 'stopped':
          this.#onStopped?.();
          break;
      }
    });
    this.#worker.on('error', (err) => {
      const e = new WorkerError(config.index, `failed: ${err.message}`, { cause: err });
      onFail(e);
      request(e);
    });
    this.#worker.once('exit', (code) => {
      this.#gone = true;
      this.#onStopped?.();
      for (const p of this.#listens.values()) p.reject(new WorkerError(config.index, 'exited'));
      this.#listens.clear();
      for (const p of this.#dials.values())
        p.reject(new DialError(p.target, 'ECANCELED', `ECANCELED (loop ${config.index} stopped)`));
      this.#dials.clear();
      if (this.#stopped === null) {
        const e = new WorkerError(config.index, `exited unexpectedly with code ${code}`);
        onFail(e);
        request(e);
      }
    });
  }

  get gone(): boolean {
    return this.#gone || this.#stopped !== null;
  }

  #post(m: ToWorker): void {
    if (!this.#gone) this.#worker.postMessage(m);
  }

  listen(spec: ListenSpec): Promise<WireAddr> {
    const id = this.#nextListen++;
    return new Promise((resolve, reject) => {
      this.#listens.set(id, { resolve, reject });
      this.#post({ t: 'listen', id, spec });
    });
  }

  /**
   * Tells the loop its listeners; it runs `init` (and loop 0 then `serving`). The promise says
   * whether it went on serving, or is the error `init` or `serving` failed with.
   */
  start(addrs: readonly Addr[], numLoops: number): Promise<boolean | Error> {
    const begun = new Promise<boolean | Error>((resolve) => (this.#onBegun = resolve));
    this.#post({ t: 'start', addrs: addrs.map(toWireAddr), numLoops });
    return Promise.race([begun, this.exited.then(() => false)]);
  }

  /** Lets a loop other than 0 serve its connections (after `serving` has returned on loop 0). */
  serve(): void {
    this.#post({ t: 'serve' });
  }

  /**
   * Dials `target` on this loop; resolves once it has opened there. Throws InvalidArgumentError
   * when `opts.context` cannot be cloned to the worker.
   */
  dial(target: string, opts: WireDialOptions, signal: AbortSignal | null): Promise<void> {
    if (this.gone) return Promise.reject(new DialError(target, 'ECANCELED', 'ECANCELED (the server is shutting down)'));
    const id = this.#nextDial++;
    const done = new Promise<void>((resolve, reject) => this.#dials.set(id, { resolve, reject, target }));
    try {
      this.#worker.postMessage({ t: 'dial', id, target, opts } satisfies ToWorker);
    } catch (err) {
      this.#dials.delete(id);
      return Promise.reject(
        new InvalidArgumentError('dial option context', opts.context, 'a structured-clonable value', { cause: err }),
      );
    }
    if (signal !== null) {
      const onAbort = (): void => this.#post({ t: 'undial', id });
      signal.addEventListener('abort', onAbort, { once: true });
      void done.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
    return done;
  }

  adopt(fd: number, listenerIndex: number, proxyProtocol: boolean): void {
    this.#post({ t: 'adopt', fd, listenerIndex, proxyProtocol });
  }

  /** Asks the loop to close everything (after `graceMs` for writes to finish); resolves when it has, and the thread is gone. */
  stop(graceMs = 0): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopped = new Promise<void>((resolve) => {
      this.#onStopped = resolve;
    }).then(() => this.exited);
    if (this.#gone) this.#onStopped!();
    else this.#post({ t: 'stop', graceMs });
    return this.#stopped;
  }
}

/** startEngine() for several loops: one worker thread per loop, and this thread's acceptor. */
export async function startMultiLoop(
  events: Events,
  opts: EngineOptions,
  specs: readonly ListenSpec[],
): Promise<ServerHandle> {
  const n = opts.numLoops;
  if (resolveBackendKind(opts.backend) !== 'native') {
    throw new BackendUnavailableError(
      `numLoops ${n} needs several event loops on worker threads, which only the native backend runs; ` +
        `the portable backend runs one loop (use numLoops 1, or build the native addon)`,
    );
  }
  if (opts.eventsModule === null) {
    throw new InvalidArgumentError(
      `events with numLoops ${n}`,
      events,
      'a module path or URL whose default export is the events object (each loop runs on its own thread and imports it)',
    );
  }
  const { NativeBackend } = await import('../backend/native.js');
  const counts = new Int32Array(new SharedArrayBuffer(4 * n));
  const balancer = new Balancer(opts.loadBalance, counts);
  const latch = shutdownLatch(opts.signal);
  const handOff = specs.filter((s) => handsOff(s)).map((s) => s.index);
  const loopCounters = Array.from({ length: n }, () => newCounters(true));
  const acceptorCounters = newCounters(true);
  const channelName = `gevent-server-${randomUUID()}`;
  const workers: LoopWorker[] = [];
  for (let i = 0; i < n; i++) {
    const config: WorkerConfig = {
      index: i,
      numLoops: n,
      eventsModule: opts.eventsModule,
      tuning: perLoopTuning(opts.tuning, n),
      tcpNoDelay: opts.tcpNoDelay,
      proxyHeaderTimeoutMs: opts.proxyHeaderTimeoutMs,
      counts,
      handOff,
      counters: loopCounters,
      acceptorCounters,
      channelName,
      workerData: opts.workerData,
    };
    workers.push(new LoopWorker(config, latch.request, opts.onError));
  }
  const acceptor = new NativeBackend({ tcpNoDelay: opts.tcpNoDelay, proxyHeaderTimeoutMs: opts.proxyHeaderTimeoutMs });
  const acceptErrors = new AcceptErrorReporter(opts.onError);
  // Whichever side reads a handed-off connection's PROXY header, a refusal made here is reported alike.
  const proxyRefusals = new ProxyRefusalReporter(opts.onError);
  const handler: NativeBackendHandler = {
    onAccepted(fd, listenerIndex, _remote, proxyProtocol) {
      const k = balancer.pick();
      const w = workers[k]!;
      if (w.gone) {
        NativeBackend.closeFd(fd);
        return;
      }
      balancer.assigned(k);
      w.adopt(fd, listenerIndex, proxyProtocol);
    },
    onOpen() {},
    onData() {},
    onEnd() {},
    onClose() {},
    onDatagram() {},
    onBatchEnd() {},
    onQueued() {},
    onAcceptError(listenerIndex, errno) {
      acceptorCounters[Counter.AcceptErrors]!++;
      acceptErrors.onAcceptError(listenerIndex, errno);
    },
    onProxyRefused(listenerIndex, reason, peer) {
      acceptorCounters[Counter.ProxyRefused]!++;
      proxyRefusals.onProxyRefused(listenerIndex, reason, peer);
    },
  };
  acceptor.start(handler);

  const stopAll = async (graceMs = 0): Promise<void> => {
    acceptErrors.stop();
    proxyRefusals.stop();
    await acceptor.stop();
    await Promise.all(workers.map((w) => w.stop(graceMs)));
  };
  const addrs: Addr[] = [];
  try {
    await Promise.all(workers.map((w) => w.ready));
    for (const spec of specs) {
      if (handsOff(spec)) {
        addrs.push(await acceptor.listen(spec, { handOff: true }));
      } else if (spec.network === 'udp' && !spec.reusePort) {
        addrs.push(fromWireAddr(await workers[0]!.listen(spec)));
      } else {
        const first = fromWireAddr(await workers[0]!.listen(spec));
        for (const w of workers.slice(1)) await w.listen({ ...spec, port: first.port });
        addrs.push(first);
      }
    }
  } catch (err) {
    latch.dispose();
    await stopAll();
    throw err;
  }
  acceptErrors.setListenerAddrs(addrs);
  proxyRefusals.setListenerAddrs(addrs);
  const channel = new LoopChannel(channelName, null);
  const closed = (async (): Promise<void> => {
    const { err, graceMs } = await latch.requested;
    latch.dispose();
    await stopAll(err ? 0 : (graceMs ?? opts.graceMs));
    channel.close();
    if (err) throw err;
  })();
  const handle = new ServerHandle({
    addrs,
    backend: 'native',
    counters: loopCounters,
    acceptorCounters,
    closed,
    shutdown: (graceMs) => {
      latch.request(undefined, graceMs);
      return closed.catch(() => {});
    },
    broadcast: (v) => channel.send(v),
    dial: (target, o) => dialOnSomeLoop(target, o),
  });
  /** Server.dial: checks here (naming the bad value), then dials on the loop the balancer picks. */
  async function dialOnSomeLoop(target: string, o: DialOptions | undefined): Promise<void> {
    const t = parseDialTarget(target);
    const checked = checkDialOptions(o, t);
    const wire: WireDialOptions = {};
    if (o?.context !== undefined) wire.context = o.context;
    if (o?.timeout !== undefined) wire.timeout = checked.timeoutMs;
    if (o?.localAddress !== undefined) wire.localAddress = checked.localAddress;
    if (o?.localPort !== undefined) wire.localPort = checked.localPort;
    if (checked.signal?.aborted)
      throw new DialError(t.text, 'ECANCELED', 'ECANCELED (aborted by its signal)', { cause: checked.signal.reason });
    return workers[balancer.pick()]!.dial(t.text, wire, checked.signal);
  }
  if (!opts.signal?.aborted) {
    const begun = await Promise.all(workers.map((w) => w.start(addrs, n)));
    const failed = begun.find((b): b is Error => b instanceof Error);
    if (failed) latch.request(failed);
    if (failed || !begun[0]) await closed;
    else for (const w of workers.slice(1)) w.serve();
  }
  return handle;
}

/** Each loop's share of the limits that are per server: maxConnections is split evenly (rounded up). */
function perLoopTuning(t: LoopTuning, n: number): LoopTuning {
  return t.maxConnections === Infinity ? t : { ...t, maxConnections: Math.ceil(t.maxConnections / n) };
}

/** Whether connections on this listener are accepted here and handed to a loop. */
function handsOff(spec: ListenSpec): boolean {
  return spec.network !== 'udp' && !(spec.reusePort && spec.network === 'tcp');
}
