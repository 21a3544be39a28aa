/**
 * An incremental RESP2 request parser: multibulk arrays of bulk strings (`*2\r\n$3\r\nGET\r\n...`)
 * and inline commands (`GET key\r\n`, split on blanks, with "double" and 'single' quotes), as
 * Redis reads them (networking.c: processMultibulkBuffer, processInlineBuffer; sds.c: sdssplitargs).
 *
 *   buf:   ... [ base ............................................ buf.length )
 *                 | command being parsed: pos = where scanning resumes
 *                 | starts[i]/ends[i] = argument i, relative to base
 *
 * One parser belongs to one connection. parse(buf, base) returns the command's length once it is
 * complete, 0 when more bytes are needed, or -1 on a protocol error (`error` holds Redis's text).
 * A partial command keeps its state: the caller must call again with the same command starting at
 * `base` (after consuming what came before it, at base 0), and scanning resumes where it stopped,
 * so a command that arrives in many reads is scanned once. `needBytes` then tells how many bytes,
 * counted from the command's start, must be present before another call can make progress (0 when
 * unknown), which lets a large bulk string arrive without any call at all.
 *
 * Invariants:
 *   - Outside parse(), state is Idle exactly when no partial command is held.
 *   - argc <= multibulk, and arguments 0..argc-1 lie inside [0, pos) relative to base.
 *   - The arguments of a complete command stay readable (through the Args methods) until the next
 *     parse() call or until the caller's buffer changes, whichever comes first.
 */
import { Buffer } from 'node:buffer';
import type { RingBuffer } from '../../src/index.js';

/** Longest inline request, and longest multibulk or bulk count line, without a line end (PROTO_INLINE_MAX_SIZE). */
export const kInlineMaxBytes = 64 * 1024;
/** Largest bulk string length accepted (proto-max-bulk-len, 512 MB). */
export const kMaxBulkBytes = 512 * 1024 * 1024;
/**
 * Largest multibulk count accepted: INT_MAX, as Redis 7 accepts from a client that needs no
 * password. Nothing is allocated from the count; the arguments that arrive are bounded by the
 * server's query limit (RedisServerOptions.maxQueryBytes).
 */
export const kMaxMultibulkArgs = 2147483647;

/** parse() found no complete command yet. */
export const kParseNeedMore = 0;
/** parse() found a protocol error; the connection must be answered with `-ERR Protocol error: ...` and closed. */
export const kParseError = -1;

const kIdle = 0;
const kInline = 1;
const kMultibulkCount = 2;
const kMultibulkArgs = 3;

const CR = 13;
const LF = 10;
/** Longest count or length line parsed by the fast path in readLength(); longer ones take the strict path. */
const kFastDigits = 15;
const kInitialArgSlots = 8;
/** An argument table larger than this is dropped once its command is done, rather than kept for the next. */
const kKeptArgSlots = 1024;
/** An inline buffer larger than this is dropped once its command is done. */
const kKeptInlineBytes = 4096;
const kEmpty = Buffer.alloc(0);

/** Buffer's own latin1 decoder, without toString()'s encoding dispatch; toString() where it is missing. */
const latin1Slice: (this: Buffer, start: number, end: number) => string =
  (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, start: number, end: number) => string }).latin1Slice ??
  function (this: Buffer, start: number, end: number): string {
    return this.toString('latin1', start, end);
  };

/** Read access to the arguments of one command. Views returned are valid only while the command runs. */
export interface Args {
  readonly argc: number;
  /** Argument i as a latin1 string: one char per byte, so any bytes round-trip. */
  str(i: number): string;
  /** Argument i as a view into the input (do not keep it). */
  view(i: number): Buffer;
  /** Argument i copied into memory the caller owns. */
  copy(i: number): Buffer;
  /** Argument i as a value to keep: a latin1 string up to `maxStringBytes`, else a Buffer copy. */
  value(i: number, maxStringBytes: number): string | Buffer;
  /** Byte length of argument i. */
  len(i: number): number;
  /** Whether argument i equals `lower` (lowercase ASCII letters only), ignoring ASCII case. */
  is(i: number, lower: string): boolean;
  /** Argument i as a 64-bit integer in Redis's strict syntax (string2ll), or null. */
  int(i: number): number | bigint | null;
}

/** The incremental parser; see the file comment for the protocol. */
export class RespParser implements Args {
  /** Arguments of the last complete command (or parsed so far). */
  argc = 0;
  /** After kParseError: the message, without the `ERR Protocol error: ` prefix. */
  error = '';
  /** After kParseNeedMore: bytes from the command's start needed before progress is possible (0 = any more). */
  needBytes = 0;

