/**
 * An auto-growing circular byte buffer: what a connection has received and not yet consumed, or
 * what it has queued and not yet written.
 *
 *                r              r+vlen            r+len (write position)
 *                v                v                 v
 *   +------------+----------------+-----------------+------------+
 *   |    free    | virtually read | readable, unread|    free    |
 *   +------------+----------------+-----------------+------------+
 *   0                                                        capacity
 *
 * The readable region [r, r+len) may run past the end of storage and continue at index 0; it then
 * "wraps", and peek() returns it as two views: `first` (from r to the end of storage), then `end`
 * (from index 0).
 *
 * Invariants:
 *   - 0 <= vlen <= len <= capacity, and 0 <= r < max(capacity, 1).
 *   - r === 0 whenever len === 0, so an emptied buffer starts again unwrapped.
 *   - capacity is 0, the size given to the constructor, the length of the withData()/borrow()
 *     input, or, after any growth, a power of two >= 64.
 *   - Borrowed storage is never written: the first write copies the readable bytes out of it.
 *   - Only a consuming operation (read, readByte, retrieve, retrieveAll, virtualFlush, reset) moves
 *     r; every one of them moves the virtual read position back to r. Writes never move it.
 */
import { Buffer } from 'node:buffer';
import { BufferEmptyError, InvalidArgumentError } from './errors.js';

/** Smallest storage allocated by growth or by release(). */
const kMinCapacityBytes = 64;
/** Copies up to this size use a plain loop, which avoids allocating a subarray view. */
const kByteLoopMaxBytes = 32;
/** The most idle buffers ringBufferPool keeps. */
const kPoolMaxBuffers = 1024;
/**
 * The most storage a pooled buffer keeps. A buffer that grew past it (a connection that held a
 * large partial message) goes back to the pool with no storage at all, so a closed connection
 * never keeps its peak in memory: the pool holds at most kPoolMaxBuffers × this.
 */
const kPoolKeepCapacityBytes = 4096;

/** Storage of every buffer that holds none of its own, so an idle buffer costs no memory. */
const kEmpty = new Uint8Array(0);
const kEncoder = new TextEncoder();

/**
 * An auto-growing circular byte buffer. Not safe to share between threads; a buffer belongs to
 * the loop (or the caller) that created it.
 */
export class RingBuffer {
  private buf: Uint8Array;
  private r = 0;
  private len = 0;
  private vlen = 0;
  private borrowed = false;

  /** Creates an empty buffer with `size` bytes of storage; 0 allocates nothing until the first write. */
  constructor(size = 0) {
    if (!Number.isInteger(size) || size < 0) {
      throw new InvalidArgumentError('RingBuffer size', size, 'a non-negative integer');
    }
    this.buf = size === 0 ? kEmpty : new Uint8Array(size);
  }

  /** Creates a full buffer whose content is a copy of `data`; the caller keeps `data`. */
  static withData(data: Uint8Array): RingBuffer {
    checkBytes('RingBuffer.withData() data', data);
    const rb = new RingBuffer(0);
    if (data.length > 0) {
      rb.buf = new Uint8Array(data);
      rb.len = data.length;
    }
    return rb;
  }

  /** Number of readable (unconsumed) bytes. */
  get length(): number {
    return this.len;
  }

  /** Bytes of storage; a borrowed buffer reports the length of the borrowed view. */
  get capacity(): number {
    return this.buf.length;
  }

  /** True when no free space is left, so the next non-empty write grows the storage. */
  isFull(): boolean {
    return this.len === this.buf.length;
  }

  /** True when nothing is readable. */
  isEmpty(): boolean {
    return this.len === 0;
  }

  /** Empties the buffer and keeps its storage. */
  reset(): void {
    this.r = 0;
    this.len = 0;
    this.vlen = 0;
  }

  /** Appends a copy of `p`, growing as needed, and returns `p.length`. The caller keeps `p`. */
  write(p: Uint8Array): number {
    checkBytes('RingBuffer.write() data', p);
    const n = p.length;
    if (n > 0) {
      this.reserve(n);
      this.copyIn(p, n);
    }
    return n;
  }

  /** Appends one byte (its low 8 bits). */
  writeByte(b: number): void {
    if (typeof b !== 'number' || !Number.isInteger(b)) {
      throw new InvalidArgumentError('RingBuffer.writeByte() byte', b, 'an integer');
    }
    this.reserve(1);
    const cap = this.buf.length;
    let w = this.r + this.len;
    if (w >= cap) w -= cap;
    this.buf[w] = b;
    this.len++;
  }

  /** Appends `s` encoded as UTF-8 and returns the number of bytes written. */
  writeString(s: string): number {
    if (typeof s !== 'string') {
      throw new InvalidArgumentError('RingBuffer.writeString() text', s, 'a string');
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n === 0) return 0;
    this.reserve(n);
    const cap = this.buf.length;
    let w = this.r + this.len;
    if (w >= cap) w -= cap;
    if (cap - w >= n) {
      kEncoder.encodeInto(s, this.buf.subarray(w, w + n));
      this.len += n;
    } else {
      this.copyIn(kEncoder.encode(s), n);
    }
    return n;
  }

