/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2): a parser for receivers and encoders
 * for senders. Pure, stateless functions over bytes (any thread or worker may call them); nothing
 * here touches a socket, and nothing is wired to a listener yet.
 *
 *   v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF     (at most 107 bytes)
 *       "PROXY" SP "UNKNOWN" [SP anything] CRLF
 *   v2: sig[12] | ver_cmd | fam_proto | len (u16 BE) | addresses | TLVs       (16 + len bytes)
 *       addresses: IPv4 4+4+2+2 = 12, IPv6 16+16+2+2 = 36, unix 108+108 = 216 (NUL-padded paths)
 *       TLV: type (u8) | length (u16 BE) | value
 *
 * Invariants of parseProxyHeader():
 * - It never throws on any bytes and never mutates them. It returns a frozen ProxyHeader, the string
 *   'incomplete', or a frozen ProxyHeaderError `{ error, message }`.
 * - 'incomplete' means the bytes are a valid prefix of some header. Every strict prefix of a valid
 *   header gives 'incomplete', and bytes that cannot begin a header are rejected as soon as seen.
 * - A header followed by anything parses the same as alone, and an error on a prefix is an error
 *   with the same code on every extension of it (the message may quote more of the input).
 * - `length` is the header's size in bytes; whatever follows it is the payload, untouched.
 * - v1 UNKNOWN, v2 LOCAL and v2 PROXY with an UNSPEC family or protocol give command 'local' (use the
 *   real endpoints): transport, source and destination are null and tlvs is empty. A LOCAL header is
 *   accepted whatever its family byte, and its whole length is skipped.
 * - Hosts are canonical text: IPv4 dotted decimal, IPv6 per RFC 5952 (lower case, the longest run
 *   of two or more zero groups compressed, the first on a tie), with IPv4-mapped addresses written
 *   `::ffff:a.b.c.d` (RFC 5952 section 5, as node:net reports them). TLV values are copies.
 */
import { isIP, isIPv6 } from 'node:net';
import { InvalidArgumentError } from './errors.js';
import { formatIPv4Bytes, formatIPv6Bytes, isIPv4MappedBytes } from './addr.js';

/** The default cap on a v2 header (16 + its length field), in bytes. v1 lines are capped at 107. */
export const kProxyHeaderMaxBytes = 4096;

/** The longest v1 line the spec allows, CRLF included. */
const kV1MaxLineBytes = 107;
/** The fixed part of a v2 header: signature, version and command, family and protocol, length. */
const kV2FixedBytes = 16;
/** The largest v2 length field (u16), so the largest v2 header is 16 + this. */
const kV2MaxLengthBytes = 0xffff;
/** The size of a v2 unix address field (sun_path), NUL padded. */
const kV2UnixPathBytes = 108;

const v2Signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const v1Signature = [0x50, 0x52, 0x4f, 0x58, 0x59]; // "PROXY"
/** Every valid v1 line begins with one of these; a prefix matching none is rejected at once. */
const v1Openings = ['PROXY TCP4 ', 'PROXY TCP6 ', 'PROXY UNKNOWN ', 'PROXY UNKNOWN\r'];
/** The longest of v1Openings: how many bytes the opening check looks at. */
const kV1OpeningMaxBytes = 14;

/** An inet endpoint: host is an IPv4 or IPv6 address in text form. */
export interface ProxyInetAddress {
  readonly host: string;
  readonly port: number;
}

/** A unix socket endpoint: the path up to the first NUL of its 108-byte field. */
export interface ProxyUnixAddress {
  readonly path: string;
}

export type ProxyAddress = ProxyInetAddress | ProxyUnixAddress;

/** One v2 Type-Length-Value entry. A parsed value is a copy, not a view of the input. */
export interface ProxyTlv {
  readonly type: number;
  readonly value: Uint8Array;
}

/** The registered v2 TLV types (spec section 2.2). 0xe0-0xef are free for applications. */
export const ProxyTlvType = Object.freeze({
  alpn: 0x01,
  authority: 0x02,
  crc32c: 0x03,
  noop: 0x04,
  uniqueId: 0x05,
  ssl: 0x20,
  netns: 0x30,
} as const);

/** A complete, valid header. Frozen; see the invariants above for 'local'. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly command: 'proxy' | 'local';
  readonly transport: 'stream' | 'dgram' | null;
  readonly source: ProxyAddress | null;
  readonly destination: ProxyAddress | null;
  readonly tlvs: readonly ProxyTlv[];
  /** Bytes of the header, to skip before the payload. */
  readonly length: number;
}

