/**
 * RingBuffer's integer peeks: both byte orders, at an offset, across the wrap, and the documented
 * way to tell a short buffer (which peeks as 0) from a real zero.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { RingBuffer } from '../src/ringbuffer.js';
import { InvalidArgumentError } from '../src/errors.js';

/** 16 readable bytes 0x11, 0x22, ... whose first `firstLen` sit before the wrap in 16 bytes of storage. */
function splitAt(firstLen: number): { rb: RingBuffer; bytes: Buffer } {
  const bytes = Buffer.from(Array.from({ length: 16 }, (_, i) => (0x11 * (i + 1)) & 255));
  const rb = new RingBuffer(16);
  const shift = 16 - firstLen;
  rb.write(new Uint8Array(shift));
  rb.write(bytes.subarray(0, firstLen));
  rb.retrieve(shift);
  rb.write(bytes.subarray(firstLen));
  assert.equal(rb.peekAll()[0].length, firstLen);
  assert.equal(rb.capacity, 16);
  return { rb, bytes };
}

test('every integer peek, in both byte orders and at every offset, reads across every wrap point', () => {
  let straddled = 0;
  for (let firstLen = 1; firstLen <= 16; firstLen++) {
    const { rb, bytes } = splitAt(firstLen);
    for (let offset = 0; offset <= 8; offset++) {
      const at = `offset ${offset}, wrap after ${firstLen}`;
      assert.equal(rb.peekUint8(offset), bytes.readUInt8(offset), at);
      assert.equal(rb.peekUint16(offset), bytes.readUInt16BE(offset), at);
      assert.equal(rb.peekUint16LE(offset), bytes.readUInt16LE(offset), at);
      assert.equal(rb.peekUint32(offset), bytes.readUInt32BE(offset), at);
      assert.equal(rb.peekUint32LE(offset), bytes.readUInt32LE(offset), at);
      assert.equal(rb.peekUint64(offset), bytes.readBigUInt64BE(offset), at);
      assert.equal(rb.peekUint64LE(offset), bytes.readBigUInt64LE(offset), at);
      if (offset < firstLen && offset + 8 > firstLen) straddled++;
    }
    assert.equal(rb.length, 16, 'peeks consume nothing');
  }
  assert.ok(straddled >= 40, `too few 8-byte peeks across the wrap: ${straddled}`);
});

test('the offset defaults to 0 and high bits come out unsigned', () => {
  const rb = RingBuffer.withData(Buffer.from('ffeeddccbbaa9988', 'hex'));
  assert.equal(rb.peekUint16LE(), 0xeeff);
  assert.equal(rb.peekUint32LE(), 0xccddeeff);
  assert.equal(rb.peekUint64LE(), 0x8899aabbccddeeffn);
  assert.equal(rb.peekUint32(), 0xffeeddcc);
  assert.equal(rb.peekUint64(), 0xffeeddccbbaa9988n);
});

test('a peek past the readable bytes returns 0, never the stale bytes behind them', () => {
  type Peek = [
    width: number,
    peek: (rb: RingBuffer, offset: number) => number | bigint,
    read: (b: Buffer, offset: number) => number | bigint,
  ];
  const peeks: Peek[] = [
    [1, (rb, o) => rb.peekUint8(o), (b, o) => b.readUInt8(o)],
    [2, (rb, o) => rb.peekUint16(o), (b, o) => b.readUInt16BE(o)],
    [2, (rb, o) => rb.peekUint16LE(o), (b, o) => b.readUInt16LE(o)],
    [4, (rb, o) => rb.peekUint32(o), (b, o) => b.readUInt32BE(o)],
    [4, (rb, o) => rb.peekUint32LE(o), (b, o) => b.readUInt32LE(o)],
    [8, (rb, o) => rb.peekUint64(o), (b, o) => b.readBigUInt64BE(o)],
    [8, (rb, o) => rb.peekUint64LE(o), (b, o) => b.readBigUInt64LE(o)],
  ];
  for (let len = 0; len <= 10; len++) {
    const content = Buffer.from(Array.from({ length: len }, (_, i) => i + 1));
    const rb = new RingBuffer();
    rb.write(new Uint8Array(32).fill(0x99));
    rb.retrieveAll();
    rb.write(content);
    for (const [width, peek, read] of peeks) {
      for (let offset = 0; offset <= 10; offset++) {
        const want = len >= offset + width ? read(content, offset) : width === 8 ? 0n : 0;
        assert.equal(peek(rb, offset), want, `width ${width} at offset ${offset} of ${len} bytes`);
      }
    }
  }
});

test('length tells a short buffer from a real 0', () => {
  const rb = new RingBuffer();
  rb.write(Uint8Array.of(0, 0, 0));
  assert.equal(rb.peekUint32(), 0);
  assert.ok(rb.length < 4, 'the documented check: length >= offset + 4 before trusting peekUint32(offset)');
  rb.writeByte(0);
  assert.ok(rb.length >= 4);
  assert.equal(rb.peekUint32(), 0, 'a real zero');
});

test('a length-prefixed frame decoder built on the documented length check', () => {
  const frames: string[] = [];
  const decode = (input: RingBuffer): void => {
    while (input.length >= 4 && input.length >= 4 + input.peekUint32LE()) {
      const body = new Uint8Array(input.peekUint32LE());
      input.retrieve(4);
      input.read(body);
      frames.push(Buffer.from(body).toString());
    }
  };
  const frame = (text: string): Buffer => {
    const out = Buffer.alloc(4 + text.length);
    out.writeUInt32LE(text.length, 0);
    out.write(text, 4, 'latin1');
    return out;
  };
  const stream = Buffer.concat([frame(''), frame('hello'), frame(''), frame('x'.repeat(20)), frame('end')]);
  const rb = new RingBuffer(16);
  for (let at = 0; at < stream.length; at += 3) {
    rb.write(stream.subarray(at, at + 3));
    decode(rb);
  }
  assert.deepEqual(frames, ['', 'hello', '', 'x'.repeat(20), 'end']);
  assert.equal(rb.length, 0);
});

test('an offset that is not a non-negative integer throws InvalidArgumentError naming the method', () => {
  const rb = RingBuffer.withData(new Uint8Array(16));
  const loose = rb as unknown as Record<string, (offset: unknown) => unknown>;
  const methods = [
    'peekUint8',
    'peekUint16',
    'peekUint16LE',
    'peekUint32',
    'peekUint32LE',
    'peekUint64',
    'peekUint64LE',
  ];
  for (const name of methods) {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null]) {
      assert.throws(
        () => loose[name]!.call(rb, bad),
        (err: unknown) =>
          err instanceof InvalidArgumentError &&
          err.code === 'ERR_GEVENT_INVALID_ARGUMENT' &&
          err.message.includes(`RingBuffer.${name}() offset must be a non-negative integer`),
        `${name}(${String(bad)})`,
      );
    }
  }
});
