/**
 * The PROXY header parser and encoders (src/proxy-header.ts) against the spec's examples, one case or
 * more per error code, every strict prefix of valid headers, and fast-check properties: encode then
 * parse round-trips, trailing bytes never change a header, an error code on a prefix stays, and
 * no input throws. URL's IPv6 serializer (RFC 5952, hex groups only) is the oracle for host text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeProxyHeaderV1,
  encodeProxyHeaderV2,
  kProxyHeaderMaxBytes,
  parseProxyHeader,
  ProxyTlvType,
  type ProxyAddress,
  type ProxyHeader,
  type ProxyHeaderError,
  type ProxyHeaderErrorCode,
  type ProxyInetAddress,
  type ProxyTlv,
} from '../src/proxy-header.js';
import { InvalidArgumentError } from '../src/errors.js';

const kNumRuns = 300;
const errorCodes: readonly ProxyHeaderErrorCode[] = [
  'signature',
  'version',
  'command',
  'family',
  'v1-syntax',
  'too-long',
  'address-length',
  'tlv',
];
const v2Signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const concat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A v2 header by hand: signature, the two command/family bytes, the length field, then `body`. */
function v2(verCmd: number, famProto: number, body: ArrayLike<number> = [], length = body.length): Uint8Array {
  return concat(v2Signature, [verCmd, famProto, length >> 8, length & 0xff], body);
}

/** One TLV's bytes: type, length (u16 BE), value. */
function tlv(type: number, value: ArrayLike<number>): number[] {
  return [type, value.length >> 8, value.length & 0xff, ...Array.from(value)];
}

function parsed(bytes: Uint8Array, max?: number): ProxyHeader {
  const r = parseProxyHeader(bytes, max);
  assert.ok(typeof r === 'object' && !('error' in r), `expected a header, got ${JSON.stringify(r)}`);
  return r;
}

function rejected(bytes: Uint8Array, max?: number): ProxyHeaderError {
  const r = parseProxyHeader(bytes, max);
  assert.ok(typeof r === 'object' && 'error' in r, `expected an error, got ${JSON.stringify(r)}`);
  assert.ok(r.message.startsWith('gevent: '), r.message);
  assert.ok(Object.isFrozen(r));
  return r;
}

/** URL's serializer writes IPv6 per RFC 5952 but never in mixed notation; the parser does for ::ffff:0:0/96. */
function canonicalIPv6(b: Uint8Array): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  return hexIPv6(b);
}

function hexIPv6(b: Uint8Array): string {
  return new URL(`http://[${expandedIPv6(b)}]/`).hostname.slice(1, -1);
}

function expandedIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16).padStart(4, '0'));
  return groups.join(':');
}

test('the spec examples parse: v1 TCP4 before an HTTP request, the longest lines, and UNKNOWN', () => {
  const request = 'GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n';
  const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
  assert.deepEqual(parsed(ascii(line + request)), {
    version: 1,
    command: 'proxy',
    transport: 'stream',
    source: { host: '192.168.0.1', port: 56324 },
    destination: { host: '192.168.0.11', port: 443 },
    tlvs: [],
    length: line.length,
  });
  const v4 = 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n';
  assert.equal(v4.length, 56);
  assert.deepEqual(parsed(ascii(v4)).source, { host: '255.255.255.255', port: 65535 });
  const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const v6 = `PROXY TCP6 ${f} ${f} 65535 65535\r\n`;
  assert.equal(v6.length, 104);
  assert.deepEqual(parsed(ascii(v6)).destination, { host: f, port: 65535 });
  const unknown = parsed(ascii('PROXY UNKNOWN\r\nhello'));
  assert.deepEqual(unknown, {
    version: 1,
    command: 'local',
    transport: null,
    source: null,
    destination: null,
    tlvs: [],
    length: 15,
  });
  const worst = `PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`;
  assert.equal(worst.length, 107);
  assert.equal(parsed(ascii(worst)).length, 107);
  assert.equal(parsed(ascii('PROXY UNKNOWN anything at all, even \x01 bytes\r\n')).command, 'local');
});

