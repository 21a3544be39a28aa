/**
 * RingBuffer.indexOf() across the wrap: a line protocol's `input.indexOf(0x0a)` or
 * `input.indexOf(crlf)` must find a delimiter wherever the storage wraps, including one whose bytes
 * straddle the wrap, and must never match stale bytes outside the readable region.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { RingBuffer } from '../src/ringbuffer.js';
import { InvalidArgumentError } from '../src/errors.js';

const kNumRuns = 5_000;
/** indexOf() switches from its byte loop to the native search past this many bytes. */
const kSearchLoopMaxBytes = 32;

/**
 * A buffer holding `content` whose readable region starts `shift` bytes into storage of `cap`
 * bytes, so it wraps when shift + content.length > cap. The bytes before the read position and the
 * free space hold `stale`, which a search must never match.
 */
function wrappedBuffer(content: Uint8Array, cap: number, shift: number, stale: number): RingBuffer {
  const rb = new RingBuffer(cap);
  rb.write(new Uint8Array(cap).fill(stale));
  rb.retrieveAll();
  const head = Math.min(content.length, cap - shift);
  rb.write(new Uint8Array(shift).fill(stale));
  rb.write(content.subarray(0, head));
  rb.retrieve(shift);
  rb.write(content.subarray(head));
  assert.equal(rb.capacity, cap, 'the setup must not grow the storage');
  return rb;
}

/** A buffer borrowing `content` out of a larger backing array whose other bytes are `stale`. */
function borrowedBuffer(content: Uint8Array, before: number, stale: number): RingBuffer {
  const backing = new Uint8Array(before + content.length + 40).fill(stale);
  backing.set(content, before);
  const rb = new RingBuffer();
  rb.borrow(backing.subarray(before, before + content.length));
  return rb;
}

/** The reference: a naive search of the readable bytes, with Buffer.indexOf()'s fromIndex rules. */
function modelIndexOf(content: Uint8Array, needle: Uint8Array, fromIndex: number): number {
  const len = content.length;
  const from = fromIndex < 0 ? Math.max(len + fromIndex, 0) : fromIndex;
  if (needle.length === 0) return Math.min(from, len);
  for (let i = from; i + needle.length <= len; i++) {
    let j = 0;
    while (j < needle.length && content[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

const seen = {
  wrapped: 0,
  straddlingNative: 0,
  straddlingLongNeedle: 0,
  foundAfterWrapNative: 0,
  nativeWrapped: 0,
  absent: 0,
  negativeFrom: 0,
  borrowedFound: 0,
};

/** A small alphabet, so needles occur often and partial matches abound. */
const contentArb = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ min: 0, max: 3, maxLength: 40 }) },
  { weight: 3, arbitrary: fc.uint8Array({ min: 0, max: 3, minLength: 33, maxLength: 300 }) },
  { weight: 1, arbitrary: fc.uint8Array({ min: 0, max: 255, maxLength: 300 }) },
);

type NeedleSpec =
  | { kind: 'byte'; b: number }
  | { kind: 'slice'; at: number; n: number }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'overhang'; n: number; extra: number };

const needleArb: fc.Arbitrary<NeedleSpec> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('byte' as const), b: fc.nat(4) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('slice' as const),
      at: fc.nat(400),
      n: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 30, max: 80 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('random' as const),
      bytes: fc.uint8Array({ min: 0, max: 4, maxLength: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('overhang' as const),
      n: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 32, max: 40 })),
      extra: fc.nat(4),
    }),
  },
);

const caseArb = fc.record({
  content: contentArb,
  needle: needleArb,
  slack: fc.oneof(fc.nat(4), fc.nat(40)),
  shift: fc.nat(400),
  from: fc.oneof(
    { weight: 3, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: -320, max: 320 }) },
  ),
  stale: fc.nat(4),
  borrow: fc.nat(3).map((n) => n === 0),
});

