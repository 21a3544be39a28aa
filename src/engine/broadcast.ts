/**
 * Server.broadcast(): a value sent to every loop of a server, the sender's own included. Loops on
 * worker threads (and the thread that called listen()) share a BroadcastChannel named for the
 * server; a BroadcastChannel does not deliver to the instance that posted, so the sender's own
 * loop gets its copy directly. Each copy is a structured clone (a SharedArrayBuffer is shared), and
 * arrives later, as a task of the receiving thread, in order from one sender.
 */
import { BroadcastChannel } from 'node:worker_threads';

export class LoopChannel {
  readonly #channel: BroadcastChannel | null;
  readonly #deliver: ((value: unknown) => void) | null;
  #closed = false;

  /**
   * `name` is the server's channel, or null for a server with one loop (on this thread).
   * `deliver` runs this thread's loop's `message` callback; null on a thread without a loop.
   */
  constructor(name: string | null, deliver: ((value: unknown) => void) | null) {
    this.#deliver = deliver;
    this.#channel = name === null ? null : new BroadcastChannel(name);
    if (this.#channel !== null) {
      // Never keeps a thread alive by itself: the loops and the server's promise do.
      (this.#channel as unknown as { unref?: () => void }).unref?.();
      if (deliver !== null) this.#channel.onmessage = (ev) => deliver((ev as MessageEvent).data);
    }
  }

  /** Sends a clone of `value` to every loop (throws DataCloneError for a value that cannot be cloned). */
  send(value: unknown): void {
    if (this.#closed) return;
    const copy = structuredClone(value);
    this.#channel?.postMessage(value);
    const deliver = this.#deliver;
    if (deliver !== null) setImmediate(() => deliver(copy));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel?.close();
  }
}
