import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { RingBuffer } from '../src/ringbuffer.js';
import { BufferEmptyError, InvalidArgumentError } from '../src/errors.js';

const kNumRuns = 10_000;
const kMinCapacityBytes = 64;

type Op =
  | { k: 'write'; n: number; seed: number; off: number }
  | { k: 'writeByte'; b: number }
  | { k: 'writeString'; s: string }
  | { k: 'read'; size: number }
  | { k: 'readByte' }
  | { k: 'peek'; n: number }
  | { k: 'peekAll' }
  | { k: 'retrieve'; n: number }
  | { k: 'retrieveAll' }
  | { k: 'peekUint'; bits: 8 | 16 | 32 | 64; le: boolean; offset: number }
  | { k: 'indexOf'; needle: 'byte' | 'slice'; b: number; at: number; n: number; from: number }
  | { k: 'virtualRead'; size: number }
  | { k: 'virtualFlush' }
  | { k: 'virtualRevert' }
  | { k: 'bytes' }
  | { k: 'reset' }
  | { k: 'borrow'; n: number; seed: number; off: number }
  | { k: 'release' };

type Init = { kind: 'size'; size: number } | { kind: 'data'; n: number; seed: number };

/** Deterministic bytes that differ by position and seed, so any reordering shows. */
function pattern(n: number, seed: number, off = 0): Uint8Array {
  const backing = new Uint8Array(n + off + 2).fill(0xee);
  for (let i = 0; i < n; i++) backing[off + i] = (seed + i * 167) & 255;
  return backing.subarray(off, off + n);
}

function roundCapacity(bytes: number): number {
  let cap = kMinCapacityBytes;
  while (cap < bytes) cap *= 2;
  return cap;
}

function assertBytes(actual: Uint8Array, expected: number[], what: string): void {
  let same = actual.length === expected.length;
  for (let i = 0; same && i < expected.length; i++) same = actual[i] === expected[i];
  if (!same) assert.deepEqual(Array.from(actual), expected, what);
}

/** The unsigned integer in content[offset, offset + bytes), or 0n when the content is shorter. */
function uintAt(content: number[], offset: number, bytes: number, le: boolean): bigint {
  if (content.length < offset + bytes) return 0n;
  let v = 0n;
  for (let i = 0; i < bytes; i++) v = (v << 8n) | BigInt(content[offset + (le ? bytes - 1 - i : i)]!);
  return v;
}

/** Buffer.indexOf() on the content: the reference for RingBuffer.indexOf(). */
function modelIndexOf(content: number[], needle: number | Uint8Array, from: number): number {
  return Buffer.from(content).indexOf(needle, from);
}

/** The reference: readable bytes as a plain array, plus the virtual offset and expected capacity. */
class Model {
  content: number[] = [];
  vpos = 0;
  cap: number;
  borrowed = false;
  constructor(cap: number) {
    this.cap = cap;
  }
  consume(n: number): void {
    this.content.splice(0, n);
    this.vpos = 0;
  }
  append(bytes: ArrayLike<number>): void {
    const n = bytes.length;
    if (n === 0) return;
    const needed = this.content.length + n;
    if (this.borrowed) {
      this.cap = roundCapacity(needed);
      this.borrowed = false;
    } else if (needed > this.cap) {
      this.cap = roundCapacity(Math.max(2 * this.cap, needed));
    }
    for (let i = 0; i < n; i++) this.content.push(bytes[i]!);
  }
}

/** Evidence that the runs exercised the interesting layouts, so the property cannot pass vacuously. */
const seen = {
  runsWrapped: 0,
  wrappedPeeks: 0,
  growthAcrossWrap: 0,
  wrappedVirtualReads: 0,
  wrappedUintPeeks: 0,
  shortUintPeeks: 0,
  wrappedSearches: 0,
  matchesPastTheWrap: 0,
  borrowedWrites: 0,
  releasesWithBytes: 0,
};