test('indexOf matches a naive search and Buffer.indexOf over wrapped and borrowed layouts', () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const len = c.content.length;
      let needle: Uint8Array;
      if (c.needle.kind === 'byte') needle = Uint8Array.of(c.needle.b);
      else if (c.needle.kind === 'random') needle = c.needle.bytes;
      else if (c.needle.kind === 'overhang')
        needle = Uint8Array.of(...c.content.subarray(Math.max(len - c.needle.n, 0)), c.needle.extra);
      else {
        const n = Math.min(c.needle.n, len);
        const at = c.needle.at % (len - n + 1);
        needle = c.content.slice(at, at + n);
      }
      const cap = Math.max(len + c.slack, 1);
      const shift = c.shift % cap;
      const rb = c.borrow ? borrowedBuffer(c.content, shift, c.stale) : wrappedBuffer(c.content, cap, shift, c.stale);
      const firstLen = rb.peekAll()[0].length;

      const want = modelIndexOf(c.content, needle, c.from);
      assert.equal(want, Buffer.from(c.content).indexOf(needle, c.from), 'the model agrees with Buffer.indexOf');
      const got = c.needle.kind === 'byte' ? rb.indexOf(c.needle.b, c.from) : rb.indexOf(needle, c.from);
      assert.equal(
        got,
        want,
        `indexOf([${Array.from(needle)}], ${c.from}) in ${len} bytes, ${firstLen} before the wrap`,
      );
      if (c.from === 0) assert.equal(rb.indexOf(needle), want, 'fromIndex defaults to 0');
      assert.equal(rb.length, len, 'indexOf consumes nothing');

      const wrapped = firstLen < len;
      if (wrapped) seen.wrapped++;
      if (c.from < 0) seen.negativeFrom++;
      if (want < 0) seen.absent++;
      const from = c.from < 0 ? Math.max(len + c.from, 0) : c.from;
      const native = len - from > kSearchLoopMaxBytes;
      if (wrapped && native) seen.nativeWrapped++;
      if (wrapped && want >= 0 && needle.length > 0) {
        if (want < firstLen && want + needle.length > firstLen) {
          if (native) seen.straddlingNative++;
          if (needle.length > kSearchLoopMaxBytes) seen.straddlingLongNeedle++;
        }
        if (want >= firstLen && native) seen.foundAfterWrapNative++;
      }
      if (c.borrow && want > 0) seen.borrowedFound++;
    }),
    { numRuns: kNumRuns },
  );
  assert.ok(seen.wrapped > kNumRuns / 5, `too few wrapped buffers: ${seen.wrapped}`);
  assert.ok(seen.nativeWrapped > kNumRuns / 10, `too few wrapped searches on the native path: ${seen.nativeWrapped}`);
  assert.ok(
    seen.straddlingNative > kNumRuns / 100,
    `too few native-path matches straddling the wrap: ${seen.straddlingNative}`,
  );
  assert.ok(
    seen.straddlingLongNeedle > kNumRuns / 100,
    `too few long needles straddling the wrap: ${seen.straddlingLongNeedle}`,
  );
  assert.ok(
    seen.foundAfterWrapNative > kNumRuns / 250,
    `too few native-path matches after the wrap: ${seen.foundAfterWrapNative}`,
  );
  assert.ok(seen.absent > kNumRuns / 5, `too few absent needles: ${seen.absent}`);
  assert.ok(seen.negativeFrom > kNumRuns / 10, `too few negative fromIndex values: ${seen.negativeFrom}`);
  assert.ok(seen.borrowedFound > kNumRuns / 40, `too few matches in borrowed memory: ${seen.borrowedFound}`);
});

/** "ab\r" before the wrap, "\ncd\r\n" after it, in 8 bytes of storage. */
function crlfAcrossTheWrap(): RingBuffer {
  const rb = wrappedBuffer(Buffer.from('ab\r\ncd\r\n'), 8, 5, 0x0a);
  assert.deepEqual(
    rb.peekAll().map((v) => Buffer.from(v).toString('latin1')),
    ['ab\r', '\ncd\r\n'],
  );
  return rb;
}

test('a CRLF whose CR ends the storage and whose LF starts it is found', () => {
  const rb = crlfAcrossTheWrap();
  const crlf = Buffer.from('\r\n');
  assert.equal(rb.indexOf(crlf), 2);
  assert.equal(rb.indexOf(0x0a), 3);
  assert.equal(rb.indexOf(crlf, 3), 6);
  assert.equal(rb.indexOf(0x0a, 4), 7);
  assert.equal(rb.indexOf(crlf, 7), -1);
  assert.equal(rb.indexOf(Buffer.from('b\r\nc')), 1);
  assert.equal(rb.indexOf(Buffer.from('ab\r\ncd\r\n')), 0, 'the whole content');
  assert.equal(rb.indexOf(Buffer.from('ab\r\ncd\r\n\n')), -1, 'longer than the content');
});

test('the bytes before the read position and the free space are never matched', () => {
  const rb = crlfAcrossTheWrap();
  rb.retrieve(4);
  assert.equal(rb.indexOf(0x61), -1, 'a consumed "a" still sits in storage');
  assert.equal(rb.indexOf(Buffer.from('\r\n')), 2);
  rb.retrieve(4);
  assert.equal(rb.indexOf(0x0a), -1);
  const big = wrappedBuffer(new Uint8Array(100).fill(1), 256, 200, 0x0a);
  assert.equal(big.indexOf(0x0a), -1, 'a long search stops at the end of the readable bytes');
  assert.equal(big.indexOf(Uint8Array.of(1, 0x0a)), -1);
  const content = Buffer.from('A'.repeat(39) + '\rB');
  const endsOneByteAfterTheWrap = wrappedBuffer(content, 64, 24, 0x0a);
  assert.equal(endsOneByteAfterTheWrap.peekAll()[1].length, 1);
  assert.equal(endsOneByteAfterTheWrap.indexOf(Buffer.from('\rB\n')), -1, 'a match would run into the free space');
  assert.equal(
    endsOneByteAfterTheWrap.indexOf(Buffer.from('A'.repeat(33) + '\rB\n')),
    -1,
    'the same with a long needle',
  );
  assert.equal(endsOneByteAfterTheWrap.indexOf(Buffer.from('A'.repeat(33) + '\rB')), 6);
});

