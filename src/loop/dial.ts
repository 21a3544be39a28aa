/**
 * Outbound connections: a dial's target and options, checked in TS, its host name resolved off the
 * loop, and the loop's pending dials until the backend reports them open or failed.
 *
 *   dial() ──check──▶ lookup ──▶ backend.dial ──▶ pending[id] ──onOpen──▶ the loop opens the Conn
 *                                                       │
 *                                     onClose / timeout / abort / stop ──▶ rejected, no `opened`
 *
 * Invariant: an id is in `pending` from backend.dial() until exactly one of onOpen, onClose, the
 * connect timeout, an abort or the loop's stop takes it out; the last three close it with
 * backend.close(id, false), and its later onClose (or onOpen) then finds nothing here.
 *
 * A `tls://` target takes the TLS members of DialOptions (checkDialTls) and stays pending through
 * its handshake; a handshake that fails rejects with TlsHandshakeError. Only a backend with TLS
 * (the portable one, for now) dials it: the native backend refuses with BackendUnavailableError.
 * Owned by one loop; used on that loop's thread only.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseAddress } from '../addr.js';
import { TlsHandshakeFailure, type Backend, type DialSpec } from '../backend/backend.js';
import {
  BackendUnavailableError,
  BadAddressError,
  DialError,
  InvalidArgumentError,
  TlsConfigError,
  TlsHandshakeError,
} from '../errors.js';
import { checkDialTls, kDialTlsKeys, type DialTlsConfig } from '../tls-options.js';
import type { Timer } from '../timingwheel/index.js';
import type { LoopTimers } from './timers.js';

/** The connect timeout when DialOptions.timeout is not given. */
export const kDefaultDialTimeoutMs = 10_000;

/** The longest connect timeout a timer can hold. */
const kMaxDialTimeoutMs = 2 ** 31 - 1;

const kDialOptionKeys = new Set(['context', 'timeout', 'localAddress', 'localPort', 'signal', ...kDialTlsKeys]);

/** A parsed dial target. */
export interface DialTarget {
  readonly text: string;
  readonly network: 'tcp' | 'udp' | 'unix';
  /** 4 or 6 for tcp4/udp4 and tcp6/udp6 (or a numeric host of that family); 0 for a host name, and unix. */
  readonly family: 0 | 4 | 6;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** A `tls://`, `tls4://` or `tls6://` target. */
  readonly tls?: boolean;
}

/** DialOptions, checked. */
export interface CheckedDialOptions {
  readonly context: unknown;
  readonly timeoutMs: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly signal: AbortSignal | null;
  /** The TLS options of a `tls://` target. */
  readonly tls?: DialTlsConfig;
}

/** Parses a dial target; throws InvalidArgumentError (not a string) or BadAddressError naming it. */
export function parseDialTarget(target: unknown): DialTarget {
  if (typeof target !== 'string')
    throw new InvalidArgumentError(
      'dial target',
      target,
      'a string such as "tcp://host:port", "udp://host:port" or "unix:///path"',
    );
  const spec = parseAddress(target);
  if (target.includes('?')) throw new BadAddressError(target, 'a dial target takes no options');
  if (spec.network === 'unix') return { text: target, network: 'unix', family: 0, host: '', port: 0, path: spec.path };
  if (spec.host === '') throw new BadAddressError(target, 'a dial target needs a host');
  if (spec.port === 0) throw new BadAddressError(target, 'a dial target needs a port from 1 to 65535');
  const numeric = isIP(spec.host);
  const family = spec.family !== 0 ? spec.family : numeric === 4 ? 4 : numeric === 6 ? 6 : 0;
  const t: DialTarget = { text: target, network: spec.network, family, host: spec.host, port: spec.port, path: '' };
  return spec.tls ? { ...t, tls: true } : t;
}

