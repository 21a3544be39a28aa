/**
 * The loop's DatagramConn: the connection-like value `data` receives for one UDP datagram, made
 * for that datagram only. It has no stream state; its replies go to the sender as datagrams.
 * Used on its loop's thread only.
 */
import type { Addr } from '../addr.js';
import type { DatagramPeer } from '../backend/backend.js';
import type { DatagramConn, Output } from '../conn-types.js';
import type { Loop } from './loop.js';

export class UdpConn implements DatagramConn {
  /** Any value the application wants to keep while handling this datagram (it does not carry over to the next). */
  context: unknown = undefined;
  /** @internal */ readonly loop: Loop;
  /** @internal The UDP listener's index, which sends the replies. */ readonly listenerIndex: number;
  /** @internal */ readonly peer: DatagramPeer;
  readonly #local: Addr;

  /** @internal */
  constructor(loop: Loop, listenerIndex: number, local: Addr, peer: DatagramPeer) {
    this.loop = loop;
    this.listenerIndex = listenerIndex;
    this.#local = local;
    this.peer = peer;
  }

  /** Which of serve()'s addresses (a UDP listener) the datagram came in on. */
  get addrIndex(): number {
    return this.listenerIndex;
  }

  /** The index of the loop this datagram is handled on (0 with one loop). */
  get loopIndex(): number {
    return this.loop.index;
  }

  /** The UDP listener's bound address. */
  get localAddr(): Addr {
    return this.#local;
  }

  /** The sender's address. */
  get remoteAddr(): Addr {
    return this.peer.addr;
  }

  /** Sends one datagram back to this datagram's sender; false (nothing sent) once the loop is stopping. */
  send(data: Output): boolean {
    return this.loop.sendDatagram(this, data);
  }

  /** Sends one datagram back to this datagram's sender (the same as send()). */
  write(data: Output): boolean {
    return this.loop.sendDatagram(this, data);
  }
}
