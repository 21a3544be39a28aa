/**
 * The settings a server runs with, and the one place their defaults live: serve() validates what
 * the user gave and calls resolveOptions(); the engine, the loops and the workers receive the
 * resolved values and apply no default of their own.
 */
import { availableParallelism } from 'node:os';
import type { BackendKind } from '../backend/select.js';
import { LoadBalance, type Events } from '../events.js';
import type { LoopTuning } from '../loop/tuning.js';
import type { ServerTlsConfig } from '../tls-options.js';

/** The default high-water mark of a connection's queued output. */
const kHighWaterMarkBytes = 64 * 1024;

/**
 * The default bound on a connection's unconsumed input. A handler that waits for a whole message
 * keeps it in the connection's RingBuffer, so this is the largest message a server takes unless
 * told otherwise. 64 MiB is above what the usual protocols accept by default (node:http's 16 KiB
 * head, nginx's 1 MiB body, ws's 100 MiB payload being the outlier) and keeps one peer sending a
 * frame that never completes far from the typed-array limit that used to end the process; a
 * server that takes larger messages raises it, or sets Infinity.
 */
const kMaxInputBytes = 64 * 1024 * 1024;

/**
 * The default linger deadline: Apache's lingering close gives up after 2 s without input
 * (SECONDS_TO_LINGER), nginx waits 5 s between reads (lingering_timeout). Ours is one deadline
 * for the whole linger, and a well-behaved peer answers our FIN within a round trip, so 2 s is
 * ample for a reply to be read on any route while keeping a peer that never closes from holding
 * its fd (and a maxConnections place) for long.
 */
const kLingerMs = 2000;

/**
 * The default time a connection on a PROXY protocol listener (`?proxy=true`) has to send its whole
 * header. The spec asks receivers to wait at least 3 s; HAProxy sends the header with the first
 * segment, so only a stalled or hostile peer ever comes near this.
 */
const kProxyHeaderTimeoutMs = 5000;

/** Settings the engine runs with: validated by serve(), defaults applied by resolveOptions(). */
export interface EngineOptions {
  readonly tuning: LoopTuning;
  /** How long a shutdown lets connections finish writing before closing them (0: at once). */
  readonly graceMs: number;
  readonly backend: BackendKind;
  readonly tcpNoDelay: boolean;
  /** BackendOptions.proxyHeaderTimeoutMs: the deadline of a PROXY protocol header (ms). */
  readonly proxyHeaderTimeoutMs: number;
  /** How many loops run: 1 on this thread, more on worker threads. */
  readonly numLoops: number;
  readonly loadBalance: LoadBalance;
  readonly signal: AbortSignal | undefined;
  readonly onError: (err: Error) => void;
  /** The module the events came from, when they came from one (needed for several loops). */
  readonly eventsModule: string | null;
  /** ServeOptions.workerData: given to every loop's `init`, cloned. */
  readonly workerData: unknown;
  /** ServeOptions.tls, checked (strings and byte arrays: structured-clonable); null without TLS listeners. */
  readonly tls: ServerTlsConfig | null;
}

/** What serve() was given, validated; undefined where the user gave nothing. */
export interface GivenOptions extends Partial<LoopTuning> {
  readonly graceMs?: number | undefined;
  readonly backend?: BackendKind | undefined;
  readonly tcpNoDelay?: boolean | undefined;
  readonly proxyHeaderTimeoutMs?: number | undefined;
  /** Events.numLoops: 0 or 1 one loop, negative one per CPU. */
  readonly numLoops?: Events['numLoops'];
  readonly loadBalance?: LoadBalance | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onError?: ((err: Error) => void) | undefined;
  readonly eventsModule: string | null;
  readonly workerData: unknown;
  readonly tls?: ServerTlsConfig | null | undefined;
}

/** A loop's tuning with every default applied to what is given. */
export function loopTuning(given: Partial<LoopTuning>): LoopTuning {
  const highWaterMark = given.highWaterMark ?? kHighWaterMarkBytes;
  return {
    idleTimeoutMs: given.idleTimeoutMs ?? 0,
    highWaterMark,
    lowWaterMark: given.lowWaterMark ?? Math.floor(highWaterMark / 4),
    maxOutputBytes: given.maxOutputBytes ?? Infinity,
    maxInputBytes: given.maxInputBytes ?? kMaxInputBytes,
    maxConnections: given.maxConnections ?? Infinity,
    allowHalfOpen: given.allowHalfOpen ?? false,
    lingerMs: given.lingerMs ?? kLingerMs,
  };
}

/** The engine's settings: what was given, and the default of everything that was not. */
export function resolveOptions(given: GivenOptions): EngineOptions {
  const numLoops = given.numLoops ?? 0;
  return {
    tuning: loopTuning(given),
    graceMs: given.graceMs ?? 0,
    backend: given.backend ?? 'auto',
    tcpNoDelay: given.tcpNoDelay ?? true,
    proxyHeaderTimeoutMs: given.proxyHeaderTimeoutMs ?? kProxyHeaderTimeoutMs,
    numLoops: numLoops < 0 ? availableParallelism() : Math.max(1, numLoops),
    loadBalance: given.loadBalance ?? LoadBalance.Random,
    signal: given.signal,
    onError: given.onError ?? defaultOnError,
    eventsModule: given.eventsModule,
    workerData: given.workerData,
    tls: given.tls ?? null,
  };
}

function defaultOnError(err: Error): void {
  console.error(err);
}
