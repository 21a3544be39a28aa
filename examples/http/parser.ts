/**
 * An incremental HTTP/1.1 request parser over a connection's RingBuffer input. Pure: it does no
 * I/O and keeps no timers, so it can be driven from a test with RingBuffer.withData().
 *
 *   input  [CR/LF...][request-line CRLF *(field-line CRLF) CRLF][body][next request ...]
 *           skipped    found with one byte scan for CRLFCRLF,     copied out as it arrives
 *                      then parsed line by line (<= maxHeadBytes)  (<= maxBodyBytes, and
 *                                                                    room in the BodyBudget)
 *
 *   Head --no body--------------------------------------------------> Head (request done)
 *   Head --Content-Length n > 0--> Body --n bytes--------------------> Head
 *   Head --chunked--> ChunkSize --n > 0--> ChunkData --> ChunkDataEnd --> ChunkSize
 *                               --0-----> Trailers --empty line---------> Head
 *   any state --malformed, over a limit or over the budget--> failed (sticky: every later parse()
 *                                                             returns the error)
 *
 * Line ends follow node:http (llhttp): CR and LF bytes before a request line are skipped, and
 * inside a head or chunked framing every line ends in CRLF. A bare LF, or a CR followed by
 * anything but LF, is a 400 as soon as it arrives, even in a head not yet complete.
 *
 * Invariants:
 *   - Every byte before the parser's position is consumed from the input when parse() returns, so
 *     the input never holds more than one unfinished head or chunk-size/trailer line: a body is
 *     copied out as it arrives, into one buffer (`body`, of exactly Content-Length bytes, or
 *     doubling for chunks), instead of waiting in the input.
 *   - `headScanned` counts bytes at the start of the input already searched for CRLFCRLF without
 *     success; the next search starts 3 bytes before its end (a CRLFCRLF may straddle it), so
 *     a slowly arriving head is not scanned again from its start.
 *   - `current` is non-null exactly in the body states: the request whose head is parsed and whose
 *     body is not complete.
 *   - `held` is what this parser has taken from the BodyBudget: `body.length` while a body is
 *     being read, 0 otherwise.
 */
import type { RingBuffer } from '../../src/index.js';
import type { BodyBudget } from './budget.js';
import {
  BadRequestError,
  BodyBudgetError,
  ContentTooLargeError,
  HeaderFieldsTooLargeError,
  HttpError,
} from './errors.js';

/** Size limits; going over one ends the connection with 431 (head) or 413 (body). */
export interface HttpLimits {
  /** Request line plus header fields plus the blank line, in bytes; also bounds a chunked trailer. */
  maxHeadBytes: number;
  /** Decoded body bytes (the sum of a chunked body's chunks). */
  maxBodyBytes: number;
}

/** 8 KiB of head, 1 MiB of body. */
export const kDefaultLimits: Readonly<HttpLimits> = Object.freeze({
  maxHeadBytes: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
});

/** A chunk-size line (size, extensions, CRLF) longer than this is a 400. */
const kMaxChunkLineBytes = 4096;
/** Chunk sizes above this (2^40 - 1) are read as Infinity, which no body limit allows. */
const kMaxChunkSize = 0xffffffffff;

const kNoBody = Buffer.alloc(0);

/** One parsed request. Strings are decoded as latin1, so every byte maps to one char. */
export class HttpRequest {
  /** The body (empty when there is none); set by the parser once it is complete. */
  body: Uint8Array = kNoBody;

  constructor(
    readonly method: string,
    /** The request-target as sent: origin-form (`/a?b`), absolute-form, `*` or authority-form. */
    readonly target: string,
    /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
    readonly minorVersion: 0 | 1,
    /** Field names (lower-case) and values (without surrounding whitespace), alternating. */
    readonly headers: readonly string[],
    /** Whether the connection stays open after the response (version default, then `Connection`). */
    readonly keepAlive: boolean,
    /** `Expect: 100-continue` on an HTTP/1.1 request. */
    readonly expectContinue: boolean,
  ) {}