test('v1 IPv6 text comes back in RFC 5952 form, IPv4-mapped as ::ffff:a.b.c.d', () => {
  const cases: [string, string][] = [
    ['2001:0DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['1::', '1::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ['::ffff:102:304', '::ffff:1.2.3.4'],
  ];
  for (const [text, host] of cases) {
    assert.equal((parsed(ascii(`PROXY TCP6 ${text} ::1 1 2\r\n`)).source as ProxyInetAddress).host, host, text);
  }
});

test('v2 examples: TCP and UDP over IPv4 and IPv6, unix stream, TLVs, LOCAL and UNSPEC', () => {
  const tcp4 = v2(0x21, 0x11, [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb]);
  assert.deepEqual(parsed(concat(tcp4, ascii('GET /'))), {
    version: 2,
    command: 'proxy',
    transport: 'stream',
    source: { host: '192.168.0.1', port: 56324 },
    destination: { host: '192.168.0.11', port: 443 },
    tlvs: [],
    length: 28,
  });
  const six = new Uint8Array(36);
  six.set([0x20, 0x01, 0x0d, 0xb8], 0);
  six[15] = 1;
  six.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1], 16);
  six.set([0x00, 0x35, 0x30, 0x39], 32);
  const udp6 = parsed(v2(0x21, 0x22, six));
  assert.equal(udp6.transport, 'dgram');
  assert.deepEqual(udp6.source, { host: '2001:db8::1', port: 53 });
  assert.deepEqual(udp6.destination, { host: '::ffff:10.0.0.1', port: 12345 });
  assert.equal(udp6.length, 52);
  assert.equal(parsed(v2(0x21, 0x12, new Uint8Array(12))).transport, 'dgram');

  const unix = new Uint8Array(216);
  unix.set(ascii('/run/client.sock'), 0);
  unix.set(ascii('x'.repeat(108)), 108);
  const u = parsed(v2(0x21, 0x31, unix));
  assert.deepEqual(
    [u.transport, u.source, u.destination],
    ['stream', { path: '/run/client.sock' }, { path: 'x'.repeat(108) }],
  );

  const tlvs = [
    ...tlv(ProxyTlvType.alpn, ascii('h2')),
    ...tlv(ProxyTlvType.authority, ascii('example.com')),
    ...tlv(ProxyTlvType.noop, []),
  ];
  const withTlvs = parsed(v2(0x21, 0x11, [...new Uint8Array(12), ...tlvs]));
  assert.deepEqual(withTlvs.tlvs, [
    { type: 0x01, value: ascii('h2') },
    { type: 0x02, value: ascii('example.com') },
    { type: 0x04, value: new Uint8Array(0) },
  ]);

  const local = { version: 2, command: 'local', transport: null, source: null, destination: null, tlvs: [] };
  assert.deepEqual(parsed(v2(0x20, 0x00)), { ...local, length: 16 });
  // LOCAL: the family byte is ignored and the length still skipped, even when it is nonsense.
  assert.deepEqual(parsed(v2(0x20, 0xff, [1, 2, 3, 4, 5, 6, 7])), { ...local, length: 23 });
  assert.deepEqual(parsed(v2(0x20, 0x11, [1, 2, 3])), { ...local, length: 19 });
  // PROXY with an UNSPEC family or protocol: use the real endpoints, skip the length.
  for (const fam of [0x00, 0x01, 0x02, 0x10, 0x20, 0x30]) {
    assert.deepEqual(parsed(v2(0x21, fam, [9, 9, 9])), { ...local, length: 19 }, `fam 0x${fam.toString(16)}`);
  }
});

test('a parsed header is frozen, its TLV values are copies, and the input is left as it was', () => {
  const bytes = encodeProxyHeaderV2({
    command: 'proxy',
    source: { host: '10.0.0.1', port: 1 },
    destination: { host: '10.0.0.2', port: 2 },
    tlvs: [{ type: 0xe0, value: ascii('abc') }],
  });
  const before = bytes.slice();
  const h = parsed(bytes);
  assert.deepEqual(bytes, before);
  assert.ok(Object.isFrozen(h) && Object.isFrozen(h.tlvs) && Object.isFrozen(h.tlvs[0]) && Object.isFrozen(h.source));
  bytes.fill(0);
  assert.deepEqual(h.tlvs[0].value, ascii('abc'));
});