  /** Moves up to `p.length` bytes into `p`, consumes them, and returns how many were moved. */
  read(p: Uint8Array): number {
    checkBytes('RingBuffer.read() target', p);
    const n = p.length < this.len ? p.length : this.len;
    this.copyOut(this.r, p, n);
    this.consume(n);
    return n;
  }

  /** Consumes and returns the first byte; throws BufferEmptyError when nothing is readable. */
  readByte(): number {
    if (this.len === 0) throw new BufferEmptyError();
    const b = this.buf[this.r]!;
    this.consume(1);
    return b;
  }

  /**
   * Returns up to `n` readable bytes without consuming them, as views into the storage (no copy):
   * `first`, then `end`, which is non-empty only when those bytes wrap. The views are valid only
   * until the next write, borrow() or release(); the caller must not keep them past that.
   */
  peek(n: number): [first: Uint8Array, end: Uint8Array] {
    checkCount('peek', n);
    return this.views(n < this.len ? n : this.len);
  }

  /** peek() of every readable byte, with the same lifetime rule for the views. */
  peekAll(): [first: Uint8Array, end: Uint8Array] {
    return this.views(this.len);
  }

  /** Consumes up to `n` bytes without reading them. */
  retrieve(n: number): void {
    checkCount('retrieve', n);
    this.consume(n < this.len ? n : this.len);
  }

  /** Consumes every readable byte. */
  retrieveAll(): void {
    this.reset();
  }

  /** The first byte, without consuming it; 0 when the buffer is empty. */
  peekUint8(): number {
    return this.len < 1 ? 0 : this.buf[this.r]!;
  }

  /** The first 2 bytes as a big-endian integer, without consuming them; 0 when fewer are readable. */
  peekUint16(): number {
    return this.len < 2 ? 0 : (this.byteAt(0) << 8) | this.byteAt(1);
  }

  /** The first 4 bytes as a big-endian integer, without consuming them; 0 when fewer are readable. */
  peekUint32(): number {
    return this.len < 4 ? 0 : this.uint32At(0);
  }

  /** The first 8 bytes as a big-endian integer, without consuming them; 0n when fewer are readable. */
  peekUint64(): bigint {
    if (this.len < 8) return 0n;
    return (BigInt(this.uint32At(0)) << 32n) | BigInt(this.uint32At(4));
  }

  /**
   * Copies up to `p.length` bytes from the virtual read position into `p` and advances that
   * position, without consuming anything; returns how many were copied.
   */
  virtualRead(p: Uint8Array): number {
    checkBytes('RingBuffer.virtualRead() target', p);
    const avail = this.len - this.vlen;
    const n = p.length < avail ? p.length : avail;
    let start = this.r + this.vlen;
    if (start >= this.buf.length) start -= this.buf.length;
    this.copyOut(start, p, n);
    this.vlen += n;
    return n;
  }

  /** Number of readable bytes after the virtual read position. */
  virtualLength(): number {
    return this.len - this.vlen;
  }

  /** Consumes every byte before the virtual read position. */
  virtualFlush(): void {
    this.consume(this.vlen);
  }

  /** Moves the virtual read position back to the real one. */
  virtualRevert(): void {
    this.vlen = 0;
  }

  /** A new array holding a copy of every readable byte; nothing is consumed. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.len);
    this.copyOut(this.r, out, this.len);
    return out;
  }

  /** @internal For the pool: an empty buffer gives back storage above `maxBytes`, as if new. */
  shrinkTo(maxBytes: number): void {
    if (this.len === 0 && !this.borrowed && this.buf.length > maxBytes) {
      this.buf = kEmpty;
      this.r = 0;
      this.vlen = 0;
    }
  }

  /**
   * For backends: makes `view` the buffer's readable content without copying it. The buffer must
   * be empty; any storage it owned is dropped. The caller keeps ownership of `view` and must call
   * release() before reusing that memory; until then the buffer never writes into it.
   */
  borrow(view: Uint8Array): void {
    checkBytes('RingBuffer.borrow() view', view);
    if (this.len !== 0) {
      throw new InvalidArgumentError('the length of a RingBuffer given to borrow()', this.len, '0');
    }
    this.buf = view;
    this.r = 0;
    this.len = view.length;
    this.vlen = 0;
    this.borrowed = true;
  }

  /**
   * For backends: ends a borrow(). Bytes still readable are copied into storage the buffer owns;
   * if none are, the buffer drops its reference and holds no storage. Does nothing when the buffer
   * is not borrowing. Views returned by peek() before the release may alias the borrowed memory.
   */
  release(): void {
    if (!this.borrowed) return;
    if (this.len === 0) {
      this.buf = kEmpty;
      this.r = 0;
      this.borrowed = false;
    } else {
      this.relocate(roundCapacity(this.len));
    }
  }

