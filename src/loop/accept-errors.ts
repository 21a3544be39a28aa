/**
 * Turns a stream of accept() failures into at most one AcceptError a second, each saying how many
 * failures it stands for, so that a server at its fd limit logs without flooding. Failures held
 * back inside a second are reported when that second is over, even if no other failure follows.
 */
import type { Addr } from '../addr.js';
import { AcceptError } from '../errors.js';

/** Accept errors are reported at most this often. */
export const kAcceptErrorReportMs = 1000;

export class AcceptErrorReporter {
  readonly #report: (err: Error) => void;
  #addrs: readonly Addr[] = [];
  #count = 0;
  #listenerIndex = 0;
  #errno = '';
  #lastMs = -Infinity;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(report: (err: Error) => void) {
    this.#report = report;
  }

  /** The bound address of each listener, to name it in reports. */
  setListenerAddrs(addrs: readonly Addr[]): void {
    this.#addrs = addrs;
  }

  onAcceptError(listenerIndex: number, errno: string): void {
    if (this.#stopped) return;
    this.#count++;
    this.#listenerIndex = listenerIndex;
    this.#errno = errno;
    const waitMs = this.#lastMs + kAcceptErrorReportMs - performance.now();
    if (waitMs <= 0) {
      this.#flush();
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#flush();
      }, Math.ceil(waitMs));
      this.#timer.unref();
    }
  }

  /** Drops what is held back; no report after this. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #flush(): void {
    if (this.#count === 0) return;
    this.#lastMs = performance.now();
    const addr = this.#addrs[this.#listenerIndex];
    const count = this.#count;
    this.#count = 0;
    this.#report(new AcceptError(addr ? String(addr) : `listener ${this.#listenerIndex}`, this.#errno, count));
  }
}
