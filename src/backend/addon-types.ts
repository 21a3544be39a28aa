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
  /** [live connections, datagrams dropped as truncated, datagrams dropped on send, pending record slots] */
  stats(loop: LoopHandle, out: Float64Array): number;
  /** Loops of this addon instance (this thread) not yet closed. */
  liveLoops(): number;
}

export const kHeaderU32 = 16;
/** u32 per record or command slot. */
export const kSlotU32 = 4;

export const enum Rec {
  Open = 1,
  Data = 2,
  End = 3,
  Close = 4,
  Dgram = 5,
  Accepted = 6,
  Wake = 7,
}

export const enum Op {
  Write = 1,
  WriteExt = 2,
  Close = 3,
  End = 4,
  KeepAlive = 5,
  SendTo = 6,
  SendToExt = 7,
}

export const enum ListenFlag {
  ReusePort = 1,
  V6Only = 2,
  HandOff = 4,
}