  /** The target's path, without the query; for absolute-form the path after the authority. */
  get path(): string {
    let t = this.target;
    if (t.charCodeAt(0) !== 0x2f) {
      const scheme = t.indexOf('://');
      if (scheme < 0) return t;
      const slash = t.indexOf('/', scheme + 3);
      t = slash < 0 ? '/' : t.slice(slash);
    }
    const q = t.indexOf('?');
    return q < 0 ? t : t.slice(0, q);
  }

  /** The values of every field named `name` (any case), joined with ", "; undefined when absent. */
  header(name: string): string | undefined {
    const want = name.toLowerCase();
    let found: string | undefined;
    for (let i = 0; i < this.headers.length; i += 2) {
      if (this.headers[i] === want)
        found = found === undefined ? this.headers[i + 1] : `${found}, ${this.headers[i + 1]}`;
    }
    return found;
  }
}

const enum State {
  Head,
  Body,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const kHeadEnd = Buffer.from('\r\n\r\n', 'latin1');

/** tchar (RFC 9110 §5.6.2): the bytes allowed in a method and a field name. */
const kTchar = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  kTchar[ch.charCodeAt(0)] = 1;

/** Field-value bytes: HTAB, visible ASCII, space and obs-text; no other control byte, no DEL. */
function isValueByte(b: number): boolean {
  return b === HTAB || (b >= SP && b !== 0x7f);
}

/** Reads a contiguous view of every readable byte; copies only when the ring buffer wraps. */
function contiguous(input: RingBuffer): Buffer {
  const [first, end] = input.peekAll();
  if (end.length === 0) return Buffer.from(first.buffer, first.byteOffset, first.length);
  return Buffer.concat([first, end], first.length + end.length);
}

/** What a step did: made progress, needs more input, or failed. */
type Step = boolean | HttpError;

/**
 * The parser for one connection. Owned by that connection's loop; feed it the connection's input
 * on every `data` call, and call dispose() when the connection closes.
 */
export class HttpParser {
  readonly #limits: HttpLimits;
  readonly #budget: BodyBudget | null;
  #held = 0;
  #state = State.Head;
  #pos = 0;
  #headScanned = 0;
  #failure: HttpError | null = null;
  #current: HttpRequest | null = null;
  #remaining = 0;
  #body: Buffer = kNoBody;
  #bodyBytes = 0;
  #trailerBytes = 0;

  /** `budget`: where body buffers take their room from (shared by a loop's parsers); null for none. */
  constructor(limits: Partial<HttpLimits> = {}, budget: BodyBudget | null = null) {
    this.#limits = { ...kDefaultLimits, ...limits };
    this.#budget = budget;
  }

  /** The request whose head is parsed and whose body is still arriving, if any. */
  get pending(): HttpRequest | null {
    return this.#current;
  }

  /** True between requests and while a head is arriving; false once a head is parsed and its body is not complete. */
  get awaitingHead(): boolean {
    return this.#state === State.Head;
  }

  /** Gives back the body's room in the budget; for a connection that closed (or a parser no longer fed). */
  dispose(): void {
    this.dropBody();
  }

  /**
   * Parses every complete request in `input`, appends them to `out` in order and consumes their
   * bytes. Returns null when the rest is an unfinished request (keep feeding), or the error that
   * stopped parsing: the requests before it are still in `out`, and the connection should get the
   * error's status and be closed.
   */
  parse(input: RingBuffer, out: HttpRequest[]): HttpError | null {
    if (this.#failure !== null) return this.#failure;
    if (input.length === 0) return null;
    const buf = contiguous(input);
    this.#pos = 0;
    let step: Step = true;
    while (step === true) step = this.step(buf, out);
    input.retrieve(this.#pos);
    if (step === false) return null;
    this.#failure = step;
    this.dropBody();
    return step;
  }

  private step(buf: Buffer, out: HttpRequest[]): Step {
    switch (this.#state) {
      case State.Head:
        return this.head(buf, out);
      case State.Body:
        return this.copyBody(buf, State.Head, out);
      case State.ChunkSize:
        return this.chunkSize(buf);
      case State.ChunkData:
        return this.copyBody(buf, State.ChunkDataEnd, out);
      case State.ChunkDataEnd:
        return this.chunkDataEnd(buf);
      case State.Trailers:
        return this.trailers(buf, out);
    }
  }

  private head(buf: Buffer, out: HttpRequest[]): Step {
    let p = this.#pos;
    while (p < buf.length && (buf[p] === CR || buf[p] === LF)) p++;
    if (p !== this.#pos) {
      this.#pos = p;
      this.#headScanned = 0;
    }
    if (p >= buf.length) return false;
    const max = this.#limits.maxHeadBytes;
    const hay = buf.length - p > max ? buf.subarray(0, p + max) : buf;
    const end = hay.indexOf(kHeadEnd, p + Math.max(0, this.#headScanned - 3));
    if (end < 0) {
      const bad = badLineEnd(hay, p + Math.max(0, this.#headScanned - 1));
      if (bad !== null) return bad;
      if (buf.length - p >= max) return new HeaderFieldsTooLargeError(max);
      this.#headScanned = hay.length - p;
      return false;
    }
    this.#headScanned = 0;
    const request = this.parseHead(buf, p, end);
    if (request instanceof HttpError) return request;
    this.#pos = end + 4;
    return this.frame(request, out);
  }

  /** Parses the head in buf[start, end) (`end` is where CRLFCRLF begins) into a request. */
  private parseHead(buf: Buffer, start: number, end: number): HttpRequest | HttpError {
    let lineEnd = lineEndAt(buf, start);
    if (lineEnd < 0) return new BadRequestError('a line ends in a bare LF');
    const line = requestLine(buf, start, lineEnd);
    if (line instanceof HttpError) return line;
    const headers: string[] = [];
    let host = 0;
    let connection: string | undefined;
    let expect: string | undefined;
    let p = lineEnd + 2;
    while (p <= end) {
      lineEnd = lineEndAt(buf, p);
      if (lineEnd < 0) return new BadRequestError('a line ends in a bare LF');
      const name = fieldLine(buf, p, lineEnd, headers);
      if (name instanceof HttpError) return name;
      if (name === 'host') host++;
      else if (name === 'connection')
        connection =
          connection === undefined ? headers[headers.length - 1] : `${connection}, ${headers[headers.length - 1]}`;
      else if (name === 'expect') expect = headers[headers.length - 1];
      p = lineEnd + 2;
    }
    const minor = line.minor;
    if (minor === 1 && host !== 1)
      return new BadRequestError(host === 0 ? 'HTTP/1.1 request without Host' : 'more than one Host field');
    let keepAlive = minor === 1;
    if (connection !== undefined) {
      for (const token of connection.toLowerCase().split(',')) {
        const t = token.trim();
        if (t === 'close') {
          keepAlive = false;
          break;
        }
        if (t === 'keep-alive') keepAlive = true;
      }
    }
    const expectContinue = minor === 1 && expect !== undefined && expect.toLowerCase() === '100-continue';
    return new HttpRequest(line.method, line.target, minor, headers, keepAlive, expectContinue);
  }

  /** Decides the body's framing from Content-Length / Transfer-Encoding and enters its state. */
  private frame(request: HttpRequest, out: HttpRequest[]): Step {
    let te: string | undefined;
    let cl: string | undefined;
    const h = request.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      if (name === 'transfer-encoding') te = te === undefined ? h[i + 1]! : `${te}, ${h[i + 1]!}`;
      else if (name === 'content-length') {
        const v = h[i + 1]!;
        if (cl !== undefined && cl !== v) return new BadRequestError('conflicting Content-Length fields');
        cl = v;
      }
    }
    if (te !== undefined) {
      if (request.minorVersion === 0) return new BadRequestError('Transfer-Encoding in an HTTP/1.0 request');
      if (cl !== undefined) return new BadRequestError('both Transfer-Encoding and Content-Length');
      if (te.trim().toLowerCase() !== 'chunked') return new BadRequestError(`unsupported Transfer-Encoding: ${te}`);
      this.begin(request, State.ChunkSize);
      return true;
    }
    if (cl !== undefined) {
      const n = contentLength(cl);
      if (Number.isNaN(n)) return new BadRequestError(`invalid Content-Length: ${cl}`);
      if (n > this.#limits.maxBodyBytes) return new ContentTooLargeError(n, this.#limits.maxBodyBytes);
      if (n > 0) {
        this.begin(request, State.Body);
        const refused = this.reserve(n);
        if (refused !== null) return refused;
        this.#remaining = n;
        return true;
      }
    }
    out.push(request);
    return true;
  }

  private begin(request: HttpRequest, state: State): void {
    this.#current = request;
    this.#state = state;
    this.#body = kNoBody;
    this.#bodyBytes = 0;
  }

  /**
   * Makes room for `n` more body bytes: exactly, or by doubling (up to maxBodyBytes) for chunks,
   * taking the growth from the budget. Returns the 503 when the budget has no room even for `n`.
   */
  private reserve(n: number): HttpError | null {
    const needed = this.#bodyBytes + n;
    if (needed <= this.#body.length) return null;
    let size = Math.max(needed, Math.min(2 * this.#body.length, this.#limits.maxBodyBytes));
    const budget = this.#budget;
    if (budget !== null) {
      if (!budget.take(size - this.#held)) {
        if (size === needed || !budget.take(needed - this.#held)) return new BodyBudgetError(n, budget.limitBytes);
        size = needed;
      }
      this.#held = size;
    }
    const grown = Buffer.allocUnsafe(size);
    this.#body.copy(grown, 0, 0, this.#bodyBytes);
    this.#body = grown;
    return null;
  }

  /** Lets go of the body buffer and gives its room back to the budget. */
  private dropBody(): void {
    this.#body = kNoBody;
    if (this.#held === 0) return;
    this.#budget!.give(this.#held);
    this.#held = 0;
  }

  private finish(out: HttpRequest[]): void {
    const request = this.#current!;
    if (this.#bodyBytes > 0)
      request.body = this.#body.length === this.#bodyBytes ? this.#body : this.#body.subarray(0, this.#bodyBytes);
    out.push(request);
    this.#current = null;
    this.dropBody();
    this.#state = State.Head;
  }

  /** Copies up to `remaining` body bytes; on the last one, moves to `next` (Head: the request is done). */
  private copyBody(buf: Buffer, next: State, out: HttpRequest[]): Step {
    const take = Math.min(buf.length - this.#pos, this.#remaining);
    if (take === 0) return false;
    buf.copy(this.#body, this.#bodyBytes, this.#pos, this.#pos + take);
    this.#pos += take;
    this.#remaining -= take;
    this.#bodyBytes += take;
    if (this.#remaining > 0) return false;
    if (next === State.Head) this.finish(out);
    else this.#state = next;
    return true;
  }

  /** chunk-size [ chunk-ext ] CRLF, where chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ). */
  private chunkSize(buf: Buffer): Step {
    const start = this.#pos;
    const lf = buf.indexOf(LF, start);
    if (lf < 0)
      return buf.length - start > kMaxChunkLineBytes ? new BadRequestError('chunk-size line too long') : false;
    if (lf - start > kMaxChunkLineBytes) return new BadRequestError('chunk-size line too long');
    if (lf === start || buf[lf - 1] !== CR) return new BadRequestError('a line ends in a bare LF');
    const end = lf - 1;
    let p = start;
    let size = 0;
    for (; p < end; p++) {
      const d = hexDigit(buf[p]!);
      if (d < 0) break;
      size = size * 16 + d;
      if (size > kMaxChunkSize) size = Infinity;
    }
    if (p === start) return new BadRequestError('missing chunk size');
    while (p < end && (buf[p] === SP || buf[p] === HTAB)) p++;
    if (p < end && buf[p] !== 0x3b) return new BadRequestError('invalid chunk size');
    for (; p < end; p++) if (!isValueByte(buf[p]!)) return new BadRequestError('invalid byte in a chunk extension');
    const total = this.#bodyBytes + size;
    if (total > this.#limits.maxBodyBytes) return new ContentTooLargeError(total, this.#limits.maxBodyBytes);
    if (size === 0) {
      this.#state = State.Trailers;
      this.#trailerBytes = 0;
    } else {
      const refused = this.reserve(size);
      if (refused !== null) return refused;
      this.#state = State.ChunkData;
      this.#remaining = size;
    }
    this.#pos = lf + 1;
    return true;
  }

  private chunkDataEnd(buf: Buffer): Step {
    const p = this.#pos;
    if (buf.length - p < 2)
      return buf.length > p && buf[p] !== CR ? new BadRequestError('chunk data not followed by CRLF') : false;
    if (buf[p] !== CR || buf[p + 1] !== LF) return new BadRequestError('chunk data not followed by CRLF');
    this.#pos = p + 2;
    this.#state = State.ChunkSize;
    return true;
  }

  /** trailer-section CRLF: field lines, checked and then dropped, up to maxHeadBytes in all. */
  private trailers(buf: Buffer, out: HttpRequest[]): Step {
    const max = this.#limits.maxHeadBytes;
    for (;;) {
      const start = this.#pos;
      const lf = buf.indexOf(LF, start);
      if (lf < 0) return this.#trailerBytes + (buf.length - start) >= max ? new HeaderFieldsTooLargeError(max) : false;
      this.#trailerBytes += lf + 1 - start;
      if (this.#trailerBytes > max) return new HeaderFieldsTooLargeError(max);
      if (lf === start || buf[lf - 1] !== CR) return new BadRequestError('a line ends in a bare LF');
      this.#pos = lf + 1;
      if (lf - 1 === start) {
        this.finish(out);
        return true;
      }
      const name = fieldLine(buf, start, lf - 1, []);
      if (name instanceof HttpError) return name;
    }
  }
}

/**
 * A Content-Length value as a number: leading zeros are allowed (RFC 9110 §8.6), a value of more
 * than 15 significant digits is Infinity (which no body limit allows), and anything but digits is
 * NaN.
 */
function contentLength(value: string): number {
  if (!/^\d+$/.test(value)) return NaN;
  let zeros = 0;
  while (zeros < value.length - 1 && value.charCodeAt(zeros) === 0x30) zeros++;
  return value.length - zeros > 15 ? Infinity : Number(value);
}

/**
 * The 400 for the first bad line end in buf[from, end of buf) of a head still arriving: an LF
 * without a CR before it, or a CR followed by a byte other than LF (a CR in the last byte may
 * still get its LF). Null if none. The head's first byte is neither CR nor LF (they are skipped
 * before a request line), so every LF found has a byte of the head before it.
 */
function badLineEnd(buf: Buffer, from: number): HttpError | null {
  for (let i = buf.indexOf(LF, from); i >= 0; i = buf.indexOf(LF, i + 1)) {
    if (buf[i - 1] !== CR) return new BadRequestError('a line ends in a bare LF');
  }
  for (let i = buf.indexOf(CR, from); i >= 0 && i + 1 < buf.length; i = buf.indexOf(CR, i + 1)) {
    if (buf[i + 1] !== LF) return new BadRequestError('a CR not followed by LF');
  }
  return null;
}

/**
 * The index of the CR of the CRLF that ends the line starting at `start`; -1 for a bare LF. Only
 * for lines inside a head, which an LF is known to end.
 */
function lineEndAt(buf: Buffer, start: number): number {
  let lf = start;
  while (buf[lf] !== LF) lf++;
  return lf > start && buf[lf - 1] === CR ? lf - 1 : -1;
}

/** method SP request-target SP HTTP-version, in buf[start, end). */
function requestLine(
  buf: Buffer,
  start: number,
  end: number,
): { method: string; target: string; minor: 0 | 1 } | HttpError {
  let p = start;
  while (p < end && kTchar[buf[p]!] === 1) p++;
  if (p === start || p >= end || buf[p] !== SP) return new BadRequestError('malformed request line');
  const method = internedAt(buf, start, p, kMethods) ?? buf.toString('latin1', start, p);
  const targetStart = ++p;
  while (p < end && buf[p]! > SP && buf[p]! < 0x7f) p++;
  if (p === targetStart || p >= end || buf[p] !== SP) return new BadRequestError('malformed request target');
  const target = buf.toString('latin1', targetStart, p);
  p++;
  if (
    end - p !== 8 ||
    buf[p] !== 0x48 ||
    buf[p + 1] !== 0x54 ||
    buf[p + 2] !== 0x54 ||
    buf[p + 3] !== 0x50 ||
    buf[p + 4] !== 0x2f ||
    buf[p + 5] !== 0x31 ||
    buf[p + 6] !== 0x2e ||
    (buf[p + 7] !== 0x30 && buf[p + 7] !== 0x31)
  ) {
    return new BadRequestError('unsupported or malformed HTTP version');
  }
  return { method, target, minor: buf[p + 7] === 0x31 ? 1 : 0 };
}

/**
 * field-name ":" OWS field-value OWS, in buf[start, end). Appends the lower-case name and the
 * trimmed value to `headers` and returns the name.
 */
function fieldLine(buf: Buffer, start: number, end: number, headers: string[]): string | HttpError {
  const first = buf[start];
  if (first === SP || first === HTAB) return new BadRequestError('obsolete line folding');
  let p = start;
  while (p < end && kTchar[buf[p]!] === 1) p++;
  if (p === start || p >= end || buf[p] !== 0x3a) return new BadRequestError('malformed header field');
  const name = internedAt(buf, start, p, kFieldNames, 0x20) ?? buf.toString('latin1', start, p).toLowerCase();
  let v = p + 1;
  let e = end;
  while (v < e && (buf[v] === SP || buf[v] === HTAB)) v++;
  while (e > v && (buf[e - 1] === SP || buf[e - 1] === HTAB)) e--;
  for (let i = v; i < e; i++)
    if (!isValueByte(buf[i]!)) return new BadRequestError(`invalid byte in the ${name} field`);
  headers.push(name, buf.toString('latin1', v, e));
  return name;
}

/** Common methods and field names, so that parsing them allocates no string. */
const kMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];
const kFieldNames = [
  'host',
  'connection',
  'content-length',
  'content-type',
  'transfer-encoding',
  'accept',
  'user-agent',
  'expect',
];

/**
 * The string of `list` equal to buf[start, end), or undefined. With `fold` 0x20, letters in buf
 * match in either case (the list is lower-case).
 */
function internedAt(buf: Buffer, start: number, end: number, list: readonly string[], fold = 0): string | undefined {
  const n = end - start;
  outer: for (const s of list) {
    if (s.length !== n) continue;
    for (let i = 0; i < n; i++) {
      const b = buf[start + i]!;
      const c = s.charCodeAt(i);
      if (b !== c && !(fold !== 0 && c >= 0x61 && c <= 0x7a && (b | fold) === c)) continue outer;
    }
    return s;
  }
  return undefined;
}

function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}