/** Sizes for the mixed profile: mostly small, so consumption is often partial, sometimes large. */
const writeSize = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 16 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }) },
);
const size = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 16 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 400 }) },
);

/** A peek of any width and byte order, half the time at the default offset 0. */
const peekUintArb = fc.record({
  k: fc.constant('peekUint' as const),
  bits: fc.constantFrom(8 as const, 16 as const, 32 as const, 64 as const),
  le: fc.boolean(),
  offset: fc.oneof(fc.constant(0), fc.nat(12)),
});
/** A byte, or a slice of the content chosen when the op runs (so it is usually present). */
const indexOfArb = fc.record({
  k: fc.constant('indexOf' as const),
  needle: fc.constantFrom('byte' as const, 'slice' as const),
  b: fc.nat(255),
  at: fc.nat(400),
  n: fc.integer({ min: 0, max: 6 }),
  from: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -40, max: 40 }) }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      n: writeSize,
      seed: fc.nat(255),
      off: fc.nat(3),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('writeByte' as const), b: fc.nat(255) }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('writeString' as const), s: fc.string({ unit: 'binary', maxLength: 24 }) }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('read' as const), size }) },
  { weight: 2, arbitrary: fc.constant({ k: 'readByte' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('peek' as const), n: fc.oneof(size, fc.constant(Number.POSITIVE_INFINITY)) }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'peekAll' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('retrieve' as const), n: size }) },
  { weight: 1, arbitrary: fc.constant({ k: 'retrieveAll' as const }) },
  { weight: 2, arbitrary: peekUintArb },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('virtualRead' as const), size }) },
  { weight: 2, arbitrary: indexOfArb },
  { weight: 1, arbitrary: fc.constant({ k: 'virtualFlush' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'virtualRevert' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'bytes' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('borrow' as const), n: fc.nat(80), seed: fc.nat(255), off: fc.nat(3) }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'release' as const }) },
);

/**
 * A streaming profile, like a connection's input: balanced small writes and partial reads and no
 * operation that empties the buffer at once, so the read position walks around the storage and the
 * data wraps and grows while wrapped far more often than under the mixed profile.
 */
const chunk = fc.integer({ min: 1, max: 24 });
const streamOpArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant('write' as const), n: chunk, seed: fc.nat(255), off: fc.nat(3) }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('writeByte' as const), b: fc.nat(255) }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('writeString' as const), s: fc.string({ unit: 'binary', maxLength: 8 }) }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('read' as const), size: chunk }) },
  { weight: 1, arbitrary: fc.constant({ k: 'readByte' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('retrieve' as const), n: chunk }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('peek' as const), n: fc.nat(48) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'peekAll' as const }) },
  { weight: 2, arbitrary: peekUintArb },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('virtualRead' as const), size: chunk }) },
  { weight: 2, arbitrary: indexOfArb },
  { weight: 1, arbitrary: fc.constant({ k: 'virtualFlush' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'virtualRevert' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'bytes' as const }) },
);

const opsArb = fc.oneof(
  fc.array(opArb, { minLength: 10, maxLength: 100, size: 'max' }),
  fc.array(streamOpArb, { minLength: 10, maxLength: 100, size: 'max' }),
);

const initArb: fc.Arbitrary<Init> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('size' as const), size: fc.nat(16) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('data' as const), n: fc.nat(16), seed: fc.nat(255) }) },
);

