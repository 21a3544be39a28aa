/**
 * The native addon's whole surface (native/addon.c), typed, with the memory layout it shares with
 * JavaScript. Only src/backend/native.ts and src/backend/addon.ts use it.
 *
 * Every function runs on the thread that created the loop, except `wake` (any thread). Functions
 * that can fail at the OS level return a negative errno (map it with util.getSystemErrorName);
 * arguments are validated in TypeScript before they get here.
 *
 *   in arena (C writes, JS reads during the batch callback)      out arena (JS writes, C reads at flush)
 *   ┌────────────┬────────────────────────┬───────────────┐      ┌────────────┬──────────────────┬────────┐
 *   │ header 16  │ records: 4 u32 a slot  │ payload bytes │      │ header 16  │ commands: 4 u32  │ bytes  │
 *   │ [0] slots  │ [type, a, b, c]        │               │      │ [0] slots  │ [op, id, a, b]   │        │
 *   │ [1] bytes  │ (+2 address slots)     │               │      │ [1] bytes  │ (+2 address)     │        │
 *   └────────────┴────────────────────────┴───────────────┘      └────────────┴──────────────────┴────────┘
 *
 * An address is 8 u32: [family 4|6|1(unix)|0, port, flowinfo, scope_id, 16 address bytes].
 */

/** An opaque handle to one native loop (a napi external). */
export interface LoopHandle {
  readonly __geventLoop: never;
}

export interface NativeAddon {
  /** Creates a loop (epoll + eventfd) over two JS-owned arenas; a negative errno if the OS refuses. */
  loopCreate(
    inArena: ArrayBuffer,
    inRecordSlots: number,
    outArena: ArrayBuffer,
    outCommandSlots: number,
    tcpNoDelay: boolean,
    udpSlotBytes: number,
  ): LoopHandle | number;
  /** Starts watching the loop's epoll fd; `onBatch` runs once per wake-up that produced records. */
  loopStart(loop: LoopHandle, onBatch: () => void): number;
  /** Binds a TCP listener or UDP socket on a numeric host ('' = any). Returns its slot or -errno. */
  listenInet(loop: LoopHandle, udp: boolean, family: 0 | 4 | 6, host: string, port: number, flags: number, index: number): number;
  /** Binds a unix stream listener (removing a stale socket file first). Returns its slot or -errno. */
  listenUnix(loop: LoopHandle, path: string, flags: number, index: number): number;
  /** Writes a listener's bound address into `out` (8 u32). */
  listenerAddr(loop: LoopHandle, slot: number, out: Uint32Array): number;
  /** Closes one listener (unlinking its unix socket file). */
  listenerClose(loop: LoopHandle, slot: number): void;
  /** Writes connection `id`'s local address into `out` (8 u32); -EBADF when it is closed. */
  connAddr(loop: LoopHandle, id: number, out: Uint32Array): number;
  /** Runs the out arena's commands; `ext[i]` holds the bytes of WRITE_EXT/SENDTO_EXT index i. */
  flush(loop: LoopHandle, ext: readonly Uint8Array[] | null, extCount: number): void;
  /** Registers an fd accepted elsewhere as a connection of listener `index`; returns its id or -errno. */
  adopt(loop: LoopHandle, fd: number, index: number): number;
  /** Closes every listener and connection, writing CLOSE records; call until it returns 0. */
  stopAll(loop: LoopHandle): number;
  /** Closes the poll handle and every fd; `done` runs once that finished. */
  close(loop: LoopHandle, done: () => void): number;
  /** The loop's eventfd, the number another thread passes to `wake`. */
  wakeFd(loop: LoopHandle): number;
  /** Any thread: makes the owning loop's next batch carry a WAKE record. */
  wake(eventFd: number): number;
  /** Closes an fd from an ACCEPTED record that no loop adopted. */
  closeFd(fd: number): number;
  /**
   * Fills `out` (5 doubles): [live connections, datagrams dropped as truncated, datagrams dropped on
   * send, pending record slots, listeners parked after an accept error].
   */
  stats(loop: LoopHandle, out: Float64Array): number;
  /** Loops of this addon instance (this thread) not yet closed. */
  liveLoops(): number;
}

export const kHeaderU32 = 16;
/** u32 per record or command slot. */
export const kSlotU32 = 4;

/** Record types in the in arena; each record is [type, a, b, c] (+2 address slots where noted). */
export const enum Rec {
  /** [id, listener] + peer address */
  Open = 1,
  /** [id, offset, length] */
  Data = 2,
  /** [id]: the peer sent FIN */
  End = 3,
  /** [id, errno, what]: `what` is a NoMemory value when the core itself ran out of memory, else 0 */
  Close = 4,
  /** [listener, offset, length] + sender address */
  Dgram = 5,
  /** [fd, listener] + peer address: a hand-off listener accepted fd, not registered */
  Accepted = 6,
  /** another thread called wake() */
  Wake = 7,
  /**
   * [id, bytes low 32, bytes high 32]: connection id's output the kernel has not taken yet. Sent
   * after a flush for each connection whose queue grew (or that WatchQueue named), and after
   * EPOLLOUT writes, whenever the figure differs from the last one reported; never for a send the
   * kernel took whole. A connection that closes is not reported again.
   */
  Queued = 8,
  /** [listener, errno]: accept4 failed; the listener is parked for a moment, then retries */
  AcceptError = 9,
}

/** What the core failed to allocate when a Close record carries ENOMEM (native/gev.h, gev_nomem). */
export const enum NoMemory {
  /** 0: the ENOMEM came from the kernel */
  Kernel = 0,
  /** the copy of output the kernel did not take at once */
  Queue = 1,
  /** room for the connection's Queued report */
  Report = 2,
}

/** Command ops in the out arena; each command is [op, id, a, b] (+2 address slots for SendTo*). */
export const enum Op {
  /** [id, offset, length] */
  Write = 1,
  /** [id, ext index, length]: length is a u32, so a larger write takes several commands */
  WriteExt = 2,
  /** [id, flush] */
  Close = 3,
  /** [id] */
  End = 4,
  /** [id, seconds (0 = off)] */
  KeepAlive = 5,
  /** [listener slot, offset, length] + address */
  SendTo = 6,
  /** [listener slot, ext index, length] + address; no datagram reaches the u32 limit */
  SendToExt = 7,
  /** [id, paused]: 1 drops read interest (no DATA/END until 0 restores it); errors still close */
  PauseReading = 8,
  /** [id]: a Queued record after this flush even when the figure is unchanged (or 0) */
  WatchQueue = 9,
}

export const enum ListenFlag {
  ReusePort = 1,
  V6Only = 2,
  HandOff = 4,
}
