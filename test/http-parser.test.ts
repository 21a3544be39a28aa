/**
 * The HTTP example's request parser, without sockets: requests fed through a RingBuffer whole, in
 * pieces and pipelined; framing by Content-Length and chunked; every malformed or oversized
 * input it must refuse, with the status it must refuse it with.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RingBuffer } from '../src/index.js';
import { HttpError } from '../examples/http/errors.js';
import { HttpParser, type HttpLimits, type HttpRequest } from '../examples/http/parser.js';

interface Outcome {
  requests: HttpRequest[];
  error: HttpError | null;
  left: number;
}

/** How many feed() calls parsed input that wrapped around the end of the ring buffer's storage. */
let wrappedParses = 0;

/** Feeds `pieces` one at a time into one input buffer, as `data` calls would. */
function feed(pieces: (string | Uint8Array)[], limits: Partial<HttpLimits> = {}, input = new RingBuffer()): Outcome {
  const parser = new HttpParser(limits);
  const requests: HttpRequest[] = [];
  let error: HttpError | null = null;
  for (const piece of pieces) {
    input.write(typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece);
    if (input.peekAll()[1].length > 0) wrappedParses++;
    error = parser.parse(input, requests);
    if (error !== null) break;
  }
  return { requests, error, left: input.length };
}

function one(text: string, limits: Partial<HttpLimits> = {}): HttpRequest {
  const { requests, error } = feed([text], limits);
  assert.equal(error, null, `unexpected ${error?.message}`);
  assert.equal(requests.length, 1);
  return requests[0]!;
}

function refused(pieces: string | string[], status: number, limits: Partial<HttpLimits> = {}): HttpError {
  const { error } = feed(typeof pieces === 'string' ? [pieces] : pieces, limits);
  assert.ok(error !== null, 'the input was accepted');
  assert.equal(error.status, status, error.message);
  return error;
}