  /** Makes room for `n` more bytes in storage the buffer owns. */
  private reserve(n: number): void {
    const needed = this.len + n;
    if (this.borrowed) {
      this.relocate(roundCapacity(needed));
    } else if (needed > this.buf.length) {
      const doubled = 2 * this.buf.length;
      this.relocate(roundCapacity(doubled > needed ? doubled : needed));
    }
  }

  /** Moves the readable bytes, in order, to the start of new owned storage of `cap` bytes. */
  private relocate(cap: number): void {
    const next = new Uint8Array(cap);
    this.copyOut(this.r, next, this.len);
    this.buf = next;
    this.r = 0;
    this.borrowed = false;
  }

  /** Appends the first `n` bytes of `src`; free space for them must already exist. */
  private copyIn(src: Uint8Array, n: number): void {
    const cap = this.buf.length;
    let w = this.r + this.len;
    if (w >= cap) w -= cap;
    const tail = cap - w;
    if (n <= tail) {
      copy(this.buf, w, src, 0, n);
    } else {
      copy(this.buf, w, src, 0, tail);
      copy(this.buf, 0, src, tail, n - tail);
    }
    this.len += n;
  }

  /** Copies `n` bytes starting at storage index `start`, following the wrap, to the start of `dst`. */
  private copyOut(start: number, dst: Uint8Array, n: number): void {
    const tail = this.buf.length - start;
    if (n <= tail) {
      copy(dst, 0, this.buf, start, n);
    } else {
      copy(dst, 0, this.buf, start, tail);
      copy(dst, tail, this.buf, 0, n - tail);
    }
  }

  /** Drops the first `n` readable bytes and moves the virtual read position back to r. */
  private consume(n: number): void {
    this.len -= n;
    if (this.len === 0) {
      this.r = 0;
    } else {
      this.r += n;
      if (this.r >= this.buf.length) this.r -= this.buf.length;
    }
    this.vlen = 0;
  }

  private views(n: number): [Uint8Array, Uint8Array] {
    if (n === 0) return [kEmpty, kEmpty];
    const tail = this.buf.length - this.r;
    if (n <= tail) return [this.buf.subarray(this.r, this.r + n), kEmpty];
    return [this.buf.subarray(this.r), this.buf.subarray(0, n - tail)];
  }

  /** The readable byte at offset `i` from r; `i` must be below len. */
  private byteAt(i: number): number {
    let j = this.r + i;
    if (j >= this.buf.length) j -= this.buf.length;
    return this.buf[j]!;
  }

  private uint32At(i: number): number {
    return ((this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3)) >>> 0;
  }
}

/** A bounded free list of idle RingBuffers. Each thread has its own pool. */
export interface RingBufferPool {
  /** Returns an empty buffer, reused when one is idle; the caller owns it until put(). */
  get(): RingBuffer;
  /**
   * Empties `rb` (ending any borrow) and keeps it for reuse; the caller must not touch it
   * afterwards. Buffers beyond the pool's bound are left to the garbage collector.
   */
  put(rb: RingBuffer): void;
}

const freeList: RingBuffer[] = [];
const inPool = new WeakSet<RingBuffer>();

/** The shared pool of idle RingBuffers; putting a buffer that is already pooled does nothing. */
export const ringBufferPool: RingBufferPool = {
  get(): RingBuffer {
    const rb = freeList.pop();
    if (rb === undefined) return new RingBuffer();
    inPool.delete(rb);
    return rb;
  },
  put(rb: RingBuffer): void {
    if (!(rb instanceof RingBuffer)) {
      throw new InvalidArgumentError('ringBufferPool.put() buffer', rb, 'a RingBuffer');
    }
    if (inPool.has(rb)) return;
    rb.reset();
    rb.release();
    rb.shrinkTo(kPoolKeepCapacityBytes);
    if (freeList.length < kPoolMaxBuffers) {
      freeList.push(rb);
      inPool.add(rb);
    }
  },
};

/** The next power of two >= `bytes`, and at least kMinCapacityBytes. */
function roundCapacity(bytes: number): number {
  let cap = kMinCapacityBytes;
  while (cap < bytes) cap *= 2;
  return cap;
}

/** Copies `n` bytes of `src` from `srcStart` into `dst` at `dstStart`. */
function copy(dst: Uint8Array, dstStart: number, src: Uint8Array, srcStart: number, n: number): void {
  if (n <= kByteLoopMaxBytes) {
    for (let i = 0; i < n; i++) dst[dstStart + i] = src[srcStart + i]!;
  } else {
    dst.set(srcStart === 0 && n === src.length ? src : src.subarray(srcStart, srcStart + n), dstStart);
  }
}

function checkBytes(what: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(what, value, 'a Uint8Array');
}

function checkCount(method: string, n: unknown): asserts n is number {
  if (typeof n !== 'number' || !(n >= 0) || !(Number.isInteger(n) || n === Infinity)) {
    throw new InvalidArgumentError(`RingBuffer.${method}() count`, n, 'a non-negative integer');
  }
}
