/**
 * Rate-limited reports of failures around accept: a stream of them becomes at most one error a
 * second per key, each saying how many failures it stands for, so that a server at its fd limit,
 * or a PROXY listener facing garbage, logs without flooding. Failures held back inside a second are
 * reported when that second is over, even if no other failure follows.
 *
 * ThrottledReporter is the mechanism; AcceptErrorReporter (one stream for every listener: accept
 * errors are a process-wide condition), ProxyRefusalReporter and TlsHandshakeReporter (one stream
 * per listener each) use it.
 */
import { Addr } from '../addr.js';
import type { ProxyRefusal } from '../backend/backend.js';
import { AcceptError, ProxyProtocolError, TlsHandshakeError } from '../errors.js';

/** Accept errors (and PROXY refusals) are reported at most this often, per key. */
export const kAcceptErrorReportMs = 1000;

interface Held<T> {
  count: number;
  listenerIndex: number;
  last: T;
  lastMs: number;
  timer: NodeJS.Timeout | null;
}

/**
 * At most one report a second per key. `make` builds the error from the listener's bound address
 * (undefined before it is known), the last failure's detail and how many failures it stands for.
 */
export class ThrottledReporter<T> {
  readonly #report: (err: Error) => void;
  readonly #make: (listener: Addr | undefined, listenerIndex: number, last: T, count: number) => Error;
  readonly #held = new Map<number, Held<T>>();
  #addrs: readonly Addr[] = [];
  #stopped = false;

  constructor(
    report: (err: Error) => void,
    make: (listener: Addr | undefined, listenerIndex: number, last: T, count: number) => Error,
  ) {
    this.#report = report;
    this.#make = make;
  }

  /** The bound address of each listener, to name it in reports. */
  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#addrs = addrs;
  }

  /** One failure on listener `listenerIndex`, counted under `key`. */
  note(key: number, listenerIndex: number, detail: T): void {
    if (this.#stopped) return;
    let h = this.#held.get(key);
    if (h === undefined) {
      h = { count: 0, listenerIndex, last: detail, lastMs: -Infinity, timer: null };
      this.#held.set(key, h);
    }
    h.count++;
    h.listenerIndex = listenerIndex;
    h.last = detail;
    const waitMs = h.lastMs + kAcceptErrorReportMs - performance.now();
    if (waitMs <= 0) {
      this.#flush(h);
    } else if (h.timer === null) {
      const held = h;
      h.timer = setTimeout(() => {
        held.timer = null;
        this.#flush(held);
      }, Math.ceil(waitMs));
      h.timer.unref();
    }
  }

  /** Drops what is held back; no report after this. */
  stop(): void {
    this.#stopped = true;
    for (const h of this.#held.values()) {
      if (h.timer !== null) clearTimeout(h.timer);
      h.timer = null;
    }
  }

  #flush(h: Held<T>): void {
    if (h.count === 0) return;
    h.lastMs = performance.now();
    const count = h.count;
    h.count = 0;
    this.#report(this.#make(this.#addrs[h.listenerIndex], h.listenerIndex, h.last, count));
  }
}

/** accept() failures: one stream for all listeners, each report naming the last failure's listener and errno. */
export class AcceptErrorReporter {
  readonly #r: ThrottledReporter<string>;

  constructor(report: (err: Error) => void) {
    this.#r = new ThrottledReporter<string>(
      report,
      (addr, index, errno, count) => new AcceptError(addr ? String(addr) : `listener ${index}`, errno, count),
    );
  }

  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#r.setListenerAddrs(addrs);
  }

  onAcceptError(listenerIndex: number, errno: string): void {
    this.#r.note(0, listenerIndex, errno);
  }

  stop(): void {
    this.#r.stop();
  }
}

/** Connections a PROXY protocol listener refused: a ProxyProtocolError at most once a second per listener. */
export class ProxyRefusalReporter {
  readonly #r: ThrottledReporter<{ reason: ProxyRefusal; peer: Addr }>;

  constructor(report: (err: Error) => void) {
    this.#r = new ThrottledReporter<{ reason: ProxyRefusal; peer: Addr }>(
      report,
      (addr, index, last, count) =>
        new ProxyProtocolError(last.reason, addr ?? new Addr('tcp', `listener ${index}`, 0), last.peer, count),
    );
  }

  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#r.setListenerAddrs(addrs);
  }

  onProxyRefused(listenerIndex: number, reason: ProxyRefusal, peer: Addr): void {
    this.#r.note(listenerIndex, listenerIndex, { reason, peer });
  }

  stop(): void {
    this.#r.stop();
  }
}

/** Failed handshakes on TLS listeners: a TlsHandshakeError at most once a second per listener. */
export class TlsHandshakeReporter {
  readonly #r: ThrottledReporter<{ reason: string; peer: Addr | null; detail: string }>;

  constructor(report: (err: Error) => void) {
    this.#r = new ThrottledReporter<{ reason: string; peer: Addr | null; detail: string }>(
      report,
      (addr, index, last, count) =>
        new TlsHandshakeError(addr ? String(addr) : `listener ${index}`, last.peer, last.reason, count, last.detail),
    );
  }

  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#r.setListenerAddrs(addrs);
  }

  onTlsError(listenerIndex: number, reason: string, peer: Addr | null, detail: string): void {
    this.#r.note(listenerIndex, listenerIndex, { reason, peer, detail });
  }

  stop(): void {
    this.#r.stop();
  }
}