test('every error code, with a message that names the bad value', () => {
  const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const cases: [string, Uint8Array, ProxyHeaderErrorCode, string][] = [
    ['HTTP', ascii('GET / HTTP/1.1\r\n'), 'signature', '"GET / HTTP/1"'],
    ['one wrong byte', ascii('G'), 'signature', '47'],
    ['PROXZ', ascii('PROXZ'), 'signature', '"PROXZ"'],
    ['v2 signature off at byte 7', ascii('\r\n\r\n\0\r\nX'), 'signature', '58'],
    ['v2 version 1', v2(0x11, 0x11), 'version', 'version 1'],
    ['v2 version 3, seen early', concat(v2Signature, [0x31]), 'version', '0x31'],
    ['v2 command 2', concat(v2Signature, [0x22]), 'command', '0x2'],
    ['v2 command 0xf', v2(0x2f, 0x11), 'command', '0xf'],
    ['v2 family 4', concat(v2Signature, [0x21, 0x41]), 'family', '0x41'],
    ['v2 protocol 3', v2(0x21, 0x13, new Uint8Array(12)), 'family', '0x13'],
    ['no space after PROXY', ascii('PROXYTCP4'), 'v1-syntax', '"PROXYTCP4"'],
    ['lower-case protocol', ascii('PROXY tcp4 '), 'v1-syntax', '"tcp4"'],
    ['protocol TCP5', ascii('PROXY TCP5 1.2.3.4'), 'v1-syntax', '"TCP5"'],
    ['UNKNOWNX', ascii('PROXY UNKNOWNX\r\n'), 'v1-syntax', '"UNKNOWNX"'],
    ['two spaces after PROXY', ascii('PROXY  TCP4'), 'v1-syntax', '""'],
    ['two spaces between fields', ascii('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'), 'v1-syntax', '1.2.3.4  5.6.7.8'],
    ['trailing space', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), 'v1-syntax', '1 2 "'],
    ['a missing port', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'v1-syntax', '5.6.7.8 1"'],
    ['a lone LF', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'v1-syntax', 'lone LF'],
    ['CR then not LF', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX'), 'v1-syntax', 'CR not followed by LF'],
    ['CR CR LF', ascii('PROXY UNKNOWN\r\r\n'), 'v1-syntax', 'CR not followed by LF'],
    ['octet 256', ascii('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), 'v1-syntax', '"1.2.3.256"'],
    ['octet with a leading zero', ascii('PROXY TCP4 1.2.3.4 5.6.07.8 1 2\r\n'), 'v1-syntax', '"5.6.07.8"'],
    ['three octets', ascii('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n'), 'v1-syntax', '"1.2.3"'],
    ['IPv6 under TCP4', ascii('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), 'v1-syntax', '"::1"'],
    ['IPv4 under TCP6', ascii('PROXY TCP6 ::1 5.6.7.8 1 2\r\n'), 'v1-syntax', '"5.6.7.8"'],
    ['IPv6 with a dotted tail', ascii('PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n'), 'v1-syntax', '"::ffff:1.2.3.4"'],
    ['IPv6 with a zone', ascii('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'v1-syntax', '"fe80::1%eth0"'],
    ['IPv6 with two ::', ascii('PROXY TCP6 1::2::3 ::1 1 2\r\n'), 'v1-syntax', '"1::2::3"'],
    ['IPv6 group of five digits', ascii('PROXY TCP6 ::00001 ::1 1 2\r\n'), 'v1-syntax', '"::00001"'],
    ['port 65536', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'v1-syntax', 'source port "65536" is out of range'],
    ['port 080', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n'), 'v1-syntax', 'destination port "080"'],
    ['port +1', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'), 'v1-syntax', '"+1"'],
    ['port 123456', ascii('PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n'), 'v1-syntax', '"123456"'],
    ['v1 without CRLF in 107 bytes', ascii(`PROXY UNKNOWN ${'x'.repeat(93)}`), 'too-long', 'PROXY UNKNOWN xx'],
    ['v1 CRLF at bytes 107-108', ascii(`PROXY UNKNOWN ${f} ${f} 65535 655356\r\n`), 'too-long', '107'],
    ['v2 16 + 4081 bytes', v2(0x21, 0x11, [], 4081), 'too-long', '4097'],
    ['v2 LOCAL 16 + 65535 bytes', v2(0x20, 0x00, [], 65535), 'too-long', '65551'],
    ['v2 IPv4 in 11 bytes', v2(0x21, 0x11, new Uint8Array(11)), 'address-length', '11'],
    ['v2 IPv6 in 35 bytes', v2(0x21, 0x21, new Uint8Array(35)), 'address-length', '35'],
    ['v2 unix in 215 bytes', v2(0x21, 0x32, new Uint8Array(215)), 'address-length', '215'],
    ['v2 TLV past the end', v2(0x21, 0x11, [...new Uint8Array(12), 0x02, 0, 5, 1, 2, 3]), 'tlv', 'length 5'],
    ['v2 TLV one byte past', v2(0x21, 0x11, [...new Uint8Array(12), 0x02, 0, 3, 1, 2]), 'tlv', 'length 3'],
    ['v2 TLV header cut short', v2(0x21, 0x11, [...new Uint8Array(12), 0x01, 0]), 'tlv', '2 bytes left'],
    ['v2 second TLV bad', v2(0x21, 0x11, [...new Uint8Array(12), 4, 0, 0, 0xe1, 1, 0]), 'tlv', 'type 0xe1'],
  ];
  const seen = new Set<string>();
  for (const [name, bytes, code, named] of cases) {
    const r = rejected(bytes);
    assert.equal(r.error, code, `${name}: ${r.message}`);
    assert.ok(r.message.includes(named), `${name}: ${JSON.stringify(r.message)} should name ${named}`);
    seen.add(code);
  }
  assert.deepEqual([...seen].sort(), [...errorCodes].sort());
});

test('maxHeaderBytes caps v2 headers, and a bad cap is an InvalidArgumentError', () => {
  const big = encodeProxyHeaderV2({
    command: 'proxy',
    source: { host: '1.2.3.4', port: 1 },
    destination: { host: '5.6.7.8', port: 2 },
    tlvs: [{ type: ProxyTlvType.uniqueId, value: new Uint8Array(5000) }],
  });
  assert.equal(rejected(big).error, 'too-long');
  assert.equal(parsed(big, 65551).length, big.length);
  assert.equal(rejected(big, big.length - 1).error, 'too-long');
  assert.equal(parsed(big, big.length).length, big.length);
  assert.equal(rejected(v2(0x21, 0x11, new Uint8Array(12)), 27).error, 'too-long');
  for (const bad of [15, 65552, 1.5, NaN]) {
    assert.throws(() => parseProxyHeader(new Uint8Array(0), bad), InvalidArgumentError, String(bad));
  }
  assert.equal(kProxyHeaderMaxBytes, 4096);
});

test('every strict prefix of a valid header is incomplete, never an error', () => {
  const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
  const headers = [
    ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'),
    ascii('PROXY TCP6 2001:db8::1 ::ffff:102:304 0 65535\r\n'),
    ascii('PROXY UNKNOWN\r\n'),
    ascii(`PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`),
    v2(0x20, 0x00),
    v2(0x20, 0xff, [1, 2, 3]),
    v2(0x21, 0x00, [1, 2, 3]),
    encodeProxyHeaderV2({
      command: 'proxy',
      source: { host: '1.2.3.4', port: 1 },
      destination: { host: '5.6.7.8', port: 2 },
      tlvs: [{ type: 1, value: ascii('h2') }],
    }),
    encodeProxyHeaderV2({
      command: 'proxy',
      transport: 'dgram',
      source: { host: '::1', port: 1 },
      destination: { host: 'fe80::1', port: 2 },
    }),
    encodeProxyHeaderV2({ command: 'proxy', source: { path: '/a' }, destination: { path: '' } }),
  ];
  for (const h of headers) {
    assert.equal(parsed(h).length, h.length);
    for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)), 'incomplete', `${n} of ${h}`);
  }
});

test('the encoders reject what they cannot encode with InvalidArgumentError', () => {
  const a = { host: '1.2.3.4', port: 1 };
  const proxy = (source?: ProxyAddress, destination?: ProxyAddress) => () =>
    encodeProxyHeaderV2({ command: 'proxy', source, destination });
  const localWith = (tlvs: ProxyTlv[]) => () => encodeProxyHeaderV2({ command: 'local', tlvs });
  const bad: [string, () => unknown][] = [
    ['mixed families', proxy(a, { host: '::1', port: 1 })],
    ['inet and unix', proxy(a, { path: '/x' })],
    ['no destination', proxy(a)],
    ['port 65536', proxy(a, { ...a, port: 65536 })],
    ['port 1.5', () => encodeProxyHeaderV1(a, { ...a, port: 1.5 })],
    ['a name', () => encodeProxyHeaderV1({ host: 'localhost', port: 1 }, a)],
    ['a zone', () => encodeProxyHeaderV1({ host: 'fe80::1%lo', port: 1 }, { host: '::1', port: 1 })],
    ['v1 families differ', () => encodeProxyHeaderV1(a, { host: '::1', port: 1 })],
    ['v1 one null', () => encodeProxyHeaderV1(a, null)],
    ['path 109 bytes', proxy({ path: 'x'.repeat(109) }, { path: '' })],
    ['path with NUL', proxy({ path: 'a\0b' }, { path: '' })],
    ['TLV type 256', localWith([{ type: 256, value: new Uint8Array(0) }])],
    ['TLVs over 65535', localWith([{ type: 1, value: new Uint8Array(65533) }])],
    ['command', () => encodeProxyHeaderV2({ command: 'relay' as 'proxy' })],
  ];
  for (const [name, f] of bad) {
    assert.throws(
      f,
      (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_GEVENT_INVALID_ARGUMENT',
      name,
    );
  }
  assert.equal(encodeProxyHeaderV1(null, null), 'PROXY UNKNOWN\r\n');
  assert.equal(encodeProxyHeaderV1(a, { host: '5.6.7.8', port: 65535 }), 'PROXY TCP4 1.2.3.4 5.6.7.8 1 65535\r\n');
  assert.equal(
    encodeProxyHeaderV1({ host: '::FFFF:1.2.3.4', port: 0 }, { host: '2001:0db8:0:0:1:0:0:1', port: 2 }),
    'PROXY TCP6 ::ffff:102:304 2001:db8::1:0:0:1 0 2\r\n',
  );
  const path = 'é'.repeat(54); // 108 bytes of UTF-8: the whole field, no NUL
  const u = encodeProxyHeaderV2({ command: 'proxy', source: { path }, destination: { path: '/d' } });
  assert.deepEqual(parsed(u).source, { path });
  const local = encodeProxyHeaderV2({ command: 'local', source: a, destination: a });
  assert.deepEqual(Array.from(local), [...v2Signature, 0x20, 0x00, 0, 0]);
});

const byte = fc.integer({ min: 0, max: 255 });
const ipv4 = fc.tuple(byte, byte, byte, byte).map((b) => Uint8Array.from(b));
/** 8 groups biased toward zero runs (so '::' placement is exercised) and IPv4-mapped prefixes. */
const ipv6 = fc.oneof(
  fc
    .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
      minLength: 8,
      maxLength: 8,
    })
    .map((g) => Uint8Array.from(g.flatMap((x) => [x >> 8, x & 0xff]))),
  ipv4.map((v4) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4])),
);
const port = fc.integer({ min: 0, max: 0xffff });
const v4Text = (b: Uint8Array): string => b.join('.');
/** Hosts as a caller may write them: canonical, fully expanded, or upper case. */
const v6Text = (b: Uint8Array, style: number): string =>
  style === 0 ? canonicalIPv6(b) : style === 1 ? expandedIPv6(b) : hexIPv6(b).toUpperCase();
const unixPathArb = fc
  .string({ unit: 'binary', maxLength: 40 })
  .filter((s) => !s.includes('\0') && new TextEncoder().encode(s).length <= 108);
const tlvsArb = fc.array(fc.record({ type: byte, value: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 5 });
const payloadArb = fc.uint8Array({ maxLength: 64 });

type Endpoints = { source: ProxyAddress; destination: ProxyAddress; expected: [ProxyAddress, ProxyAddress] };
const endpointsArb: fc.Arbitrary<Endpoints> = fc.oneof(
  fc.tuple(ipv4, ipv4, port, port).map(([s, d, sp, dp]): Endpoints => ({
    source: { host: v4Text(s), port: sp },
    destination: { host: v4Text(d), port: dp },
    expected: [
      { host: v4Text(s), port: sp },
      { host: v4Text(d), port: dp },
    ],
  })),
  fc.tuple(ipv6, ipv6, port, port, fc.integer({ min: 0, max: 2 })).map(([s, d, sp, dp, style]): Endpoints => ({
    source: { host: v6Text(s, style), port: sp },
    destination: { host: v6Text(d, style), port: dp },
    expected: [
      { host: canonicalIPv6(s), port: sp },
      { host: canonicalIPv6(d), port: dp },
    ],
  })),
  fc.tuple(unixPathArb, unixPathArb).map(([s, d]): Endpoints => ({
    source: { path: s },
    destination: { path: d },
    expected: [{ path: s }, { path: d }],
  })),
);

test('property: encodeProxyHeaderV2 then parse gives back the header, and length points at the payload', () => {
  fc.assert(
    fc.property(
      endpointsArb,
      fc.constantFrom('stream' as const, 'dgram' as const),
      tlvsArb,
      payloadArb,
      ({ source, destination, expected }, transport, tlvs, payload) => {
        const encoded = encodeProxyHeaderV2({ command: 'proxy', transport, source, destination, tlvs });
        const bytes = concat(encoded, payload);
        const before = bytes.slice();
        const h = parsed(bytes, 65551);
        assert.deepEqual(h, {
          version: 2,
          command: 'proxy',
          transport,
          source: expected[0],
          destination: expected[1],
          tlvs: tlvs.map((t: ProxyTlv) => ({ type: t.type, value: Uint8Array.from(t.value) })),
          length: encoded.length,
        });
        assert.deepEqual(bytes, before);
        assert.deepEqual(bytes.subarray(h.length), payload);
      },
    ),
    { numRuns: kNumRuns },
  );
});

test('property: encodeProxyHeaderV2 LOCAL parses as local whatever it was given, skipping its TLVs', () => {
  fc.assert(
    fc.property(endpointsArb, tlvsArb, payloadArb, ({ source, destination }, tlvs, payload) => {
      const encoded = encodeProxyHeaderV2({ command: 'local', source, destination, tlvs });
      const h = parsed(concat(encoded, payload), 65551);
      assert.deepEqual([h.command, h.transport, h.source, h.destination, h.tlvs], ['local', null, null, null, []]);
      assert.equal(h.length, encoded.length);
    }),
    { numRuns: kNumRuns },
  );
});

test('property: encodeProxyHeaderV1 then parse gives back the addresses', () => {
  const inet = fc.oneof(
    fc.tuple(ipv4, ipv4).map(([s, d]) => [v4Text(s), v4Text(d), v4Text(s), v4Text(d)]),
    fc
      .tuple(ipv6, ipv6, fc.integer({ min: 0, max: 2 }))
      .map(([s, d, style]) => [v6Text(s, style), v6Text(d, style), canonicalIPv6(s), canonicalIPv6(d)]),
  );
  fc.assert(
    fc.property(inet, port, port, payloadArb, ([s, d, sExpected, dExpected], sp, dp, payload) => {
      const line = encodeProxyHeaderV1({ host: s, port: sp }, { host: d, port: dp });
      assert.ok(line.length <= 104 && /^[\x20-\x7e]*\r\n$/.test(line), line);
      const h = parsed(concat(ascii(line), payload));
      assert.deepEqual(h, {
        version: 1,
        command: 'proxy',
        transport: 'stream',
        source: { host: sExpected, port: sp },
        destination: { host: dExpected, port: dp },
        tlvs: [],
        length: line.length,
      });
    }),
    { numRuns: kNumRuns },
  );
});

test('property: every strict prefix of an encoded header is incomplete', () => {
  const anyHeader = fc.oneof(
    fc
      .tuple(endpointsArb, tlvsArb)
      .map(([e, tlvs]) =>
        encodeProxyHeaderV2({ command: 'proxy', source: e.source, destination: e.destination, tlvs }),
      ),
    fc
      .tuple(ipv6, ipv6, port, port)
      .map(([s, d, sp, dp]) =>
        ascii(encodeProxyHeaderV1({ host: hexIPv6(s), port: sp }, { host: hexIPv6(d), port: dp })),
      ),
  );
  fc.assert(
    fc.property(anyHeader, (h) => {
      for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n), 65551), 'incomplete');
    }),
    { numRuns: 100 },
  );
});

