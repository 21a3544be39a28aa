/**
 * The Server handle: what listen() resolves to and `serving` receives. It reads the loops' counter
 * arrays (src/loop/counters.ts) directly, shared memory where the loops run on worker threads, so
 * stats() and `connections` cost no message; shutdown() and broadcast() go through the engine.
 */
import type { Addr } from '../addr.js';
import type { DialOptions, LoopStats, Server, ServerStats } from '../events.js';
import { InvalidArgumentError } from '../errors.js';
import { Counter } from '../loop/counters.js';

/** What a handle needs from the engine that runs its server. */
export interface HandleCore {
  readonly addrs: readonly Addr[];
  readonly backend: 'native' | 'portable';
  /** One counter array per loop, by index. */
  readonly counters: readonly Float64Array[];
  /** accept() failures counted outside the loops (a multi-loop server's acceptor); null when none. */
  readonly acceptorCounters: Float64Array | null;
  /** Asks the server to stop; `graceMs` undefined for the server's own grace. Resolves when it has. */
  shutdown(graceMs: number | undefined): Promise<void>;
  /** Settles when the server has stopped. */
  readonly closed: Promise<void>;
  broadcast(value: unknown): void;
  /** Server.dial(): opens an outbound connection on a loop; resolves once it has opened there. */
  dial(target: string, opts: DialOptions | undefined): Promise<void>;
}

/** The Server interface over a HandleCore. */
export class ServerHandle implements Server {
  readonly addrs: readonly Addr[];
  readonly numLoops: number;
  readonly backend: 'native' | 'portable';
  readonly closed: Promise<void>;
  readonly #core: HandleCore;
  #stopping: Promise<void> | null = null;

  constructor(core: HandleCore) {
    this.#core = core;
    this.addrs = Object.freeze([...core.addrs]);
    this.numLoops = core.counters.length;
    this.backend = core.backend;
    this.closed = core.closed;
    // A server whose handle is dropped unawaited must not turn its failure into an unhandled rejection.
    this.closed.catch(() => {});
  }

  get connections(): number {
    let n = 0;
    for (const c of this.#core.counters) n += c[Counter.Connections]!;
    return n;
  }

  stats(): ServerStats {
    const loops: LoopStats[] = [];
    let accepted = 0;
    let dialed = 0;
    let closed = 0;
    let dropped = 0;
    let bytesRead = 0;
    let bytesWritten = 0;
    let acceptErrors = this.#core.acceptorCounters?.[Counter.AcceptErrors] ?? 0;
    let proxyRefused = this.#core.acceptorCounters?.[Counter.ProxyRefused] ?? 0;
    let tlsRefused = 0;
    for (const c of this.#core.counters) {
      const loop: LoopStats = {
        connections: c[Counter.Connections]!,
        accepted: c[Counter.Accepted]!,
        dialed: c[Counter.Dialed]!,
        bytesRead: c[Counter.BytesRead]!,
        bytesWritten: c[Counter.BytesWritten]!,
      };
      loops.push(loop);
      accepted += loop.accepted;
      dialed += loop.dialed;
      closed += c[Counter.Closed]!;
      dropped += c[Counter.Dropped]!;
      bytesRead += loop.bytesRead;
      bytesWritten += loop.bytesWritten;
      acceptErrors += c[Counter.AcceptErrors]!;
      proxyRefused += c[Counter.ProxyRefused]!;
      tlsRefused += c[Counter.TlsRefused]!;
    }
    return {
      connections: this.connections,
      accepted,
      dialed,
      closed,
      dropped,
      bytesRead,
      bytesWritten,
      acceptErrors,
      proxyRefused,
      tlsRefused,
      loops,
    };
  }

  shutdown(opts?: { grace?: number }): Promise<void> {
    if (opts !== undefined && (opts === null || typeof opts !== 'object'))
      throw new InvalidArgumentError('shutdown() options', opts, 'an object such as { grace }');
    const grace = opts?.grace;
    if (grace !== undefined && (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0)) {
      throw new InvalidArgumentError('shutdown() grace', grace, 'an integer number of milliseconds >= 0');
    }
    this.#stopping ??= this.#core.shutdown(grace);
    return this.#stopping;
  }

  broadcast(value: unknown): void {
    this.#core.broadcast(value);
  }

  dial(target: string, opts?: DialOptions): Promise<void> {
    return this.#core.dial(target, opts);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