  #state = kIdle;
  #pos = 0;
  #multibulk = 0;
  #bulkLen = -1;
  #starts = new Float64Array(kInitialArgSlots);
  #ends = new Float64Array(kInitialArgSlots);
  #src: Buffer = kEmpty;
  #srcBase = 0;
  #inlineBuf: Buffer = kEmpty;
  /** Where readLength() found the CR. */
  #lineEnd = 0;

  /**
   * Parses one command starting at `buf[base]`: returns its byte length when complete (argc may
   * be 0 for an empty line or `*0`, which Redis skips), kParseNeedMore, or kParseError.
   */
  parse(buf: Buffer, base: number): number {
    if (this.#state === kIdle) {
      if (base >= buf.length) return this.needMore(0);
      this.shrink();
      this.#pos = 0;
      this.#state = buf[base] === 0x2a ? kMultibulkCount : kInline;
    }
    return this.#state === kInline ? this.parseInline(buf, base) : this.parseMultibulk(buf, base);
  }

  /** Drops any partial command (after an error, or to reuse the parser). */
  reset(): void {
    this.#state = kIdle;
    this.argc = 0;
    this.#pos = 0;
    this.needBytes = 0;
  }

  /** Memory the parser holds for the command in progress: its argument table and inline buffer. */
  get heldBytes(): number {
    return this.#starts.byteLength + this.#ends.byteLength + this.#inlineBuf.length;
  }