function runSequence(init: Init, ops: Op[]): void {
  let rb: RingBuffer;
  let m: Model;
  if (init.kind === 'size') {
    rb = new RingBuffer(init.size);
    m = new Model(init.size);
  } else {
    const data = pattern(init.n, init.seed);
    rb = RingBuffer.withData(data);
    m = new Model(init.n);
    m.append(data);
    data.fill(0);
  }
  let lent: { view: Uint8Array; snapshot: number[] } | undefined;
  let wrapped = false;

  const writeChecked = (bytes: ArrayLike<number>, doWrite: () => void): void => {
    const wrappedBefore = rb.peekAll()[1].length > 0;
    const capBefore = rb.capacity;
    if (m.borrowed && m.content.length > 0 && bytes.length > 0) seen.borrowedWrites++;
    doWrite();
    m.append(bytes);
    if (wrappedBefore && rb.capacity !== capBefore) {
      seen.growthAcrossWrap++;
      assertBytes(rb.bytes(), m.content, 'content after growth across the wrap');
    }
  };

  for (const op of ops) {
    switch (op.k) {
      case 'write': {
        const data = pattern(op.n, op.seed, op.off);
        writeChecked(data, () => assert.equal(rb.write(data), op.n));
        break;
      }
      case 'writeByte':
        writeChecked([op.b], () => rb.writeByte(op.b));
        break;
      case 'writeString': {
        const encoded = Buffer.from(op.s, 'utf8');
        writeChecked(encoded, () => assert.equal(rb.writeString(op.s), encoded.length));
        break;
      }
      case 'read': {
        const target = new Uint8Array(op.size + 1).fill(0xee).subarray(0, op.size);
        const n = Math.min(op.size, m.content.length);
        assert.equal(rb.read(target), n);
        assertBytes(target.subarray(0, n), m.content.slice(0, n), 'read');
        for (let i = n; i <= op.size; i++) assert.equal(new Uint8Array(target.buffer)[i], 0xee, 'read wrote past n');
        m.consume(n);
        break;
      }
      case 'readByte':
        if (m.content.length === 0) {
          assert.throws(
            () => rb.readByte(),
            (err: unknown) => err instanceof BufferEmptyError && err.code === 'ERR_GEVENT_BUFFER_EMPTY',
          );
        } else {
          assert.equal(rb.readByte(), m.content[0]);
          m.consume(1);
        }
        break;
      case 'peek':
      case 'peekAll': {
        const n = op.k === 'peek' ? Math.min(op.n, m.content.length) : m.content.length;
        const [first, end] = op.k === 'peek' ? rb.peek(op.n) : rb.peekAll();
        assert.equal(first.length + end.length, n);
        if (first.length === n) assert.equal(end.length, 0, 'end must be empty when first covers everything');
        if (end.length > 0) {
          seen.wrappedPeeks++;
          assert.ok(first.length > 0, 'a wrapped peek has a non-empty first');
        }
        assertBytes(first, m.content.slice(0, first.length), 'peek first');
        assertBytes(end, m.content.slice(first.length, n), 'peek end');
        break;
      }
      case 'retrieve':
        rb.retrieve(op.n);
        m.consume(Math.min(op.n, m.content.length));
        break;
      case 'retrieveAll':
        rb.retrieveAll();
        m.consume(m.content.length);
        break;
      case 'peekUint': {
        const bytes = op.bits / 8;
        const want = uintAt(m.content, op.offset, bytes, op.le);
        const o = op.offset;
        const arg = o === 0 ? undefined : o;
        let got: number | bigint;
        if (op.bits === 8) got = rb.peekUint8(arg);
        else if (op.bits === 16) got = op.le ? rb.peekUint16LE(arg) : rb.peekUint16(arg);
        else if (op.bits === 32) got = op.le ? rb.peekUint32LE(arg) : rb.peekUint32(arg);
        else got = op.le ? rb.peekUint64LE(arg) : rb.peekUint64(arg);
        assert.equal(got, op.bits === 64 ? want : Number(want), `peekUint${op.bits}${op.le ? 'LE' : ''}(${o})`);
        const firstLen = rb.peekAll()[0].length;
        if (m.content.length < o + bytes) seen.shortUintPeeks++;
        else if (o < firstLen && o + bytes > firstLen) seen.wrappedUintPeeks++;
        break;
      }
      case 'indexOf': {
        const len = m.content.length;
        let needle: number | Uint8Array = op.b;
        if (op.needle === 'slice') {
          const n = Math.min(op.n, len);
          const at = op.at % (len - n + 1);
          needle = Uint8Array.from(m.content.slice(at, at + n));
        }
        const want = modelIndexOf(m.content, needle, op.from);
        assert.equal(rb.indexOf(needle, op.from), want, `indexOf(${String(needle)}, ${op.from})`);
        const firstLen = rb.peekAll()[0].length;
        if (firstLen < len) {
          seen.wrappedSearches++;
          const n = typeof needle === 'number' ? 1 : needle.length;
          if (want >= 0 && want + n > firstLen) seen.matchesPastTheWrap++;
        }
        break;
      }
      case 'virtualRead': {
        const target = new Uint8Array(op.size);
        const n = Math.min(op.size, m.content.length - m.vpos);
        const [first] = rb.peekAll();
        if (m.vpos + n > first.length && n > 0) seen.wrappedVirtualReads++;
        assert.equal(rb.virtualRead(target), n);
        assertBytes(target.subarray(0, n), m.content.slice(m.vpos, m.vpos + n), 'virtualRead');
        m.vpos += n;
        break;
      }
      case 'virtualFlush':
        rb.virtualFlush();
        m.consume(m.vpos);
        break;
      case 'virtualRevert':
        rb.virtualRevert();
        m.vpos = 0;
        break;
      case 'bytes': {
        const copy = rb.bytes();
        assertBytes(copy, m.content, 'bytes');
        if (copy.length > 0) {
          copy[0] = copy[0]! ^ 0xff;
          assert.equal(rb.peekUint8(), m.content[0], 'bytes() must return a copy');
        }
        break;
      }
      case 'reset':
        rb.reset();
        m.consume(m.content.length);
        break;
      case 'borrow': {
        const view = pattern(op.n, op.seed, op.off);
        if (m.content.length > 0) {
          assert.throws(() => rb.borrow(view), InvalidArgumentError);
          break;
        }
        rb.borrow(view);
        m.content = Array.from(view);
        m.vpos = 0;
        m.cap = view.length;
        m.borrowed = true;
        lent = { view, snapshot: Array.from(view) };
        break;
      }
      case 'release':
        if (m.borrowed && m.content.length > 0) seen.releasesWithBytes++;
        rb.release();
        if (m.borrowed) {
          m.cap = m.content.length === 0 ? 0 : roundCapacity(m.content.length);
          m.borrowed = false;
        }
        if (rb.peekAll()[1].length > 0) wrapped = true;
        if (lent !== undefined) {
          assertBytes(lent.view, lent.snapshot, 'borrowed memory was written');
          lent.view.fill(0x5a);
          lent = undefined;
        }
        break;
    }

    assert.equal(rb.length, m.content.length, `length after ${op.k}`);
    assert.equal(rb.isEmpty(), m.content.length === 0, `isEmpty after ${op.k}`);
    assert.equal(rb.capacity, m.cap, `capacity after ${op.k}`);
    assert.equal(rb.isFull(), m.content.length === m.cap, `isFull after ${op.k}`);
    assert.equal(rb.virtualLength(), m.content.length - m.vpos, `virtualLength after ${op.k}`);
    if (rb.peekAll()[1].length > 0) wrapped = true;
    if (lent !== undefined) {
      assertBytes(lent.view, lent.snapshot, 'borrowed memory was written');
    }
  }
  assertBytes(rb.bytes(), m.content, 'final content');
  if (wrapped) seen.runsWrapped++;
}