/** Checks DialOptions for `target`; throws InvalidArgumentError naming the bad option. */
export function checkDialOptions(opts: unknown, target: DialTarget): CheckedDialOptions {
  if (opts === undefined || opts === null) {
    const none = { context: undefined, timeoutMs: kDefaultDialTimeoutMs, localAddress: '', localPort: 0, signal: null };
    return target.tls === true ? { ...none, tls: checkDialTls({}, target.host, isIP(target.host) !== 0) } : none;
  }
  if (typeof opts !== 'object' || Array.isArray(opts))
    throw new InvalidArgumentError('dial options', opts, 'an object such as { timeout, context }');
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!kDialOptionKeys.has(key))
      throw new InvalidArgumentError(
        `dial option ${key}`,
        o[key],
        `a known option (${[...kDialOptionKeys].join(', ')}); ${JSON.stringify(key)} is none`,
      );
    if (target.tls !== true && kDialTlsKeys.includes(key))
      throw new InvalidArgumentError(`dial option ${key}`, o[key], `absent for ${target.text} (a tls:// target only)`);
  }
  let timeoutMs = kDefaultDialTimeoutMs;
  if (o.timeout !== undefined) {
    const t = o.timeout;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > kMaxDialTimeoutMs)
      throw new InvalidArgumentError(
        'dial option timeout',
        t,
        `a number of milliseconds > 0 and <= ${kMaxDialTimeoutMs}`,
      );
    timeoutMs = t;
  }
  let localAddress = '';
  if (o.localAddress !== undefined) {
    const a = o.localAddress;
    if (target.network === 'unix')
      throw new InvalidArgumentError('dial option localAddress', a, 'absent for a unix target (tcp and udp only)');
    if (typeof a !== 'string' || isIP(a) === 0)
      throw new InvalidArgumentError('dial option localAddress', a, 'a numeric IPv4 or IPv6 address');
    if (target.family !== 0 && isIP(a) !== target.family)
      throw new InvalidArgumentError(
        'dial option localAddress',
        a,
        `an IPv${target.family} address, as the target ${target.text} is`,
      );
    localAddress = a;
  }
  let localPort = 0;
  if (o.localPort !== undefined) {
    const p = o.localPort;
    if (target.network === 'unix')
      throw new InvalidArgumentError('dial option localPort', p, 'absent for a unix target (tcp and udp only)');
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 65535)
      throw new InvalidArgumentError('dial option localPort', p, 'an integer from 0 to 65535');
    localPort = p;
  }
  let signal: AbortSignal | null = null;
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal))
      throw new InvalidArgumentError('dial option signal', o.signal, 'an AbortSignal');
    signal = o.signal;
  }
  const checked = { context: o.context, timeoutMs, localAddress, localPort, signal };
  return target.tls === true ? { ...checked, tls: checkDialTls(o, target.host, isIP(target.host) !== 0) } : checked;
}

/** The errno name an error carries (its `code`, or a string `errno`), or `fallback`. */
export function errnoOf(err: unknown, fallback: string): string {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (e !== null && typeof e === 'object') {
    if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return e.code;
    if (typeof e.errno === 'string') return e.errno;
  }
  return fallback;
}

/** The DialSpec for the backend: the host resolved to a number (DialError when it does not resolve). */
export async function resolveDialSpec(t: DialTarget, o: CheckedDialOptions): Promise<DialSpec> {
  const localPort = o.localPort;
  if (t.network === 'unix')
    return { network: 'unix', family: 0, host: '', port: 0, path: t.path, localHost: '', localPort: 0 };
  let host = t.host;
  let family = isIP(host);
  if (family === 0) {
    const want = t.family !== 0 ? t.family : o.localAddress !== '' ? isIP(o.localAddress) : 0;
    try {
      const r = await lookup(host, { family: want });
      host = r.address;
      family = r.family;
    } catch (err) {
      const errno = errnoOf(err, 'ENOTFOUND');
      throw new DialError(t.text, errno, `lookup ${t.host}: ${errno}`, { cause: err });
    }
  }
  const spec: DialSpec = {
    network: t.network,
    family: family === 6 ? 6 : 4,
    host,
    port: t.port,
    path: '',
    localHost: o.localAddress,
    localPort,
  };
  return o.tls !== undefined ? { ...spec, tls: o.tls } : spec;
}

/** A dial the backend is connecting. */
export interface PendingDial {
  readonly target: string;
  readonly context: unknown;
  timer: Timer | null;
  signal: AbortSignal | null;
  onAbort: (() => void) | null;
  /** Resolves the dial's promise with what the loop made of the connection. */
  resolve(c: unknown): void;
  reject(err: Error): void;
}