/** Random bytes, and random bytes after each opening, so the deeper branches see garbage too. */
const garbageArb = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => concat(v2Signature, b)),
  fc
    .tuple(fc.constantFrom(0x20, 0x21), byte, fc.uint8Array({ maxLength: 300 }))
    .map(([vc, fam, b]) => concat(v2Signature, [vc, fam, 0, Math.min(b.length, 255)], b)),
  fc
    .tuple(fc.constantFrom('PROXY ', 'PROXY TCP4 ', 'PROXY TCP6 ', 'PROXY UNKNOWN'), fc.uint8Array({ maxLength: 120 }))
    .map(([s, b]) => concat(ascii(s), b)),
  fc
    .tuple(
      fc.constantFrom('PROXY TCP4 ', 'PROXY TCP6 '),
      fc.array(fc.constantFrom(...'0123456789abcdefABCDEF:. \r\n'), { maxLength: 110 }),
    )
    .map(([s, chars]) => ascii(s + chars.join(''))),
);

function checkShape(r: ReturnType<typeof parseProxyHeader>, n: number): void {
  if (r === 'incomplete') return;
  assert.ok(Object.isFrozen(r));
  if ('error' in r) {
    assert.ok(errorCodes.includes(r.error), r.error);
    assert.ok(r.message.startsWith('gevent: '));
    return;
  }
  assert.ok(r.length >= 15 && r.length <= n, `length ${r.length} of ${n}`);
  assert.equal(r.command === 'local', r.transport === null);
  assert.equal(r.source === null, r.destination === null);
}

