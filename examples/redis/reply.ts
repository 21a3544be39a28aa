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
  #chunk: Buffer = Buffer.allocUnsafeSlow(kChunkBytes);
  #start = 0;
  #pos = 0;
  /** Size of the next chunk reserve() starts. */
  #nextChunkBytes = kChunkBytes;
  readonly #pieces: Uint8Array[] = [];
  #piecesBytes = 0;

  /** Bytes built since the last writeTo(). */
  get pending(): number {
    return this.#piecesBytes + this.#pos - this.#start;
  }

  /**
   * Hands everything built since the last call to `sink`, piece by piece in order, and starts
   * afresh. Returns false when any write returned false (every piece is written all the same).
   */
  writeTo(sink: ReplySink): boolean {
    this.seal();
    const pieces = this.#pieces;
    let more = true;
    try {
      for (let i = 0; i < pieces.length; i++) {
        if (!sink.write(pieces[i]!)) more = false;
      }
    } finally {
      pieces.length = 0;
      this.#piecesBytes = 0;
    }
    if (this.#chunk.length > kChunkBytes) {
      this.#chunk = kEmptyChunk;
      this.#start = this.#pos = 0;
    }
    this.#nextChunkBytes = kChunkBytes;
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
    const at = this.#pos;
    this.latin1(text);
    for (let i = at; i < this.#pos; i++) {
      if (this.#chunk[i] === 0x0d || this.#chunk[i] === 0x0a) this.#chunk[i] = 0x20;
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
    this.#pieces.push(bytes);
    this.#piecesBytes += n;
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
    if (this.#pos + n <= this.#chunk.length) return;
    this.seal();
    const size = Math.max(n, this.#nextChunkBytes);
    this.#nextChunkBytes = Math.min(this.#nextChunkBytes * 2, kChunkMaxBytes);
    this.#chunk = Buffer.allocUnsafeSlow(size);
    this.#start = this.#pos = 0;
  }

  /** Turns the open run into a piece. */
  private seal(): void {
    if (this.#pos === this.#start) return;
    this.#pieces.push(this.#chunk.subarray(this.#start, this.#pos));
    this.#piecesBytes += this.#pos - this.#start;
    this.#start = this.#pos;
  }

  /** Appends `bytes`; room must be reserved. */
  private copyIn(bytes: Uint8Array): void {
    const n = bytes.length;
    const chunk = this.#chunk;
    if (n <= 32) {
      let w = this.#pos;
      for (let i = 0; i < n; i++) chunk[w++] = bytes[i]!;
    } else {
      chunk.set(bytes, this.#pos);
    }
    this.#pos += n;
  }

  private byte(b: number): void {
    this.#chunk[this.#pos++] = b;
  }

  private crlf(): void {
    this.#chunk[this.#pos++] = 0x0d;
    this.#chunk[this.#pos++] = 0x0a;
  }

  private latin1(text: string): void {
    const n = text.length;
    const chunk = this.#chunk;
    let w = this.#pos;
    if (n <= 32) {
      for (let i = 0; i < n; i++) chunk[w++] = text.charCodeAt(i) & 0xff;
    } else {
      w += chunk.write(text, w, n, 'latin1');
    }
    this.#pos = w;
  }

  /** Writes `n` in decimal; room for 20 digits and a sign must be reserved. */
  private decimal(n: number | bigint): void {
    if (typeof n === 'bigint' || !Number.isSafeInteger(n)) {
      this.latin1(String(n));
      return;
    }
    const chunk = this.#chunk;
    if (n < 0) {
      chunk[this.#pos++] = 0x2d;
      n = -n;
    }
    let digits = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
    let w = this.#pos + digits;
    this.#pos = w;
    do {
      chunk[--w] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }
}