/**
 * Why a header was rejected. 'signature': neither v1 nor v2; 'version', 'command', 'family': a v2
 * header byte the spec does not define; 'v1-syntax': a v1 line not exactly per spec; 'too-long': no
 * CRLF in the first 107 bytes (v1) or 16 + length over the cap (v2); 'address-length': a v2 length
 * too short for its addresses; 'tlv': a v2 TLV running past the header.
 */
export type ProxyHeaderErrorCode =
  'signature' | 'version' | 'command' | 'family' | 'v1-syntax' | 'too-long' | 'address-length' | 'tlv';

/** A rejected header: a stable code and a message prefixed `gevent:` that names the bad value. */
export interface ProxyHeaderError {
  readonly error: ProxyHeaderErrorCode;
  readonly message: string;
}

/** What a v2 header says, for encodeProxyHeaderV2(). */
export interface ProxyHeaderV2Fields {
  readonly command: 'proxy' | 'local';
  /** Defaults to 'stream'. Ignored for 'local'. */
  readonly transport?: 'stream' | 'dgram';
  /** Required for 'proxy', both inet of one family or both unix; ignored for 'local'. */
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
  /** Written after the addresses, in order (also for 'local', though receivers discard them). */
  readonly tlvs?: readonly ProxyTlv[];
}

function fail(error: ProxyHeaderErrorCode, message: string): ProxyHeaderError {
  return Object.freeze({ error, message: `gevent: ${message}` });
}

function header(
  version: 1 | 2,
  transport: 'stream' | 'dgram' | null,
  source: ProxyAddress | null,
  destination: ProxyAddress | null,
  tlvs: readonly ProxyTlv[],
  length: number,
): ProxyHeader {
  const command = transport === null ? 'local' : 'proxy';
  return Object.freeze({ version, command, transport, source, destination, tlvs, length });
}

const noTlvs: readonly ProxyTlv[] = Object.freeze([]);

/**
 * Parses the PROXY header at the start of `bytes` (v1 or v2, told apart by the first byte). Returns
 * the header, 'incomplete' when more bytes are needed, or an error; never throws on any input. The
 * caller owns `bytes`; nothing returned refers to it. `maxHeaderBytes` caps a v2 header (16 + length).
 */
export function parseProxyHeader(
  bytes: Uint8Array,
  maxHeaderBytes: number = kProxyHeaderMaxBytes,
): ProxyHeader | 'incomplete' | ProxyHeaderError {
  if (maxHeaderBytes !== kProxyHeaderMaxBytes) checkMaxHeaderBytes(maxHeaderBytes);
  if (bytes.length === 0) return 'incomplete';
  if (bytes[0] === v2Signature[0]) return parseV2(bytes, maxHeaderBytes);
  if (bytes[0] === v1Signature[0]) return parseV1(bytes);
  return signatureError(bytes);
}

function checkMaxHeaderBytes(n: number): void {
  if (!Number.isInteger(n) || n < kV2FixedBytes || n > kV2FixedBytes + kV2MaxLengthBytes) {
    throw new InvalidArgumentError('maxHeaderBytes', n, `an integer from ${kV2FixedBytes} to 65551`);
  }
}

function signatureError(bytes: Uint8Array): ProxyHeaderError {
  const n = Math.min(bytes.length, 12);
  const hex = Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return fail(
    'signature',
    `not a PROXY header: the input starts with ${hex} (${JSON.stringify(latin1(bytes, 0, n))}), ` +
      'which is neither "PROXY" (v1) nor the v2 signature',
  );
}