test('property: no input throws, and each result is a header, incomplete or a known error', () => {
  fc.assert(
    fc.property(garbageArb, (bytes) => {
      checkShape(parseProxyHeader(bytes), bytes.length);
      checkShape(parseProxyHeader(bytes, 16), bytes.length);
    }),
    { numRuns: 2000 },
  );
});

test('property: an error code on a prefix persists, and a header ignores what follows it', () => {
  fc.assert(
    fc.property(garbageArb, fc.nat(), (bytes, cut) => {
      const whole = parseProxyHeader(bytes);
      const prefix = parseProxyHeader(bytes.subarray(0, cut % (bytes.length + 1)));
      if (typeof prefix === 'object' && 'error' in prefix) {
        assert.equal(typeof whole === 'object' && 'error' in whole ? whole.error : whole, prefix.error);
      } else if (typeof prefix === 'object') {
        assert.deepEqual(whole, prefix);
      }
      if (typeof whole === 'object' && !('error' in whole)) {
        assert.deepEqual(parseProxyHeader(bytes.subarray(0, whole.length)), whole);
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: a header followed by arbitrary bytes parses the same as alone', () => {
  const headerArb = fc.oneof(
    fc
      .tuple(endpointsArb, fc.constantFrom('proxy' as const, 'local' as const), tlvsArb)
      .map(([e, command, tlvs]) =>
        encodeProxyHeaderV2({ command, source: e.source, destination: e.destination, tlvs }),
      ),
    fc
      .tuple(ipv4, ipv4, port, port)
      .map(([s, d, sp, dp]) =>
        ascii(encodeProxyHeaderV1({ host: v4Text(s), port: sp }, { host: v4Text(d), port: dp })),
      ),
    fc.constant(ascii(encodeProxyHeaderV1(null, null))),
  );
  fc.assert(
    fc.property(headerArb, fc.uint8Array({ maxLength: 200 }), (h, tail) => {
      const alone = parsed(h, 65551);
      assert.equal(alone.length, h.length);
      assert.deepEqual(parseProxyHeader(concat(h, tail), 65551), alone);
    }),
    { numRuns: kNumRuns },
  );
});