test('ring buffer matches a plain array model over random operation sequences', () => {
  fc.assert(
    fc.property(initArb, opsArb, (init, ops) => runSequence(init, ops)),
    { numRuns: kNumRuns },
  );
  assert.ok(seen.runsWrapped > kNumRuns / 5, `too few runs that wrapped: ${seen.runsWrapped}`);
  assert.ok(seen.wrappedPeeks > kNumRuns / 4, `too few wrapped peeks: ${seen.wrappedPeeks}`);
  assert.ok(seen.growthAcrossWrap > kNumRuns / 10, `too few growths across the wrap: ${seen.growthAcrossWrap}`);
  assert.ok(seen.wrappedVirtualReads > kNumRuns / 50, `too few wrapped virtual reads: ${seen.wrappedVirtualReads}`);
  assert.ok(seen.wrappedUintPeeks > kNumRuns / 200, `too few integer peeks across the wrap: ${seen.wrappedUintPeeks}`);
  assert.ok(
    seen.shortUintPeeks > kNumRuns / 50,
    `too few integer peeks past the readable bytes: ${seen.shortUintPeeks}`,
  );
  assert.ok(seen.wrappedSearches > kNumRuns / 10, `too few searches of wrapped content: ${seen.wrappedSearches}`);
  assert.ok(
    seen.matchesPastTheWrap > kNumRuns / 50,
    `too few matches ending past the wrap: ${seen.matchesPastTheWrap}`,
  );
  assert.ok(seen.borrowedWrites > kNumRuns / 50, `too few writes while borrowing: ${seen.borrowedWrites}`);
  assert.ok(seen.releasesWithBytes > kNumRuns / 200, `too few releases with bytes left: ${seen.releasesWithBytes}`);
});

