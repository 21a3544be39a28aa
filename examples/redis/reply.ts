/**
 * RESP2 reply encoders writing into one growing output buffer, so that every reply produced by one
 * `data` call (however many pipelined commands it ran) leaves in a single write.
 *
 *   chunk: [ handed out earlier | pending: [start, pos) | free ... ]
 *
 * Bytes handed out by take() are never written again: the loop may read them after `data` returns.
 * When pending plus a new reply does not fit, a new chunk is allocated and the pending bytes move
 * to its start; the old chunk lives on only as long as the views already handed out.
 *
 * Strings are written as latin1 (one byte per char), the inverse of Args.str(), so binary keys
 * and arguments echo back unchanged. A ReplyWriter belongs to one loop.
 */
import { Buffer } from 'node:buffer';

/** Size of a fresh output chunk. */
const kChunkBytes = 64 * 1024;

const kOk = Buffer.from('+OK\r\n');
const kPong = Buffer.from('+PONG\r\n');
const kNullBulk = Buffer.from('$-1\r\n');
const kNullArray = Buffer.from('*-1\r\n');
const kZero = Buffer.from(':0\r\n');
const kOne = Buffer.from(':1\r\n');

/** The output buffer of one loop; see the file comment. */
export class ReplyWriter {
  private kChunk: Buffer = Buffer.allocUnsafeSlow(kChunkBytes);
  private kStart = 0;
  private kPos = 0;

  /** Bytes written since the last take(). */
  get pending(): number {
    return this.kPos - this.kStart;
  }

  /** Hands out everything written since the last take() (null when nothing was), and starts afresh. */
  take(): Buffer | null {
    if (this.kPos === this.kStart) return null;
    const out = this.kChunk.subarray(this.kStart, this.kPos);
    this.kStart = this.kPos;
    return out;
  }

  /** `+OK`. */
  ok(): void {
    this.raw(kOk);
  }

  /** `+PONG`. */
  pong(): void {
    this.raw(kPong);
  }

  /** A simple string (`+text`); `text` must hold no CR or LF. */
  simple(text: string): void {
    this.reserve(text.length + 3);
    this.byte(0x2b);
    this.latin1(text);
    this.crlf();
  }

  /** An error reply; `text` is what follows the `-` (`ERR ...`, `WRONGTYPE ...`). CR and LF become spaces, as Redis does. */
  error(text: string): void {
    this.reserve(text.length + 3);
    this.byte(0x2d);
    const at = this.kPos;
    this.latin1(text);
    for (let i = at; i < this.kPos; i++) {
      if (this.kChunk[i] === 0x0d || this.kChunk[i] === 0x0a) this.kChunk[i] = 0x20;
    }
    this.crlf();
  }

  /** An integer reply (`:n`), for any 64-bit value. */
  integer(n: number | bigint): void {
    if (n === 0) this.raw(kZero);
    else if (n === 1) this.raw(kOne);
    else {
      this.reserve(24);
      this.byte(0x3a);
      this.decimal(n);
      this.crlf();
    }
  }

  /** A bulk string holding `bytes`. */
  bulk(bytes: Uint8Array): void {
    const n = bytes.length;
    this.reserve(n + 16);
    this.byte(0x24);
    this.decimal(n);
    this.crlf();
    this.copyIn(bytes);
    this.crlf();
  }

  /** A bulk string holding `text` as latin1. */
  bulkString(text: string): void {
    this.reserve(text.length + 16);
    this.byte(0x24);
    this.decimal(text.length);
    this.crlf();
    this.latin1(text);
    this.crlf();
  }

  /** A bulk string holding a stored value (a latin1 string or bytes). */
  value(v: string | Uint8Array): void {
    if (typeof v === 'string') this.bulkString(v);
    else this.bulk(v);
  }

  /** The null bulk string (`$-1`), Redis's nil. */
  nullBulk(): void {
    this.raw(kNullBulk);
  }

  /** The null array (`*-1`). */
  nullArray(): void {
    this.raw(kNullArray);
  }

  /** An array header; the caller then writes `n` replies. */
  arrayHeader(n: number): void {
    this.reserve(16);
    this.byte(0x2a);
    this.decimal(n);
    this.crlf();
  }

  /** Bytes that are already a complete reply. */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.reserve(n);
    this.copyIn(bytes);
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Makes room for `n` more bytes, moving the pending bytes to a new chunk when needed. */
  private reserve(n: number): void {
    if (this.kPos + n <= this.kChunk.length) return;
    const pending = this.kPos - this.kStart;
    const next = Buffer.allocUnsafeSlow(pending + n + kChunkBytes);
    this.kChunk.copy(next, 0, this.kStart, this.kPos);
    this.kChunk = next;
    this.kStart = 0;
    this.kPos = pending;
  }

  /** Appends `bytes`; room must be reserved. */
  private copyIn(bytes: Uint8Array): void {
    const n = bytes.length;
    const chunk = this.kChunk;
    if (n <= 32) {
      let w = this.kPos;
      for (let i = 0; i < n; i++) chunk[w++] = bytes[i]!;
    } else {
      chunk.set(bytes, this.kPos);
    }
    this.kPos += n;
  }

  private byte(b: number): void {
    this.kChunk[this.kPos++] = b;
  }

  private crlf(): void {
    this.kChunk[this.kPos++] = 0x0d;
    this.kChunk[this.kPos++] = 0x0a;
  }

  private latin1(text: string): void {
    const n = text.length;
    const chunk = this.kChunk;
    let w = this.kPos;
    if (n <= 32) {
      for (let i = 0; i < n; i++) chunk[w++] = text.charCodeAt(i) & 0xff;
    } else {
      w += chunk.write(text, w, n, 'latin1');
    }
    this.kPos = w;
  }

  /** Writes `n` in decimal; room for 20 digits and a sign must be reserved. */
  private decimal(n: number | bigint): void {
    if (typeof n === 'bigint' || !Number.isSafeInteger(n)) {
      this.latin1(String(n));
      return;
    }
    const chunk = this.kChunk;
    if (n < 0) {
      chunk[this.kPos++] = 0x2d;
      n = -n;
    }
    let digits = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
    let w = this.kPos + digits;
    this.kPos = w;
    do {
      chunk[--w] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }
}