/** The bytes [from, to) as a string, one char per byte (the spec's lines are US-ASCII). */
function latin1(bytes: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function parseV1(bytes: Uint8Array): ProxyHeader | 'incomplete' | ProxyHeaderError {
  const limit = Math.min(bytes.length, kV1OpeningMaxBytes);
  for (let i = 0; i < Math.min(limit, v1Signature.length); i++) {
    if (bytes[i] !== v1Signature[i]) return signatureError(bytes);
  }
  if (!v1Openings.some((opening) => startsLike(bytes, opening, limit))) {
    if (bytes[5] !== 0x20) {
      return fail('v1-syntax', `PROXY v1 line ${quoteLine(bytes, 16)} must have exactly one space after "PROXY"`);
    }
    let end = 6;
    while (end < limit && bytes[end] !== 0x20 && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
    return fail(
      'v1-syntax',
      `PROXY v1 protocol ${JSON.stringify(latin1(bytes, 6, end))} is not TCP4, TCP6 or UNKNOWN ` +
        '(each followed by exactly one space)',
    );
  }
  let cr = -1;
  for (let i = 0; i < bytes.length && i < kV1MaxLineBytes; i++) {
    const b = bytes[i];
    if (b === 0x0a) return fail('v1-syntax', `PROXY v1 line has a lone LF at byte ${i}: ${quoteLine(bytes, i)}`);
    if (b !== 0x0d) continue;
    if (i + 1 >= kV1MaxLineBytes) break;
    if (i + 1 >= bytes.length) return 'incomplete';
    if (bytes[i + 1] !== 0x0a) {
      return fail('v1-syntax', `PROXY v1 line has a CR not followed by LF at byte ${i}: ${quoteLine(bytes, i)}`);
    }
    cr = i;
    break;
  }
  if (cr < 0) {
    if (bytes.length < kV1MaxLineBytes) return 'incomplete';
    return fail(
      'too-long',
      `PROXY v1 line has no CRLF within the first ${kV1MaxLineBytes} bytes: ${quoteLine(bytes, 40)}...`,
    );
  }
  return parseV1Line(latin1(bytes, 0, cr), cr + 2);
}

/** Whether bytes[0, limit) agrees with `text` wherever both have a char. */
function startsLike(bytes: Uint8Array, text: string, limit: number): boolean {
  const n = Math.min(limit, text.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

function quoteLine(bytes: Uint8Array, end: number): string {
  return JSON.stringify(latin1(bytes, 0, Math.min(end, bytes.length)));
}

function parseV1Line(line: string, length: number): ProxyHeader | ProxyHeaderError {
  if (line.startsWith('PROXY UNKNOWN')) return header(1, null, null, null, noTlvs, length);
  const family = line.slice(6, 10) as 'TCP4' | 'TCP6';
  const fields = line.slice(11).split(' ');
  if (fields.length !== 4 || fields.includes('')) {
    return fail(
      'v1-syntax',
      `PROXY v1 line ${JSON.stringify(line)} must have exactly four fields after ${family} ` +
        '(source, destination, source port, destination port), each separated by exactly one space',
    );
  }
  const source = v1Host(fields[0], family, 'source');
  if (typeof source !== 'string') return source;
  const destination = v1Host(fields[1], family, 'destination');
  if (typeof destination !== 'string') return destination;
  const sourcePort = v1Port(fields[2], 'source');
  if (typeof sourcePort !== 'number') return sourcePort;
  const destinationPort = v1Port(fields[3], 'destination');
  if (typeof destinationPort !== 'number') return destinationPort;
  return header(
    1,
    'stream',
    Object.freeze({ host: source, port: sourcePort }),
    Object.freeze({ host: destination, port: destinationPort }),
    noTlvs,
    length,
  );
}

const v1IPv4Pattern = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;
const v1IPv6CharsPattern = /^[0-9A-Fa-f:]+$/;
const v1PortPattern = /^(?:0|[1-9][0-9]{0,4})$/;

/** A v1 address field in canonical text, or the error naming it. */
function v1Host(text: string, family: 'TCP4' | 'TCP6', which: string): string | ProxyHeaderError {
  if (family === 'TCP4') {
    if (v1IPv4Pattern.test(text) && text.split('.').every((octet) => Number(octet) <= 255)) return text;
    return fail(
      'v1-syntax',
      `PROXY v1 ${which} address ${JSON.stringify(text)} is not an IPv4 address in dotted decimal ` +
        '(four numbers 0-255 with no leading zeros), as TCP4 requires',
    );
  }
  if (v1IPv6CharsPattern.test(text) && isIPv6(text)) {
    const b = new Uint8Array(16);
    writeIPv6(text, b, 0);
    return formatIPv6(b, 0);
  }
  return fail(
    'v1-syntax',
    `PROXY v1 ${which} address ${JSON.stringify(text)} is not an IPv6 address in hex groups, as TCP6 requires`,
  );
}

function v1Port(text: string, which: string): number | ProxyHeaderError {
  if (v1PortPattern.test(text)) {
    const port = Number(text);
    if (port <= 0xffff) return port;
    return fail('v1-syntax', `PROXY v1 ${which} port ${JSON.stringify(text)} is out of range (0-65535)`);
  }
  const why = /^[0-9]+$/.test(text) ? 'has a leading zero' : 'is not a decimal number';
  return fail('v1-syntax', `PROXY v1 ${which} port ${JSON.stringify(text)} ${why}`);
}

function parseV2(bytes: Uint8Array, maxHeaderBytes: number): ProxyHeader | 'incomplete' | ProxyHeaderError {
  const n = bytes.length;
  for (let i = 0; i < v2Signature.length && i < n; i++) {
    if (bytes[i] !== v2Signature[i]) return signatureError(bytes);
  }
  if (n <= 12) return 'incomplete';
  const verCmd = bytes[12];
  if (verCmd >> 4 !== 2) {
    return fail('version', `PROXY v2 version ${verCmd >> 4} (byte 13 is 0x${hex2(verCmd)}) is not 2`);
  }
  const command = verCmd & 0x0f;
  if (command > 1) {
    return fail('command', `PROXY v2 command 0x${command.toString(16)} is neither LOCAL (0) nor PROXY (1)`);
  }
  if (n <= 13) return 'incomplete';
  const famProto = bytes[13];
  const family = famProto >> 4;
  const protocol = famProto & 0x0f;
  if (command === 1 && (family > 3 || protocol > 2)) {
    return fail(
      'family',
      `PROXY v2 family/protocol byte 0x${hex2(famProto)} is not defined ` +
        `(family ${family} must be 0-3, protocol ${protocol} must be 0-2)`,
    );
  }
  if (n < kV2FixedBytes) return 'incomplete';
  const addressLength = (bytes[14] << 8) | bytes[15];
  const total = kV2FixedBytes + addressLength;
  if (total > maxHeaderBytes) {
    return fail(
      'too-long',
      `PROXY v2 header of ${kV2FixedBytes} + ${addressLength} = ${total} bytes ` +
        `exceeds the ${maxHeaderBytes}-byte limit`,
    );
  }
  if (n < total) return 'incomplete';
  if (command === 0 || family === 0 || protocol === 0) return header(2, null, null, null, noTlvs, total);
  const need = family === 1 ? 12 : family === 2 ? 36 : 2 * kV2UnixPathBytes;
  if (addressLength < need) {
    const what = family === 1 ? 'IPv4' : family === 2 ? 'IPv6' : 'unix';
    return fail(
      'address-length',
      `PROXY v2 address length ${addressLength} is shorter than the ${need} bytes ${what} addresses take`,
    );
  }
  const at = kV2FixedBytes;
  let source: ProxyAddress;
  let destination: ProxyAddress;
  if (family === 1) {
    source = Object.freeze({ host: formatIPv4(bytes, at), port: u16(bytes, at + 8) });
    destination = Object.freeze({ host: formatIPv4(bytes, at + 4), port: u16(bytes, at + 10) });
  } else if (family === 2) {
    source = Object.freeze({ host: formatIPv6(bytes, at), port: u16(bytes, at + 32) });
    destination = Object.freeze({ host: formatIPv6(bytes, at + 16), port: u16(bytes, at + 34) });
  } else {
    source = Object.freeze({ path: unixPath(bytes, at) });
    destination = Object.freeze({ path: unixPath(bytes, at + kV2UnixPathBytes) });
  }
  const tlvs = parseProxyTlvs(bytes, at + need, total);
  if (!Array.isArray(tlvs)) return tlvs as ProxyHeaderError;
  return header(2, protocol === 1 ? 'stream' : 'dgram', source, destination, tlvs, total);
}

/** The TLVs in `bytes[from, end)`, each value a copy; an error when one runs past `end`. */
export function parseProxyTlvs(bytes: Uint8Array, from: number, end: number): readonly ProxyTlv[] | ProxyHeaderError {
  if (from === end) return noTlvs;
  const tlvs: ProxyTlv[] = [];
  for (let at = from; at < end;) {
    if (at + 3 > end) {
      return fail('tlv', `PROXY v2 TLV at byte ${at} is truncated: ${end - at} bytes left, a TLV needs at least 3`);
    }
    const type = bytes[at];
    const length = u16(bytes, at + 1);
    if (at + 3 + length > end) {
      return fail(
        'tlv',
        `PROXY v2 TLV of type 0x${hex2(type)} at byte ${at} has length ${length}, ` +
          `running past the header's end at byte ${end}`,
      );
    }
    const value = new Uint8Array(length);
    value.set(bytes.subarray(at + 3, at + 3 + length));
    tlvs.push(Object.freeze({ type, value }));
    at += 3 + length;
  }
  return Object.freeze(tlvs);
}

function u16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

const utf8Decoder = new TextDecoder('utf-8');

function unixPath(bytes: Uint8Array, at: number): string {
  let end = at;
  while (end < at + kV2UnixPathBytes && bytes[end] !== 0) end++;
  return utf8Decoder.decode(bytes.subarray(at, end));
}

const formatIPv4 = formatIPv4Bytes;

/** The 16 bytes at `at` per RFC 5952, with IPv4-mapped addresses as `::ffff:a.b.c.d`. */
function formatIPv6(b: Uint8Array, at: number): string {
  return isIPv4MappedBytes(b, at) ? `::ffff:${formatIPv4Bytes(b, at + 12)}` : formatIPv6Bytes(b, at);
}

/** Writes an address isIPv6() accepts (no zone) as 16 bytes at `at`. */
function writeIPv6(text: string, out: Uint8Array, at: number): void {
  const gap = text.indexOf('::');
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const headGroups = hextets(head);
  const tailGroups = hextets(tail);
  out.fill(0, at, at + 16);
  const put = (group: number, value: number): void => {
    out[at + 2 * group] = value >> 8;
    out[at + 2 * group + 1] = value & 0xff;
  };
  headGroups.forEach((value, i) => put(i, value));
  tailGroups.forEach((value, i) => put(8 - tailGroups.length + i, value));
}

function hextets(text: string): number[] {
  if (text === '') return [];
  const groups: number[] = [];
  for (const part of text.split(':')) {
    if (part.includes('.')) {
      const [a, b, c, d] = part.split('.').map(Number);
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(part, 16));
    }
  }
  return groups;
}

/**
 * The v2 header for `fields`, as one new buffer the caller owns (send it in one write). Throws
 * InvalidArgumentError for addresses that cannot be encoded: a missing or mixed-family pair under
 * 'proxy', a bad port, a unix path over 108 bytes or holding a NUL, a TLV type outside 0-255, or a
 * header past 16 + 65535 bytes.
 */
export function encodeProxyHeaderV2(fields: ProxyHeaderV2Fields): Uint8Array {
  const { command, transport = 'stream', source, destination, tlvs = [] } = fields;
  if (command !== 'proxy' && command !== 'local') {
    throw new InvalidArgumentError('command', command, "'proxy' or 'local'");
  }
  if (transport !== 'stream' && transport !== 'dgram') {
    throw new InvalidArgumentError('transport', transport, "'stream' or 'dgram'");
  }
  let famProto = 0x00;
  let addressBytes = 0;
  if (command === 'proxy') {
    const family = pairFamily(source, destination);
    famProto = (family === 4 ? 0x10 : family === 6 ? 0x20 : 0x30) | (transport === 'stream' ? 1 : 2);
    addressBytes = family === 4 ? 12 : family === 6 ? 36 : 2 * kV2UnixPathBytes;
  }
  let tlvBytes = 0;
  for (const [i, tlv] of tlvs.entries()) {
    if (!Number.isInteger(tlv?.type) || tlv.type < 0 || tlv.type > 0xff) {
      throw new InvalidArgumentError(`tlvs[${i}].type`, tlv?.type, 'an integer from 0 to 255');
    }
    if (!(tlv.value instanceof Uint8Array) || tlv.value.length > kV2MaxLengthBytes) {
      throw new InvalidArgumentError(`tlvs[${i}].value`, tlv.value, 'a Uint8Array of at most 65535 bytes');
    }
    tlvBytes += 3 + tlv.value.length;
  }
  const length = addressBytes + tlvBytes;
  if (length > kV2MaxLengthBytes) {
    throw new InvalidArgumentError('the PROXY v2 header length', length, 'at most 65535 bytes after the first 16');
  }
  const out = new Uint8Array(kV2FixedBytes + length);
  out.set(v2Signature, 0);
  out[12] = command === 'proxy' ? 0x21 : 0x20;
  out[13] = famProto;
  out[14] = length >> 8;
  out[15] = length & 0xff;
  let at = kV2FixedBytes;
  if (command === 'proxy') at = writeAddresses(out, at, source!, destination!, famProto >> 4);
  for (const tlv of tlvs) {
    out[at] = tlv.type;
    out[at + 1] = tlv.value.length >> 8;
    out[at + 2] = tlv.value.length & 0xff;
    out.set(tlv.value, at + 3);
    at += 3 + tlv.value.length;
  }
  return out;
}

const utf8Encoder = new TextEncoder();

function writeAddresses(
  out: Uint8Array,
  at: number,
  source: ProxyAddress,
  destination: ProxyAddress,
  family: number,
): number {
  if (family === 3) {
    out.set(utf8Encoder.encode((source as ProxyUnixAddress).path), at);
    out.set(utf8Encoder.encode((destination as ProxyUnixAddress).path), at + kV2UnixPathBytes);
    return at + 2 * kV2UnixPathBytes;
  }
  const src = source as ProxyInetAddress;
  const dst = destination as ProxyInetAddress;
  const size = family === 1 ? 4 : 16;
  writeIP(src.host, out, at);
  writeIP(dst.host, out, at + size);
  out[at + 2 * size] = src.port >> 8;
  out[at + 2 * size + 1] = src.port & 0xff;
  out[at + 2 * size + 2] = dst.port >> 8;
  out[at + 2 * size + 3] = dst.port & 0xff;
  return at + 2 * size + 4;
}

function writeIP(host: string, out: Uint8Array, at: number): void {
  if (isIP(host) === 6) {
    writeIPv6(host, out, at);
    return;
  }
  host.split('.').forEach((octet, i) => (out[at + i] = Number(octet)));
}

/** 4 or 6 for a valid inet pair, 'unix' for a valid unix pair; throws naming the bad endpoint. */
function pairFamily(source: ProxyAddress | undefined, destination: ProxyAddress | undefined): 4 | 6 | 'unix' {
  const a = endpointFamily(source, 'source');
  const b = endpointFamily(destination, 'destination');
  if (a !== b) {
    throw new InvalidArgumentError(
      'destination',
      destination,
      `of the source's family (${a === 'unix' ? 'unix' : `IPv${a}`}) in one PROXY header`,
    );
  }
  return a;
}

function endpointFamily(endpoint: ProxyAddress | undefined | null, which: string): 4 | 6 | 'unix' {
  if (endpoint !== null && typeof endpoint === 'object' && 'path' in endpoint && typeof endpoint.path === 'string') {
    const bytes = utf8Encoder.encode(endpoint.path);
    if (bytes.length <= kV2UnixPathBytes && !bytes.includes(0)) return 'unix';
    throw new InvalidArgumentError(`${which}.path`, endpoint.path, 'a unix path of at most 108 bytes without NUL');
  }
  return inetFamily(endpoint, which);
}

function inetFamily(endpoint: unknown, which: string): 4 | 6 {
  if (endpoint === null || typeof endpoint !== 'object' || !('host' in endpoint) || !('port' in endpoint)) {
    throw new InvalidArgumentError(which, endpoint, 'a { host, port } or { path } address');
  }
  const { host, port } = endpoint as { host: unknown; port: unknown };
  const family = typeof host === 'string' && !host.includes('%') ? isIP(host) : 0;
  if (family === 0) throw new InvalidArgumentError(`${which}.host`, host, 'an IPv4 or IPv6 address (no zone)');
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 0xffff) {
    throw new InvalidArgumentError(`${which}.port`, port, 'an integer from 0 to 65535');
  }
  return family as 4 | 6;
}

/**
 * The v1 line for a TCP connection: `PROXY TCP4 ...\r\n` or `PROXY TCP6 ...\r\n` by the hosts'
 * family (IPv6 written in hex groups per RFC 5952), or `PROXY UNKNOWN\r\n` when both are null.
 * Throws InvalidArgumentError when only one is null, the families differ, or a host or port is bad.
 */
export function encodeProxyHeaderV1(source: ProxyInetAddress | null, destination: ProxyInetAddress | null): string {
  if (source === null && destination === null) return 'PROXY UNKNOWN\r\n';
  const family = inetFamily(source, 'source');
  if (inetFamily(destination, 'destination') !== family) {
    throw new InvalidArgumentError(
      'destination',
      destination,
      `of the source's family (IPv${family}) in one PROXY header`,
    );
  }
  const src = source!;
  const dst = destination!;
  const text = (host: string): string => {
    if (family === 4) return host;
    const b = new Uint8Array(16);
    writeIPv6(host, b, 0);
    return formatIPv6Bytes(b, 0);
  };
  return `PROXY TCP${family} ${text(src.host)} ${text(dst.host)} ${src.port} ${dst.port}\r\n`;
}