  /**
   * Forgets the buffer of the last command (its Args are no longer readable) and, when no partial
   * command is held, drops an argument table or inline buffer that grew large; so that between
   * reads the parser pins none of the input's storage, and a connection's one huge command does
   * not keep its memory.
   */
  detach(): void {
    this.#src = kEmpty;
    if (this.#state === kIdle) this.shrink();
  }

  // ---- Args ------------------------------------------------------------------------------------

  str(i: number): string {
    const b = this.#srcBase;
    return latin1Slice.call(this.#src, b + this.#starts[i]!, b + this.#ends[i]!);
  }

  view(i: number): Buffer {
    const b = this.#srcBase;
    return this.#src.subarray(b + this.#starts[i]!, b + this.#ends[i]!);
  }

  copy(i: number): Buffer {
    const b = this.#srcBase;
    const s = b + this.#starts[i]!;
    const n = b + this.#ends[i]! - s;
    const out = Buffer.allocUnsafe(n);
    const src = this.#src;
    if (n <= 32) {
      for (let k = 0; k < n; k++) out[k] = src[s + k]!;
    } else {
      src.copy(out, 0, s, s + n);
    }
    return out;
  }

  value(i: number, maxStringBytes: number): string | Buffer {
    return this.#ends[i]! - this.#starts[i]! <= maxStringBytes ? this.str(i) : this.copy(i);
  }

  len(i: number): number {
    return this.#ends[i]! - this.#starts[i]!;
  }

  is(i: number, lower: string): boolean {
    const b = this.#srcBase;
    const s = b + this.#starts[i]!;
    const n = lower.length;
    if (b + this.#ends[i]! - s !== n) return false;
    const src = this.#src;
    for (let k = 0; k < n; k++) {
      if ((src[s + k]! | 0x20) !== lower.charCodeAt(k)) return false;
    }
    return true;
  }

  int(i: number): number | bigint | null {
    const b = this.#srcBase;
    return parseInt64(this.#src, b + this.#starts[i]!, b + this.#ends[i]!);
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * The fast path for a count or length line starting at `p`: plain digits (no sign, no leading
   * zero, at most kFastDigits), then CR and at least one more byte. Returns the value and sets
   * kLineEnd to the CR, or -1 for anything else, which the caller then parses the strict way.
   */
  private readLength(buf: Buffer, p: number): number {
    const len = buf.length;
    const end = Math.min(len, p + kFastDigits);
    let v = 0;
    let i = p;
    for (; i < end; i++) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
    }
    if (i === p || i + 1 >= len || buf[i] !== CR || (buf[p] === 0x30 && i - p > 1)) return -1;
    this.#lineEnd = i;
    return v;
  }

  /** Between commands: forgets the last one's arguments, and drops a table or inline buffer that grew large. */
  private shrink(): void {
    this.argc = 0;
    if (this.#starts.length > kKeptArgSlots) {
      this.#starts = new Float64Array(kInitialArgSlots);
      this.#ends = new Float64Array(kInitialArgSlots);
    }
    if (this.#inlineBuf.length > kKeptInlineBytes) this.#inlineBuf = kEmpty;
  }

  private needMore(needBytes: number): number {
    this.needBytes = needBytes;
    return kParseNeedMore;
  }

  private fail(message: string): number {
    this.reset();
    this.error = message;
    return kParseError;
  }

  private complete(src: Buffer, srcBase: number, length: number): number {
    this.#src = src;
    this.#srcBase = srcBase;
    this.#state = kIdle;
    this.needBytes = 0;
    return length;
  }

  private pushArg(start: number, end: number): void {
    const n = this.argc;
    if (n === this.#starts.length) {
      const starts = new Float64Array(n * 2);
      const ends = new Float64Array(n * 2);
      starts.set(this.#starts);
      ends.set(this.#ends);
      this.#starts = starts;
      this.#ends = ends;
    }
    this.#starts[n] = start;
    this.#ends[n] = end;
    this.argc = n + 1;
  }

  private parseMultibulk(buf: Buffer, base: number): number {
    const len = buf.length;
    let p = base + this.#pos;
    if (this.#state === kMultibulkCount) {
      let n: number | bigint | null = this.readLength(buf, p + 1);
      let cr = this.#lineEnd;
      if (n < 0) {
        cr = buf.indexOf(CR, p);
        if (cr < 0 || cr + 1 >= len) {
          if (cr < 0 && len - base > kInlineMaxBytes) return this.fail('too big mbulk count string');
          return this.needMore(0);
        }
        n = parseInt64(buf, p + 1, cr);
      }
      if (n === null || n > kMaxMultibulkArgs) return this.fail('invalid multibulk length');
      p = cr + 2;
      if (n <= 0) return this.complete(buf, base, p - base);
      this.#multibulk = Number(n);
      this.#bulkLen = -1;
      this.#state = kMultibulkArgs;
    }
    const want = this.#multibulk;
    while (this.argc < want) {
      if (this.#bulkLen < 0) {
        let n: number | bigint | null = buf[p] === 0x24 ? this.readLength(buf, p + 1) : -1;
        let cr = this.#lineEnd;
        if (n < 0) {
          cr = p < len ? buf.indexOf(CR, p) : -1;
          if (cr < 0 || cr + 1 >= len) {
            if (cr < 0 && len - p > kInlineMaxBytes) return this.fail('too big bulk count string');
            break;
          }
          if (buf[p] !== 0x24) return this.fail(`expected '$', got '${String.fromCharCode(buf[p]!)}'`);
          n = parseInt64(buf, p + 1, cr);
        }
        if (n === null || n < 0 || n > kMaxBulkBytes) return this.fail('invalid bulk length');
        this.#bulkLen = Number(n);
        p = cr + 2;
      }
      const bulk = this.#bulkLen;
      if (len - p < bulk + 2) {
        this.#pos = p - base;
        return this.needMore(p - base + bulk + 2);
      }
      this.pushArg(p - base, p - base + bulk);
      p += bulk + 2;
      this.#bulkLen = -1;
    }
    this.#pos = p - base;
    if (this.argc < want) return this.needMore(0);
    return this.complete(buf, base, p - base);
  }

  private parseInline(buf: Buffer, base: number): number {
    const nl = buf.indexOf(LF, base + this.#pos);
    if (nl < 0) {
      if (buf.length - base > kInlineMaxBytes) return this.fail('too big inline request');
      this.#pos = buf.length - base;
      return this.needMore(0);
    }
    let end = nl;
    if (end > base && buf[end - 1] === CR) end--;
    if (!this.splitArgs(buf, base, end)) return this.fail('unbalanced quotes in request');
    return this.complete(this.#inlineBuf, 0, nl + 1 - base);
  }

  /**
   * Splits buf[start, end) like sdssplitargs into kInlineBuf: blanks separate arguments, "..."
   * takes \n \r \t \b \a \xHH and \<any> escapes, '...' takes \' only, and a closing quote must be
   * followed by a blank or the end. A NUL byte ends the line, as it ends Redis's C string.
   */
  private splitArgs(buf: Buffer, start: number, end: number): boolean {
    const nul = buf.indexOf(0, start);
    if (nul >= 0 && nul < end) end = nul;
    if (this.#inlineBuf.length < end - start) this.#inlineBuf = Buffer.allocUnsafe(Math.max(64, (end - start) * 2));
    const out = this.#inlineBuf;
    let w = 0;
    let p = start;
    this.argc = 0;
    for (;;) {
      while (p < end && isSpace(buf[p]!)) p++;
      if (p >= end) return true;
      const argStart = w;
      let inDq = false;
      let inSq = false;
      for (;;) {
        const ch = p < end ? buf[p]! : -1;
        if (inDq) {
          if (ch === 0x5c && p + 3 < end && buf[p + 1] === 0x78 && isHex(buf[p + 2]!) && isHex(buf[p + 3]!)) {
            out[w++] = (hexValue(buf[p + 2]!) << 4) | hexValue(buf[p + 3]!);
            p += 3;
          } else if (ch === 0x5c && p + 1 < end) {
            p++;
            out[w++] = unescape(buf[p]!);
          } else if (ch === 0x22) {
            if (p + 1 < end && !isSpace(buf[p + 1]!)) return false;
            p++;
            break;
          } else if (ch < 0) {
            return false;
          } else {
            out[w++] = ch;
          }
        } else if (inSq) {
          if (ch === 0x5c && p + 1 < end && buf[p + 1] === 0x27) {
            p++;
            out[w++] = 0x27;
          } else if (ch === 0x27) {
            if (p + 1 < end && !isSpace(buf[p + 1]!)) return false;
            p++;
            break;
          } else if (ch < 0) {
            return false;
          } else {
            out[w++] = ch;
          }
        } else if (ch < 0 || ch === 0x20 || ch === LF || ch === CR || ch === 0x09) {
          if (ch >= 0) p++;
          break;
        } else if (ch === 0x22) {
          inDq = true;
        } else if (ch === 0x27) {
          inSq = true;
        } else {
          out[w++] = ch;
        }
        p++;
      }
      this.pushArg(argStart, w);
    }
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66);
}

function hexValue(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}

function unescape(b: number): number {
  switch (b) {
    case 0x6e:
      return LF;
    case 0x72:
      return CR;
    case 0x74:
      return 0x09;
    case 0x62:
      return 0x08;
    case 0x61:
      return 0x07;
    default:
      return b;
  }
}

const kInt64Max = 9223372036854775807n;
const kInt64Min = -9223372036854775808n;

/**
 * Parses bytes [start, end) as a signed 64-bit integer in Redis's strict syntax (string2ll): an
 * optional '-', then digits with no leading zero ("0" alone is fine, "-0" is not), nothing else,
 * at most 20 characters. Returns a number when it is a safe integer, a bigint beyond that, or null.
 */
export function parseInt64(buf: Uint8Array, start: number, end: number): number | bigint | null {
  const n = end - start;
  if (n <= 0 || n > 20) return null;
  let p = start;
  const negative = buf[p] === 0x2d;
  if (negative) {
    p++;
    if (p === end) return null;
  }
  const first = buf[p]!;
  if (first === 0x30) return n === 1 ? 0 : null;
  if (first < 0x31 || first > 0x39) return null;
  if (end - p <= 15) {
    let v = 0;
    for (; p < end; p++) {
      const d = buf[p]! - 0x30;
      if (d < 0 || d > 9) return null;
      v = v * 10 + d;
    }
    return negative ? -v : v;
  }
  let v = 0n;
  for (; p < end; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10n + BigInt(d);
  }
  if (negative) v = -v;
  if (v > kInt64Max || v < kInt64Min) return null;
  const asNumber = Number(v);
  return Number.isSafeInteger(asNumber) ? asNumber : v;
}

/** How readCommands() ended: input used up (a partial command may be held), stopped by the visitor, or a protocol error. */
export type ReadResult = 'drained' | 'stopped' | 'error';

/**
 * Parses the unconsumed bytes of `input` with `parser`, calls `visit` with each complete command
 * that has arguments (Redis skips empty ones), and consumes what was parsed; a partial command
 * stays in `input` for the next call. When `visit` returns false it stops after consuming that
 * command, leaving the commands after it in `input` ('stopped'); on a protocol error it consumes
 * everything (`parser.error` says why). On return the parser holds no view of `input`.
 *
 * `input` is scanned in place. When its bytes wrap around the end of its storage, the commands
 * before the end are parsed where they lie; only a command that crosses the end is moved, with
 * what follows it, to the storage's start (once: the parser resumes where it stopped), so every
 * byte is copied at most once per pass of the ring, however long a backlog waits in `input`.
 */
export function readCommands(input: RingBuffer, parser: RespParser, visit: (args: Args) => boolean): ReadResult {
  if (input.length < parser.needBytes) return 'drained';
  let [view, rest] = input.peekAll();
  let buf = asBuffer(view);
  let at = 0;
  let result: ReadResult = 'drained';
  try {
    for (;;) {
      const n = at < buf.length ? parser.parse(buf, at) : kParseNeedMore;
      // A command cut by the end of storage (or failing on a limit that the bytes after the end
      // may satisfy: the parser starts it afresh) is parsed again with the bytes made contiguous.
      if (rest.length > 0 && (n === kParseError || (n === kParseNeedMore && input.length - at >= parser.needBytes))) {
        input.retrieve(at);
        at = 0;
        if (input.length > rest.length) {
          const all = input.bytes();
          input.retrieveAll();
          input.write(all);
        }
        [view, rest] = input.peekAll();
        buf = asBuffer(view);
        continue;
      }
      if (n === kParseNeedMore) break;
      if (n === kParseError) {
        result = 'error';
        break;
      }
      at += n;
      if (parser.argc > 0 && !visit(parser)) {
        result = 'stopped';
        break;
      }
    }
  } finally {
    if (result === 'error') input.retrieveAll();
    else input.retrieve(at);
    parser.detach();
  }
  return result;
}

function asBuffer(view: Uint8Array): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}