test('peek returns a non-empty end once the data wraps', () => {
  const rb = new RingBuffer(8);
  rb.write(Uint8Array.of(1, 2, 3, 4, 5, 6));
  rb.retrieve(4);
  rb.write(Uint8Array.of(7, 8, 9, 10, 11));
  assert.equal(rb.capacity, 8);
  assert.ok(rb.isFull() === false && rb.length === 7);
  const [first, end] = rb.peekAll();
  assert.deepEqual(Array.from(first), [5, 6, 7, 8]);
  assert.deepEqual(Array.from(end), [9, 10, 11]);
  const [first3, end3] = rb.peek(3);
  assert.deepEqual(Array.from(first3), [5, 6, 7]);
  assert.equal(end3.length, 0);
});

test('growth across the wrap keeps the bytes in order', () => {
  const rb = new RingBuffer(8);
  rb.write(Uint8Array.of(1, 2, 3, 4, 5, 6));
  rb.retrieve(4);
  rb.write(Uint8Array.of(7, 8, 9, 10, 11, 12));
  assert.ok(rb.isFull());
  assert.equal(rb.peekAll()[1].length, 4, 'the data must wrap before growing');
  rb.write(Uint8Array.of(13, 14));
  assert.equal(rb.capacity, 64);
  const [first, end] = rb.peekAll();
  assert.deepEqual(Array.from(first), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  assert.equal(end.length, 0);
});

test('big-endian peeks and virtual reads span the wrap', () => {
  const rb = new RingBuffer(8);
  rb.write(Uint8Array.of(0, 0, 0, 0, 0, 0x01));
  rb.retrieve(5);
  rb.write(Uint8Array.of(0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08));
  assert.equal(rb.peekAll()[1].length, 5);
  assert.equal(rb.peekUint16(), 0x0102);
  assert.equal(rb.peekUint32(), 0x01020304);
  assert.equal(rb.peekUint64(), 0x0102030405060708n);
  const head = new Uint8Array(2);
  assert.equal(rb.virtualRead(head), 2);
  assert.deepEqual(Array.from(head), [0x01, 0x02]);
  const rest = new Uint8Array(16);
  assert.equal(rb.virtualRead(rest), 6);
  assert.deepEqual(Array.from(rest.subarray(0, 6)), [3, 4, 5, 6, 7, 8]);
  assert.equal(rb.virtualLength(), 0);
  assert.equal(rb.length, 8);
});