describe('http parser: requests', () => {
  test('a GET: method, target, path without query, version, headers by any case', () => {
    const r = one('GET /plaintext?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v 1 \t\r\nx-thing: v2\r\n\r\n');
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/plaintext?x=1');
    assert.equal(r.path, '/plaintext');
    assert.equal(r.minorVersion, 1);
    assert.equal(r.header('HOST'), 'a');
    assert.equal(r.header('x-thing'), 'v 1, v2');
    assert.equal(r.header('absent'), undefined);
    assert.equal(r.body.length, 0);
    assert.equal(r.keepAlive, true);
  });

  test('absolute-form targets route by their path', () => {
    assert.equal(one('GET http://h:1/json?q HTTP/1.1\r\nHost: h\r\n\r\n').path, '/json');
    assert.equal(one('GET http://h HTTP/1.1\r\nHost: h\r\n\r\n').path, '/');
  });

  test('empty lines before a request line are skipped, also across data calls', () => {
    assert.equal(feed(['\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 1);
    assert.equal(feed(['\r', '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 1);
  });

  test('CR and LF bytes before a request line are skipped in any order, as node:http does', () => {
    assert.equal(feed(['\nGET / HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 1);
    assert.equal(feed(['\rGET / HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 1);
    assert.equal(feed(['\n\n\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 1);
    assert.equal(feed(['GET /a HTTP/1.1\r\nHost: a\r\n\r\n\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n']).requests.length, 2);
  });

  test('Content-Length with leading zeros is its decimal value (RFC 9110; node:http agrees)', () => {
    const r = one('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000005\r\n\r\nhello');
    assert.equal(Buffer.from(r.body).toString(), 'hello');
    assert.equal(one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0000\r\n\r\n').body.length, 0);
    assert.equal(one(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${'0'.repeat(100)}3\r\n\r\nabc`).body.length, 3);
  });

  test('an unfinished head is left in the input, and completed by the next piece', () => {
    const input = new RingBuffer();
    const parser = new HttpParser();
    const out: HttpRequest[] = [];
    input.write(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r'));
    assert.equal(parser.parse(input, out), null);
    assert.equal(out.length, 0);
    assert.equal(input.length, 26);
    input.write(Buffer.from('\n'));
    assert.equal(parser.parse(input, out), null);
    assert.equal(out.length, 1);
    assert.equal(input.length, 0);
  });

  test('keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only with Connection: keep-alive', () => {
    assert.equal(one('GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n').keepAlive, false);
    assert.equal(one('GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n').keepAlive, true);
    const old = one('GET / HTTP/1.0\r\n\r\n');
    assert.equal(old.minorVersion, 0);
    assert.equal(old.keepAlive, false);
    assert.equal(one('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
  });

  test('Content-Length body, repeated identical Content-Length fields', () => {
    const r = one('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello');
    assert.equal(Buffer.from(r.body).toString(), 'hello');
    assert.equal(one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n').body.length, 0);
  });

  test('a body arriving in pieces is complete only with its last byte', () => {
    const { requests, left } = feed(['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n012', '3456', '78']);
    assert.equal(requests.length, 0);
    assert.equal(left, 0, 'body bytes are copied out as they arrive');
  });

  test('chunked body with extensions and trailers', () => {
    const r = one(
      'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n' +
        '5;name=value;flag\r\nhello\r\n' +
        '1 ; x="y z"\r\n \r\n' +
        'A\r\n0123456789\r\n' +
        '0\r\nX-Trailer: t\r\nChecksum: 1\r\n\r\n',
    );
    assert.equal(Buffer.from(r.body).toString(), 'hello 0123456789');
    assert.equal(r.header('transfer-encoding'), 'Chunked');
  });

  test('20,000 one-byte chunks make one 20,000-byte body', () => {
    const body = Buffer.alloc(20_000, 0x61);
    const r = one(
      `POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\na\r\n'.repeat(body.length)}0\r\n\r\n`,
    );
    assert.ok(Buffer.from(r.body).equals(body));
  });

  test('pipelined requests come out in order, and Expect: 100-continue shows on the pending one', () => {
    const parser = new HttpParser();
    const input = RingBuffer.withData(
      Buffer.from(
        'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n' +
          'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab' +
          'GET /3 HTTP/1.1\r\nHost: a\r\n\r\n' +
          'POST /4 HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 9\r\n\r\n1234',
      ),
    );
    const out: HttpRequest[] = [];
    assert.equal(parser.parse(input, out), null);
    assert.deepEqual(
      out.map((r) => r.target),
      ['/1', '/2', '/3'],
    );
    assert.equal(parser.pending?.target, '/4');
    assert.equal(parser.pending?.expectContinue, true);
  });

  test('input that wraps around the end of the ring buffer parses like contiguous input', () => {
    const input = new RingBuffer(64);
    const parser = new HttpParser();
    const out: HttpRequest[] = [];
    input.write(Buffer.from('GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HT'));
    assert.equal(parser.parse(input, out), null);
    input.write(Buffer.from('TP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody'));
    assert.ok(input.peekAll()[1].length > 0, 'the test input wraps');
    assert.equal(parser.parse(input, out), null);
    assert.deepEqual(
      out.map((r) => [r.target, Buffer.from(r.body).toString()]),
      [
        ['/a', ''],
        ['/b', 'body'],
      ],
    );
    assert.equal(input.length, 0);
  });

  test('exactly maxHeadBytes is accepted; maxBodyBytes exactly is accepted', () => {
    const head = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    one(head, { maxHeadBytes: head.length });
    one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc', { maxBodyBytes: 3 });
    one('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', { maxBodyBytes: 3 });
  });
});

describe('http parser: refusals', () => {
  const cases: [string, string, number][] = [
    ['garbage request line', 'HELLO\r\n\r\n', 400],
    ['no target', 'GET  HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 400],
    ['lower-case version', 'GET / http/1.1\r\nHost: a\r\n\r\n', 400],
    ['control byte in the target', 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['field without colon', 'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400],
    ['empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n', 400],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n', 400],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 400],
    ['bare LF line ending', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 400],
    ['bare LF head end', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['bare CR after the request line', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 400],
    ['bare CR at the end of a field line', 'GET / HTTP/1.1\r\nHost: a\r\r\n\r\n', 400],
    ['non-numeric Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n', 400],
    ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400],
    ['Content-Length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n', 400],
    ['conflicting Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400],
    [
      'chunked plus Content-Length',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      400,
    ],
    ['gzip transfer coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400],
    ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['bad chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['empty chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', 400],
    ['chunk data without CRLF', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', 400],
    [
      'malformed trailer',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n',
      400,
    ],
  ];
  for (const [name, text, status] of cases) {
    test(`${name} -> ${status}`, () => void refused(text, status));
  }

  // Each of these is incomplete (no CRLFCRLF yet) and node:http answers it with 400 at once; the
  // parser used to wait for more, until maxHeadBytes.
  const early: [string, string][] = [
    ['a field line ending in a bare LF, then CRLF', 'GET / HTTP/1.1\r\nHost: a\n\r\n'],
    ['a bare LF between field lines', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n'],
    ['a bare LF after the last field line', 'GET / HTTP/1.1\r\nHost: a\n'],
    ['a request line ending in a bare LF', 'GET / HTTP/1.1\n'],
    ['CRLF then a bare LF', 'GET / HTTP/1.1\r\nHost: a\r\n\n'],
    ['a bare CR inside a field line', 'GET / HTTP/1.1\r\nHost: a\rX'],
    ['a bare CR after the request line', 'GET / HTTP/1.1\rX'],
  ];
  for (const [name, text] of early) {
    test(`${name} -> 400 before the head is complete`, () => {
      const err = refused(text, 400);
      assert.equal(err.code, 'ERR_HTTP_BAD_REQUEST');
      refused([text.slice(0, -1), text.slice(-1)], 400);
    });
  }

  test('a bare LF is found when its CR-less line end straddles two data calls', () => {
    refused(['GET / HTTP/1.1\r\nHost: a', '\n\r\n'], 400);
    refused(['GET / HTTP/1.1\r\nHost: a\r', 'X'], 400);
  });

  test('a head still arriving whose last byte is a CR waits for the LF (as node:http does)', () => {
    const { error, left } = feed(['GET / HTTP/1.1\r\nHost: a\r']);
    assert.equal(error, null);
    assert.ok(left > 0);
    assert.equal(feed(['GET / HTTP/1.1\r\nHost: a\r', '\n\r', '\n']).requests.length, 1);
  });

  test('a head one byte over maxHeadBytes -> 431, whether complete or still arriving', () => {
    const head = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    refused(head, 431, { maxHeadBytes: head.length - 1 });
    refused(['GET / HTTP/1.1\r\nX: ', 'a'.repeat(100)], 431, { maxHeadBytes: 64 });
    refused('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(9000), 431);
  });

  test('Content-Length over maxBodyBytes -> 413 as soon as the head is in', () => {
    const err = refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n', 413, { maxBodyBytes: 3 });
    assert.equal(err.code, 'ERR_HTTP_CONTENT_TOO_LARGE');
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n', 413);
    refused(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000${'9'.repeat(16)}\r\n\r\n`, 413);
    refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0004\r\n\r\n', 413, { maxBodyBytes: 3 });
  });

  test('chunks adding up to more than maxBodyBytes -> 413; a huge chunk size -> 413', () => {
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\n', 413, {
      maxBodyBytes: 3,
    });
    refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n', 413);
  });

  test('trailers over maxHeadBytes -> 431', () => {
    refused(
      ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n', `X: ${'t'.repeat(80)}\r\n`],
      431,
      { maxHeadBytes: 64 },
    );
  });

  test('requests before the error are returned, and the error is sticky', () => {
    const parser = new HttpParser();
    const input = RingBuffer.withData(
      Buffer.from('GET /a HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n'),
    );
    const out: HttpRequest[] = [];
    const err = parser.parse(input, out);
    assert.equal(err?.status, 400);
    assert.equal(err?.code, 'ERR_HTTP_BAD_REQUEST');
    assert.ok(err instanceof HttpError);
    assert.deepEqual(
      out.map((r) => r.target),
      ['/a'],
    );
    input.write(Buffer.from('GET /c HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.equal(parser.parse(input, out), err);
    assert.equal(out.length, 1);
  });
});

/** A valid request, as generated: its fields and how its body is framed. */
interface Spec {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  framing: 'none' | 'length' | 'chunked';
  chunks: number[];
  ext: boolean;
  trailers: [string, string][];
  http10: boolean;
}

const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const fieldValue = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/);
const reserved = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect']);
const spec: fc.Arbitrary<Spec> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'X-CUSTOM'),
    target: fc.stringMatching(/^\/[!-~]{0,30}$/),
    headers: fc
      .array(fc.tuple(token, fieldValue), { maxLength: 6 })
      .map((hs) => hs.filter(([n]) => !reserved.has(n.toLowerCase()))),
    body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    framing: fc.constantFrom('none', 'length', 'chunked'),
    chunks: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }),
    ext: fc.boolean(),
    trailers: fc.array(fc.tuple(token, fieldValue), { maxLength: 2 }),
    http10: fc.boolean(),
  })
  .map((s) => (s.http10 && s.framing === 'chunked' ? { ...s, http10: false } : s));

function serialize(s: Spec): Buffer {
  const lines = [`${s.method} ${s.target} HTTP/1.${s.http10 ? 0 : 1}`, 'Host: example'];
  for (const [n, v] of s.headers) lines.push(`${n}: ${v}`);
  const body = s.framing === 'none' ? Buffer.alloc(0) : s.body;
  if (s.framing === 'length') lines.push(`Content-Length: ${body.length}`);
  if (s.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (s.framing !== 'chunked') return Buffer.concat([head, body]);
  const parts: Buffer[] = [head];
  let off = 0;
  let i = 0;
  while (off < body.length) {
    const n = Math.min(s.chunks[i++ % Math.max(1, s.chunks.length)] ?? 16, body.length - off);
    parts.push(
      Buffer.from(`${n.toString(16)}${s.ext ? ';e=1' : ''}\r\n`),
      body.subarray(off, off + n),
      Buffer.from('\r\n'),
    );
    off += n;
  }
  parts.push(Buffer.from(`0\r\n${s.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

function summary(r: HttpRequest): unknown {
  return {
    method: r.method,
    target: r.target,
    minor: r.minorVersion,
    headers: r.headers,
    keepAlive: r.keepAlive,
    body: Buffer.from(r.body).toString('hex'),
  };
}

describe('http parser: property', () => {
  test('any valid requests, pipelined and split at random points, parse as they do whole', () => {
    fc.assert(
      fc.property(
        fc.array(spec, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 24 }),
        fc.nat({ max: 1024 }),
        (specs, cuts, capacity) => {
          const wire = Buffer.concat(specs.map(serialize));
          const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const pieces: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, wire.length]) {
            pieces.push(wire.subarray(prev, p));
            prev = p;
          }
          const whole = feed([wire]);
          const split = feed(pieces, {}, new RingBuffer(capacity));
          assert.equal(whole.error, null, whole.error?.message);
          assert.equal(split.error, null, split.error?.message);
          assert.equal(whole.requests.length, specs.length);
          assert.deepEqual(split.requests.map(summary), whole.requests.map(summary));
          assert.equal(split.left, 0);
          specs.forEach((s, i) => {
            const r = whole.requests[i]!;
            assert.equal(r.method, s.method);
            assert.equal(r.target, s.target);
            assert.equal(Buffer.from(r.body).toString('hex'), s.framing === 'none' ? '' : s.body.toString('hex'));
            for (const [n, v] of s.headers) assert.ok(r.header(n)?.includes(v));
          });
        },
      ),
      { numRuns: 300 },
    );
    assert.ok(wrappedParses > 0, 'some runs parsed wrapped input');
  });
});