test('a long delimiter straddling the wrap is found (a multipart boundary)', () => {
  const boundary = Buffer.from('\r\n--' + 'x'.repeat(60));
  const content = Buffer.concat([Buffer.from('body'), boundary, Buffer.from('--\r\n')]);
  for (let shift = 0; shift < 128; shift += 7) {
    const rb = wrappedBuffer(content, 128, shift, 0x78);
    assert.equal(rb.indexOf(boundary), 4, `shift ${shift}`);
    assert.equal(rb.indexOf(boundary, 5), -1, `shift ${shift}`);
  }
});

test('line splitting with indexOf, fed 5 bytes at a time, reads every line across many wraps', () => {
  const rb = new RingBuffer(16);
  const lines: string[] = [];
  let wrappedReads = 0;
  const stream = Buffer.from(Array.from({ length: 200 }, (_, i) => `line ${i}\r\n`).join(''));
  for (let at = 0; at < stream.length; at += 5) {
    rb.write(stream.subarray(at, at + 5));
    if (rb.peekAll()[1].length > 0) wrappedReads++;
    for (let nl = rb.indexOf(Buffer.from('\r\n')); nl >= 0; nl = rb.indexOf(Buffer.from('\r\n'))) {
      const line = new Uint8Array(nl);
      rb.read(line);
      rb.retrieve(2);
      lines.push(Buffer.from(line).toString());
    }
  }
  assert.equal(lines.length, 200);
  assert.equal(lines[199], 'line 199');
  assert.equal(rb.length, 0);
  assert.equal(rb.capacity, 16, 'no line outgrew the storage');
  assert.ok(wrappedReads > 50, `too few lines that wrapped: ${wrappedReads}`);
});

test('fromIndex: negative counts from the end, past the end finds nothing, an empty needle matches at it', () => {
  const rb = crlfAcrossTheWrap();
  assert.equal(rb.indexOf(0x0d, -2), 6);
  assert.equal(rb.indexOf(0x0d, -100), 2, 'clamped to 0');
  assert.equal(rb.indexOf(0x0d, 100), -1);
  const empty = new Uint8Array(0);
  assert.equal(rb.indexOf(empty), 0);
  assert.equal(rb.indexOf(empty, 5), 5);
  assert.equal(rb.indexOf(empty, 100), 8);
  assert.equal(rb.indexOf(empty, -3), 5);
  assert.equal(new RingBuffer().indexOf(empty), 0);
  assert.equal(new RingBuffer().indexOf(0), -1);
});

test('a single-byte Uint8Array needle is the same as its byte', () => {
  const rb = crlfAcrossTheWrap();
  assert.equal(rb.indexOf(Uint8Array.of(0x0a)), 3);
  assert.equal(rb.indexOf(Buffer.from('c')), 4);
});

test('indexOf refuses values that are not a byte or bytes, and a fromIndex that is not an integer', () => {
  const rb = crlfAcrossTheWrap();
  const loose = rb as unknown as { indexOf(value: unknown, fromIndex?: unknown): number };
  const refused = (fragment: string) => (err: unknown) =>
    err instanceof InvalidArgumentError && err.code === 'ERR_GEVENT_INVALID_ARGUMENT' && err.message.includes(fragment);
  assert.throws(
    () => loose.indexOf(256),
    refused('RingBuffer.indexOf() value must be an integer from 0 to 255 or a Uint8Array, got number 256'),
  );
  assert.throws(() => loose.indexOf(-1), refused('got number -1'));
  assert.throws(() => loose.indexOf(10.5), refused('got number 10.5'));
  assert.throws(() => loose.indexOf('\n'), refused('got "\\n"'));
  assert.throws(() => loose.indexOf([13, 10]), refused('got an array'));
  assert.throws(
    () => loose.indexOf(10, 1.5),
    refused('RingBuffer.indexOf() fromIndex must be an integer, got number 1.5'),
  );
  assert.throws(() => loose.indexOf(10, Number.NaN), refused('got number NaN'));
  assert.throws(() => loose.indexOf(10, '1'), refused('got "1"'));
});
