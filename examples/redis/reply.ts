/**
 * RESP2 reply encoders for one loop. Replies are built as a list of pieces and written to the
 * connection with writeTo(): small replies are encoded into a chunk, and large values go out by
 * reference, never copied.
 *
 *   pieces: [ chunk A [s, e) ][ stored value, by reference ][ chunk B [s, e) ] ...
 *   chunk:  [ written or sealed into pieces | open run: [start, pos) | free ... ]
 *
 * Invariants:
 *   - Bytes handed to writeTo()'s sink are never written again: the loop may read them after
 *     `data` returns. A chunk that runs out of room is sealed (its open run becomes a piece) and a
 *     new one is started; nothing built is ever copied again, so building a reply costs its size.
 *   - Between two writeTo() calls each new chunk is twice the size of the one before, up to
 *     kChunkMaxBytes (geometric growth); writeTo() drops a grown chunk, so between two `data`
 *     calls the writer holds no piece and at most one chunk of kChunkBytes.
 *   - A value passed to bulkShared() or value() must never change afterwards (stored values are
 *     immutable: the keyspace replaces a value, it never writes into one).
 *
 * Strings are written as latin1 (one byte per char), the inverse of Args.str(), so binary keys
 * and arguments echo back unchanged. A ReplyWriter belongs to one loop.
 */
import { Buffer } from 'node:buffer';

/** Size of a fresh output chunk. */
const kChunkBytes = 64 * 1024;
/** Largest chunk growth makes; a single reply larger than this gets a chunk of its own size. */
const kChunkMaxBytes = 4 * 1024 * 1024;
/** Values from this size up are written by reference rather than copied into a chunk. */
const kShareMinBytes = 16 * 1024;

const kEmptyChunk = Buffer.alloc(0);
const kOk = Buffer.from('+OK\r\n');
const kPong = Buffer.from('+PONG\r\n');
const kNullBulk = Buffer.from('$-1\r\n');
const kNullArray = Buffer.from('*-1\r\n');
const kZero = Buffer.from(':0\r\n');
const kOne = Buffer.from(':1\r\n');

/** Where writeTo() sends the pieces: a Conn, or anything with the same write(). */
export interface ReplySink {
  /** Queues `bytes`; false once the receiver wants no more for now (Conn.write's high-water mark). */
  write(bytes: Uint8Array): boolean;
}

/** The output buffer of one loop; see the file comment. */
export class ReplyWriter {
  private kChunk: Buffer = Buffer.allocUnsafeSlow(kChunkBytes);
  private kStart = 0;
  private kPos = 0;
  /** Size of the next chunk reserve() starts. */
  private kNextChunkBytes = kChunkBytes;
  private readonly kPieces: Uint8Array[] = [];
  private kPiecesBytes = 0;

  /** Bytes built since the last writeTo(). */
  get pending(): number {
    return this.kPiecesBytes + this.kPos - this.kStart;
  }

  /**
   * Hands everything built since the last call to `sink`, piece by piece in order, and starts
   * afresh. Returns false when any write returned false (every piece is written all the same).
   */
  writeTo(sink: ReplySink): boolean {
    this.seal();
    const pieces = this.kPieces;
    let more = true;
    try {
      for (let i = 0; i < pieces.length; i++) {
        if (!sink.write(pieces[i]!)) more = false;
      }
    } finally {
      pieces.length = 0;
      this.kPiecesBytes = 0;
    }
    if (this.kChunk.length > kChunkBytes) {
      this.kChunk = kEmptyChunk;
      this.kStart = this.kPos = 0;
    }
    this.kNextChunkBytes = kChunkBytes;
    return more;
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

  /**
   * A bulk string holding `bytes`, which are written by reference when large: they must never
   * change afterwards.
   */
  bulkShared(bytes: Uint8Array): void {
    const n = bytes.length;
    if (n < kShareMinBytes) {
      this.bulk(bytes);
      return;
    }
    this.reserve(24);
    this.byte(0x24);
    this.decimal(n);
    this.crlf();
    this.seal();
    this.kPieces.push(bytes);
    this.kPiecesBytes += n;
    this.reserve(2);
    this.crlf();
  }

  /** A bulk string holding a stored value (a latin1 string, or bytes that are never changed). */
  value(v: string | Uint8Array): void {
    if (typeof v === 'string') this.bulkString(v);
    else this.bulkShared(v);
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

  /**
   * Makes room for `n` more bytes in the chunk: when they do not fit, the open run is sealed into
   * a piece and a new chunk is started, of kNextChunkBytes (which doubles each time, up to
   * kChunkMaxBytes, until writeTo()) or `n` when that is larger. Nothing is copied.
   */
  private reserve(n: number): void {
    if (this.kPos + n <= this.kChunk.length) return;
    this.seal();
    const size = Math.max(n, this.kNextChunkBytes);
    this.kNextChunkBytes = Math.min(this.kNextChunkBytes * 2, kChunkMaxBytes);
    this.kChunk = Buffer.allocUnsafeSlow(size);
    this.kStart = this.kPos = 0;
  }

  /** Turns the open run into a piece. */
  private seal(): void {
    if (this.kPos === this.kStart) return;
    this.kPieces.push(this.kChunk.subarray(this.kStart, this.kPos));
    this.kPiecesBytes += this.kPos - this.kStart;
    this.kStart = this.kPos;
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

