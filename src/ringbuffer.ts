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
 * (from index 0). Offsets taken or returned by peekUint*() and indexOf() count readable bytes from
 * r, wherever the wrap falls.
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
/**
 * indexOf() compares bytes in JavaScript when at most this many remain to search, or when a needle
 * this short straddles the wrap; past it, the native Buffer search's fixed cost (a view per half,
 * or a copy of the bytes around the wrap) pays off.
 */
const kSearchLoopMaxBytes = 32;
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
  #buf: Uint8Array;
  #r = 0;
  #len = 0;
  #vlen = 0;
  #borrowed = false;

  /** Creates an empty buffer with `size` bytes of storage; 0 allocates nothing until the first write. */
  constructor(size = 0) {
    if (!Number.isInteger(size) || size < 0) {
      throw new InvalidArgumentError('RingBuffer size', size, 'a non-negative integer');
    }
    this.#buf = size === 0 ? kEmpty : new Uint8Array(size);
  }

  /** Creates a full buffer whose content is a copy of `data`; the caller keeps `data`. */
  static withData(data: Uint8Array): RingBuffer {
    checkBytes('RingBuffer.withData() data', data);
    const rb = new RingBuffer(0);
    if (data.length > 0) {
      rb.#buf = new Uint8Array(data);
      rb.#len = data.length;
    }
    return rb;
  }

  /** Number of readable (unconsumed) bytes. */
  get length(): number {
    return this.#len;
  }

  /** Bytes of storage; a borrowed buffer reports the length of the borrowed view. */
  get capacity(): number {
    return this.#buf.length;
  }

  /** True when no free space is left, so the next non-empty write grows the storage. */
  isFull(): boolean {
    return this.#len === this.#buf.length;
  }

  /** True when nothing is readable. */
  isEmpty(): boolean {
    return this.#len === 0;
  }

  /** Empties the buffer and keeps its storage. */
  reset(): void {
    this.#r = 0;
    this.#len = 0;
    this.#vlen = 0;
  }

  /** Appends a copy of `p`, growing as needed, and returns `p.length`. The caller keeps `p`. */
  write(p: Uint8Array): number {
    checkBytes('RingBuffer.write() data', p);
    const n = p.length;
    if (n > 0) {
      this.#reserve(n);
      this.#copyIn(p, n);
    }
    return n;
  }

  /** Appends one byte (its low 8 bits). */
  writeByte(b: number): void {
    if (typeof b !== 'number' || !Number.isInteger(b)) {
      throw new InvalidArgumentError('RingBuffer.writeByte() byte', b, 'an integer');
    }
    this.#reserve(1);
    const cap = this.#buf.length;
    let w = this.#r + this.#len;
    if (w >= cap) w -= cap;
    this.#buf[w] = b;
    this.#len++;
  }

  /** Appends `s` encoded as UTF-8 and returns the number of bytes written. */
  writeString(s: string): number {
    if (typeof s !== 'string') {
      throw new InvalidArgumentError('RingBuffer.writeString() text', s, 'a string');
    }
    const n = Buffer.byteLength(s, 'utf8');
    if (n === 0) return 0;
    this.#reserve(n);
    const cap = this.#buf.length;
    let w = this.#r + this.#len;
    if (w >= cap) w -= cap;
    if (cap - w >= n) {
      kEncoder.encodeInto(s, this.#buf.subarray(w, w + n));
      this.#len += n;
    } else {
      this.#copyIn(kEncoder.encode(s), n);
    }
    return n;
  }

  /** Moves up to `p.length` bytes into `p`, consumes them, and returns how many were moved. */
  read(p: Uint8Array): number {
    checkBytes('RingBuffer.read() target', p);
    const n = p.length < this.#len ? p.length : this.#len;
    this.#copyOut(this.#r, p, n);
    this.#consume(n);
    return n;
  }

  /** Consumes and returns the first byte; throws BufferEmptyError when nothing is readable. */
  readByte(): number {
    if (this.#len === 0) throw new BufferEmptyError();
    const b = this.#buf[this.#r]!;
    this.#consume(1);
    return b;
  }

  /**
   * Returns up to `n` readable bytes without consuming them, as views into the storage (no copy):
   * `first`, then `end`, which is non-empty only when those bytes wrap. The views are valid only
   * until the next write, borrow() or release(); the caller must not keep them past that.
   */
  peek(n: number): [first: Uint8Array, end: Uint8Array] {
    checkCount('peek', n);
    return this.#views(n < this.#len ? n : this.#len);
  }

  /** peek() of every readable byte, with the same lifetime rule for the views. */
  peekAll(): [first: Uint8Array, end: Uint8Array] {
    return this.#views(this.#len);
  }

  /** Consumes up to `n` bytes without reading them. */
  retrieve(n: number): void {
    checkCount('retrieve', n);
    this.#consume(n < this.#len ? n : this.#len);
  }

  /** Consumes every readable byte. */
  retrieveAll(): void {
    this.reset();
  }

  /**
   * The byte at `offset` (from the first readable byte), without consuming anything; 0 when the
   * buffer holds `offset` bytes or fewer. A 0 is a real byte only when `length > offset`.
   */
  peekUint8(offset = 0): number {
    checkOffset('peekUint8', offset);
    return this.#len - offset < 1 ? 0 : this.#byteAt(offset);
  }

  /**
   * The 2 bytes at `offset` as a big-endian integer, without consuming them; 0 when fewer than
   * `offset + 2` bytes are readable, so check `length >= offset + 2` first when 0 is a valid value.
   */
  peekUint16(offset = 0): number {
    checkOffset('peekUint16', offset);
    return this.#len - offset < 2 ? 0 : (this.#byteAt(offset) << 8) | this.#byteAt(offset + 1);
  }

  /** peekUint16() read little-endian. */
  peekUint16LE(offset = 0): number {
    checkOffset('peekUint16LE', offset);
    return this.#len - offset < 2 ? 0 : this.#byteAt(offset) | (this.#byteAt(offset + 1) << 8);
  }

  /**
   * The 4 bytes at `offset` as a big-endian integer, without consuming them; 0 when fewer than
   * `offset + 4` bytes are readable, so check `length >= offset + 4` first when 0 is a valid value.
   */
  peekUint32(offset = 0): number {
    checkOffset('peekUint32', offset);
    return this.#len - offset < 4 ? 0 : this.#uint32At(offset);
  }

  /** peekUint32() read little-endian. */
  peekUint32LE(offset = 0): number {
    checkOffset('peekUint32LE', offset);
    return this.#len - offset < 4 ? 0 : this.#uint32LEAt(offset);
  }

  /**
   * The 8 bytes at `offset` as a big-endian integer, without consuming them; 0n when fewer than
   * `offset + 8` bytes are readable, so check `length >= offset + 8` first when 0n is a valid value.
   */
  peekUint64(offset = 0): bigint {
    checkOffset('peekUint64', offset);
    if (this.#len - offset < 8) return 0n;
    return (BigInt(this.#uint32At(offset)) << 32n) | BigInt(this.#uint32At(offset + 4));
  }

  /** peekUint64() read little-endian. */
  peekUint64LE(offset = 0): bigint {
    checkOffset('peekUint64LE', offset);
    if (this.#len - offset < 8) return 0n;
    return (BigInt(this.#uint32LEAt(offset + 4)) << 32n) | BigInt(this.#uint32LEAt(offset));
  }

  /**
   * The offset (from the first readable byte) of the first occurrence of `value` at or after
   * `fromIndex`, or -1; nothing is consumed. `value` is a byte (an integer 0-255) or a byte
   * sequence, which is found even when it straddles the wrap. A negative `fromIndex` counts from
   * the end of the readable bytes, as in Buffer.indexOf(); an empty sequence is found at
   * min(fromIndex, length).
   */
  indexOf(value: number | Uint8Array, fromIndex = 0): number {
    let needle: number | Uint8Array;
    if (typeof value === 'number') {
      if (!Number.isInteger(value) || value < 0 || value > 255) {
        throw new InvalidArgumentError('RingBuffer.indexOf() value', value, 'an integer from 0 to 255 or a Uint8Array');
      }
      needle = value;
    } else if (value instanceof Uint8Array) {
      needle = value.length === 1 ? value[0]! : value;
    } else {
      throw new InvalidArgumentError('RingBuffer.indexOf() value', value, 'an integer from 0 to 255 or a Uint8Array');
    }
    if (!Number.isInteger(fromIndex)) {
      throw new InvalidArgumentError('RingBuffer.indexOf() fromIndex', fromIndex, 'an integer');
    }
    const len = this.#len;
    let from = fromIndex;
    if (from < 0) from = len + from > 0 ? len + from : 0;
    const m = typeof needle === 'number' ? 1 : needle.length;
    if (m === 0) return from < len ? from : len;
    if (from > len - m) return -1;
    if (len - from <= kSearchLoopMaxBytes) return this.#scan(needle, from, len - m);

    const cap = this.#buf.length;
    const firstLen = cap - this.#r < len ? cap - this.#r : len;
    if (from < firstLen) {
      const i = search(this.#buf, this.#r + from, this.#r + firstLen, needle);
      if (i >= 0) return i - this.#r;
    }
    if (firstLen === len) return -1;
    if (m > 1) {
      const i = this.#searchStraddling(
        needle as Uint8Array,
        from > firstLen - m + 1 ? from : firstLen - m + 1,
        firstLen,
      );
      if (i >= 0) return i;
    }
    const i = search(this.#buf, from > firstLen ? from - firstLen : 0, len - firstLen, needle);
    return i < 0 ? -1 : firstLen + i;
  }

  /**
   * Copies up to `p.length` bytes from the virtual read position into `p` and advances that
   * position, without consuming anything; returns how many were copied.
   */
  virtualRead(p: Uint8Array): number {
    checkBytes('RingBuffer.virtualRead() target', p);
    const avail = this.#len - this.#vlen;
    const n = p.length < avail ? p.length : avail;
    let start = this.#r + this.#vlen;
    if (start >= this.#buf.length) start -= this.#buf.length;
    this.#copyOut(start, p, n);
    this.#vlen += n;
    return n;
  }

  /** Number of readable bytes after the virtual read position. */
  virtualLength(): number {
    return this.#len - this.#vlen;
  }

  /** Consumes every byte before the virtual read position. */
  virtualFlush(): void {
    this.#consume(this.#vlen);
  }

  /** Moves the virtual read position back to the real one. */
  virtualRevert(): void {
    this.#vlen = 0;
  }

  /** A new array holding a copy of every readable byte; nothing is consumed. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#len);
    this.#copyOut(this.#r, out, this.#len);
    return out;
  }

  /** @internal For the pool: an empty buffer gives back storage above `maxBytes`, as if new. */
  shrinkTo(maxBytes: number): void {
    if (this.#len === 0 && !this.#borrowed && this.#buf.length > maxBytes) {
      this.#buf = kEmpty;
      this.#r = 0;
      this.#vlen = 0;
    }
  }

  /**
   * For backends: makes `view` the buffer's readable content without copying it. The buffer must
   * be empty; any storage it owned is dropped. The caller keeps ownership of `view` and must call
   * release() before reusing that memory; until then the buffer never writes into it.
   */
  borrow(view: Uint8Array): void {
    checkBytes('RingBuffer.borrow() view', view);
    if (this.#len !== 0) {
      throw new InvalidArgumentError('the length of a RingBuffer given to borrow()', this.#len, '0');
    }
    this.#buf = view;
    this.#r = 0;
    this.#len = view.length;
    this.#vlen = 0;
    this.#borrowed = true;
  }

  /**
   * For backends: ends a borrow(). Bytes still readable are copied into storage the buffer owns;
   * if none are, the buffer drops its reference and holds no storage. Does nothing when the buffer
   * is not borrowing. Views returned by peek() before the release may alias the borrowed memory.
   */
  release(): void {
    if (!this.#borrowed) return;
    if (this.#len === 0) {
      this.#buf = kEmpty;
      this.#r = 0;
      this.#borrowed = false;
    } else {
      this.#relocate(roundCapacity(this.#len));
    }
  }

  /** Makes room for `n` more bytes in storage the buffer owns. */
  #reserve(n: number): void {
    const needed = this.#len + n;
    if (this.#borrowed) {
      this.#relocate(roundCapacity(needed));
    } else if (needed > this.#buf.length) {
      const doubled = 2 * this.#buf.length;
      this.#relocate(roundCapacity(doubled > needed ? doubled : needed));
    }
  }

  /** Moves the readable bytes, in order, to the start of new owned storage of `cap` bytes. */
  #relocate(cap: number): void {
    const next = new Uint8Array(cap);
    this.#copyOut(this.#r, next, this.#len);
    this.#buf = next;
    this.#r = 0;
    this.#borrowed = false;
  }

  /** Appends the first `n` bytes of `src`; free space for them must already exist. */
  #copyIn(src: Uint8Array, n: number): void {
    const cap = this.#buf.length;
    let w = this.#r + this.#len;
    if (w >= cap) w -= cap;
    const tail = cap - w;
    if (n <= tail) {
      copy(this.#buf, w, src, 0, n);
    } else {
      copy(this.#buf, w, src, 0, tail);
      copy(this.#buf, 0, src, tail, n - tail);
    }
    this.#len += n;
  }

  /** Copies `n` bytes starting at storage index `start`, following the wrap, to the start of `dst`. */
  #copyOut(start: number, dst: Uint8Array, n: number): void {
    const tail = this.#buf.length - start;
    if (n <= tail) {
      copy(dst, 0, this.#buf, start, n);
    } else {
      copy(dst, 0, this.#buf, start, tail);
      copy(dst, tail, this.#buf, 0, n - tail);
    }
  }

  /** Drops the first `n` readable bytes and moves the virtual read position back to r. */
  #consume(n: number): void {
    this.#len -= n;
    if (this.#len === 0) {
      this.#r = 0;
    } else {
      this.#r += n;
      if (this.#r >= this.#buf.length) this.#r -= this.#buf.length;
    }
    this.#vlen = 0;
  }

  #views(n: number): [Uint8Array, Uint8Array] {
    if (n === 0) return [kEmpty, kEmpty];
    const buf = this.#buf;
    // All of the storage (a borrowed read, typically): the storage itself, no new view.
    if (this.#r === 0 && n === buf.length) return [buf, kEmpty];
    const tail = buf.length - this.#r;
    if (n <= tail) return [buf.subarray(this.#r, this.#r + n), kEmpty];
    return [this.#buf.subarray(this.#r), this.#buf.subarray(0, n - tail)];
  }

  /** The readable byte at offset `i` from r; `i` must be below len. */
  #byteAt(i: number): number {
    let j = this.#r + i;
    if (j >= this.#buf.length) j -= this.#buf.length;
    return this.#buf[j]!;
  }

  #uint32At(i: number): number {
    return (
      ((this.#byteAt(i) << 24) | (this.#byteAt(i + 1) << 16) | (this.#byteAt(i + 2) << 8) | this.#byteAt(i + 3)) >>> 0
    );
  }

  #uint32LEAt(i: number): number {
    return (
      (this.#byteAt(i) | (this.#byteAt(i + 1) << 8) | (this.#byteAt(i + 2) << 16) | (this.#byteAt(i + 3) << 24)) >>> 0
    );
  }

  /** indexOf() of `needle` starting at offsets from..last, byte by byte, across the wrap. */
  #scan(needle: number | Uint8Array, from: number, last: number): number {
    if (typeof needle === 'number') {
      for (let i = from; i <= last; i++) if (this.#byteAt(i) === needle) return i;
      return -1;
    }
    for (let i = from; i <= last; i++) if (this.#matchesAt(needle, i)) return i;
    return -1;
  }

  /** True when the readable bytes at offset `at` equal `needle`; they must all be readable. */
  #matchesAt(needle: Uint8Array, at: number): boolean {
    for (let j = 0; j < needle.length; j++) if (this.#byteAt(at + j) !== needle[j]) return false;
    return true;
  }

  /**
   * The first match of `needle` starting at an offset in [from, firstLen) and ending past
   * `firstLen`, where the storage wraps: a short needle is compared in place, a long one is
   * searched in a copy of the bytes around the wrap.
   */
  #searchStraddling(needle: Uint8Array, from: number, firstLen: number): number {
    const m = needle.length;
    const last = firstLen - 1 < this.#len - m ? firstLen - 1 : this.#len - m;
    if (from > last) return -1;
    if (m <= kSearchLoopMaxBytes) return this.#scan(needle, from, last);
    const around = Buffer.allocUnsafe(last + m - from);
    this.#copyOut(this.#r + from, around, around.length);
    const i = around.indexOf(needle);
    return i < 0 ? -1 : from + i;
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

/**
 * Storage index of the first `needle` (a byte or a sequence of at least 2) wholly inside
 * storage[start, end), or -1, by the native Buffer search on a view of just that range.
 */
function search(storage: Uint8Array, start: number, end: number, needle: number | Uint8Array): number {
  if (end - start < (typeof needle === 'number' ? 1 : needle.length)) return -1;
  const i = Buffer.from(storage.buffer, storage.byteOffset + start, end - start).indexOf(needle);
  return i < 0 ? -1 : start + i;
}

function checkBytes(what: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(what, value, 'a Uint8Array');
}

function checkCount(method: string, n: unknown): asserts n is number {
  if (typeof n !== 'number' || !(n >= 0) || !(Number.isInteger(n) || n === Infinity)) {
    throw new InvalidArgumentError(`RingBuffer.${method}() count`, n, 'a non-negative integer');
  }
}

function checkOffset(method: string, offset: unknown): asserts offset is number {
  if (!Number.isInteger(offset) || (offset as number) < 0) {
    throw new InvalidArgumentError(`RingBuffer.${method}() offset`, offset, 'a non-negative integer');
  }
}
