/**
 * Turns a stream of accept() failures into at most one AcceptError a second, each saying how many
 * failures it stands for, so that a server at its fd limit logs without flooding.
 */
import type { Addr } from '../addr.js';
import { AcceptError } from '../errors.js';

/** Accept errors are reported at most this often. */
export const kAcceptErrorReportMs = 1000;

export class AcceptErrorReporter {
  readonly #report: (err: Error) => void;
  #addrs: readonly Addr[] = [];
  #count = 0;
  #lastMs = -Infinity;

  constructor(report: (err: Error) => void) {
    this.#report = report;
  }

  /** The bound address of each listener, to name it in reports. */
  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#addrs = addrs;
  }

  onAcceptError(listener: number, errno: string): void {
    this.#count++;
    const now = performance.now();
    if (now - this.#lastMs < kAcceptErrorReportMs) return;
    this.#lastMs = now;
    const addr = this.#addrs[listener];
    this.#report(new AcceptError(addr ? String(addr) : `listener ${listener}`, errno, this.#count));
    this.#count = 0;
  }
}