/** A loop's pending dials. */
export class Dialer {
  readonly #backend: Backend;
  readonly #timers: LoopTimers;
  /** Makes sure a close asked for outside a batch is flushed to the backend. */
  readonly #kick: () => void;
  readonly #pending = new Map<number, PendingDial>();
  #stopped = false;

  constructor(backend: Backend, timers: LoopTimers, kick: () => void) {
    this.#backend = backend;
    this.#timers = timers;
    this.#kick = kick;
  }

  /** How many dials are connecting. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Checks, resolves and starts a dial, and keeps it pending until the backend reports it. Resolves
   * with what the loop passes to the pending dial's resolve() once it has opened (its Conn); rejects
   * for a bad target or option, a failed lookup, a failed, timed-out or cancelled connect.
   */
  async start<T>(target: unknown, opts: unknown): Promise<T> {
    const t = parseDialTarget(target);
    const o = checkDialOptions(opts, t);
    if (t.tls === true && this.#backend.name === 'native')
      throw new BackendUnavailableError(
        `dial ${t.text}: TLS runs on the portable backend for now (serve with backend: 'portable' to dial tls://)`,
      );
    this.#checkGoing(t.text, o.signal);
    const spec = await resolveDialSpec(t, o);
    this.#checkGoing(t.text, o.signal);
    const r = this.#backend.dial(spec);
    if (r instanceof TlsConfigError) throw r;
    if (typeof r !== 'number') {
      const errno = errnoOf(r, 'EIO');
      throw new DialError(t.text, errno, `connect ${errno}`, { cause: r });
    }
    const id = r;
    return new Promise<T>((resolve, reject) => {
      const p: PendingDial = {
        target: t.text,
        context: o.context,
        timer: null,
        signal: o.signal,
        onAbort: null,
        resolve: resolve as (c: unknown) => void,
        reject,
      };
      const ms = o.timeoutMs;
      p.timer = this.#timers.afterConnect(ms, () =>
        this.#cancel(id, new DialError(t.text, 'ETIMEDOUT', `connect ETIMEDOUT (not connected after ${ms} ms)`)),
      );
      if (o.signal !== null) {
        const signal = o.signal;
        p.onAbort = () => this.#cancel(id, aborted(t.text, signal));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#pending.set(id, p);
    });
  }

  /** The backend opened dial `id`: takes it out of the pending set (undefined when it was cancelled). */
  take(id: number): PendingDial | undefined {
    const p = this.#pending.get(id);
    if (p === undefined) return undefined;
    this.#pending.delete(id);
    release(p);
    return p;
  }

  /** The backend closed dial `id` before it opened: its connect failed. Returns whether `id` was pending. */
  failed(id: number, err: Error | null): boolean {
    const p = this.take(id);
    if (p === undefined) return false;
    if (err instanceof TlsHandshakeFailure) {
      p.reject(new TlsHandshakeError(p.target, null, err.reason, 1, err.message, { cause: err }));
      return true;
    }
    const errno = errnoOf(err, 'ECONNABORTED');
    p.reject(new DialError(p.target, errno, `connect ${errno}`, err ? { cause: err } : undefined));
    return true;
  }

  /** Cancels every pending dial (DialError ECANCELED) and refuses new ones: the loop is stopping. */
  stop(): void {
    this.#stopped = true;
    for (const id of [...this.#pending.keys()]) {
      const p = this.#pending.get(id)!;
      this.#cancel(id, new DialError(p.target, 'ECANCELED', 'ECANCELED (the server is shutting down)'));
    }
  }

  #cancel(id: number, err: DialError): void {
    const p = this.take(id);
    if (p === undefined) return;
    this.#backend.close(id, false);
    this.#kick();
    p.reject(err);
  }

  #checkGoing(target: string, signal: AbortSignal | null): void {
    if (this.#stopped) throw new DialError(target, 'ECANCELED', 'ECANCELED (the server is shutting down)');
    if (signal?.aborted) throw aborted(target, signal);
  }
}

function aborted(target: string, signal: AbortSignal): DialError {
  return new DialError(target, 'ECANCELED', 'ECANCELED (aborted by its signal)', { cause: signal.reason });
}

function release(p: PendingDial): void {
  p.timer?.stop();
  p.timer = null;
  if (p.onAbort !== null) p.signal?.removeEventListener('abort', p.onAbort);
  p.onAbort = null;
}
