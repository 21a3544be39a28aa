import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingBuffer, ringBufferPool } from '../src/ringbuffer.js';
import { BufferEmptyError, InvalidArgumentError } from '../src/errors.js';

function isInvalidArgument(fragment: string): (err: unknown) => boolean {
  return (err) =>
    err instanceof InvalidArgumentError &&
    err.code === 'ERR_GEVENT_INVALID_ARGUMENT' &&
    err.message.startsWith('gevent: ') &&
    err.message.includes(fragment);
}

test('a new buffer holds no storage until the first write', () => {
  const rb = new RingBuffer();
  assert.equal(rb.capacity, 0);
  assert.equal(rb.length, 0);
  assert.ok(rb.isEmpty());
  assert.ok(rb.isFull());
  const [first, end] = rb.peekAll();
  assert.equal(first.length + end.length, 0);
  assert.equal(rb.peekUint64(), 0n);
  rb.writeByte(0x41);
  assert.equal(rb.capacity, 64);
  assert.equal(rb.readByte(), 0x41);
});

test('growth picks the next power of two of twice the capacity or the need', () => {
  const rb = new RingBuffer(10);
  rb.write(new Uint8Array(10));
  assert.equal(rb.capacity, 10);
  rb.writeByte(1);
  assert.equal(rb.capacity, 64);
  rb.write(new Uint8Array(53));
  assert.equal(rb.capacity, 64);
  rb.writeByte(2);
  assert.equal(rb.capacity, 128);
  rb.write(new Uint8Array(1000));
  assert.equal(rb.capacity, 2048);
  assert.equal(rb.length, 1065);
});

test('withData copies its input and starts full', () => {
  const data = Uint8Array.of(1, 2, 3);
  const rb = RingBuffer.withData(data);
  data[0] = 9;
  assert.equal(rb.length, 3);
  assert.equal(rb.capacity, 3);
  assert.ok(rb.isFull());
  assert.deepEqual(Array.from(rb.bytes()), [1, 2, 3]);
  const fromBuffer = RingBuffer.withData(Buffer.from([4, 5]));
  assert.deepEqual(Array.from(fromBuffer.bytes()), [4, 5]);
});

test('writeString encodes UTF-8, including characters outside the BMP', () => {
  const rb = new RingBuffer(4);
  rb.writeByte(0);
  rb.retrieve(1);
  rb.writeByte(0);
  rb.writeByte(0);
  rb.retrieve(2);
  assert.equal(rb.writeString('h€😀'), 8);
  assert.equal(new TextDecoder().decode(rb.bytes()), 'h€😀');
  assert.equal(rb.writeString(''), 0);
  assert.equal(rb.writeString('\ud800'), 3);
  assert.deepEqual(Array.from(rb.peekAll()[0].subarray(-3)), [0xef, 0xbf, 0xbd]);
});

test('readByte on an empty buffer throws BufferEmptyError', () => {
  const rb = new RingBuffer(8);
  assert.throws(
    () => rb.readByte(),
    (err: unknown) => err instanceof BufferEmptyError && err.code === 'ERR_GEVENT_BUFFER_EMPTY',
  );
  rb.writeByte(7);
  rb.readByte();
  assert.throws(() => rb.readByte(), BufferEmptyError);
});

test('read into an empty target or from an empty buffer returns 0', () => {
  const rb = new RingBuffer();
  assert.equal(rb.read(new Uint8Array(4)), 0);
  rb.write(Uint8Array.of(1, 2));
  assert.equal(rb.read(new Uint8Array(0)), 0);
  assert.equal(rb.length, 2);
});

test('peek returns views into storage, not copies', () => {
  const rb = new RingBuffer(16);
  rb.write(Uint8Array.of(1, 2, 3));
  const [first] = rb.peek(2);
  assert.equal(first.length, 2);
  first[0] = 42;
  assert.equal(rb.readByte(), 42);
  assert.equal(rb.length, 2);
});

test('peekUint returns 0 when too few bytes are readable', () => {
  const rb = new RingBuffer();
  rb.write(Uint8Array.of(0xff, 0xfe, 0xfd));
  assert.equal(rb.peekUint8(), 0xff);
  assert.equal(rb.peekUint16(), 0xfffe);
  assert.equal(rb.peekUint32(), 0);
  assert.equal(rb.peekUint64(), 0n);
  rb.writeByte(0xfc);
  assert.equal(rb.peekUint32(), 0xfffefdfc);
  rb.write(Uint8Array.of(0xfb, 0xfa, 0xf9, 0xf8));
  assert.equal(rb.peekUint64(), 0xfffefdfcfbfaf9f8n);
  assert.equal(rb.length, 8);
});

test('virtual reads commit with virtualFlush and roll back with virtualRevert', () => {
  const rb = new RingBuffer();
  rb.write(Uint8Array.of(1, 2, 3, 4, 5));
  const two = new Uint8Array(2);
  rb.virtualRead(two);
  assert.equal(rb.virtualLength(), 3);
  rb.write(Uint8Array.of(6));
  assert.equal(rb.virtualLength(), 4, 'writes do not move the virtual position');
  rb.virtualRevert();
  assert.equal(rb.virtualLength(), 6);
  rb.virtualRead(two);
  rb.virtualRead(two);
  assert.deepEqual(Array.from(two), [3, 4]);
  rb.virtualFlush();
  assert.equal(rb.length, 2);
  assert.equal(rb.readByte(), 5);
  rb.virtualRead(new Uint8Array(1));
  assert.equal(rb.virtualLength(), 0);
  rb.retrieve(0);
  assert.equal(rb.virtualLength(), 1, 'retrieve(0) still moves the virtual position back');
});

test('every consuming operation moves the virtual position back to the read position', () => {
  const ops: Array<[string, (rb: RingBuffer) => void]> = [
    ['read', (rb) => rb.read(new Uint8Array(1))],
    ['readByte', (rb) => rb.readByte()],
    ['retrieve', (rb) => rb.retrieve(1)],
  ];
  for (const [name, op] of ops) {
    const rb = new RingBuffer();
    rb.write(Uint8Array.of(1, 2, 3, 4));
    rb.virtualRead(new Uint8Array(3));
    op(rb);
    assert.equal(rb.virtualLength(), 3, name);
  }
  const rb = new RingBuffer();
  rb.write(Uint8Array.of(1, 2, 3, 4));
  rb.virtualRead(new Uint8Array(3));
  rb.reset();
  assert.equal(rb.virtualLength(), 0);
  assert.equal(rb.capacity, 64, 'reset keeps the storage');
});

test('arguments of the wrong type or range throw InvalidArgumentError naming the value', () => {
  const rb = new RingBuffer();
  const loose = rb as unknown as Record<string, (arg: unknown) => unknown>;
  assert.throws(
    () => loose['write']!('abc'),
    isInvalidArgument('RingBuffer.write() data must be a Uint8Array, got "abc"'),
  );
  assert.throws(() => loose['read']!(null), isInvalidArgument('got null'));
  assert.throws(() => loose['virtualRead']!([1]), isInvalidArgument('got an array'));
  assert.throws(() => loose['writeString']!(5), isInvalidArgument('got number 5'));
  assert.throws(() => loose['writeByte']!(1.5), isInvalidArgument('got number 1.5'));
  assert.throws(
    () => rb.peek(-1),
    isInvalidArgument('RingBuffer.peek() count must be a non-negative integer, got number -1'),
  );
  assert.throws(() => rb.peek(Number.NaN), isInvalidArgument('got number NaN'));
  assert.throws(() => rb.retrieve(-3), isInvalidArgument('got number -3'));
  assert.throws(() => rb.retrieve(Number.NaN), isInvalidArgument('NaN'));
  assert.throws(() => new RingBuffer(-1), isInvalidArgument('RingBuffer size'));
  assert.throws(() => RingBuffer.withData('x' as unknown as Uint8Array), isInvalidArgument('"x"'));
  assert.deepEqual(
    rb.peek(Number.POSITIVE_INFINITY).map((v) => v.length),
    [0, 0],
  );
});

test('borrow exposes the view without copying and never writes into it', () => {
  const backing = Uint8Array.of(0, 1, 2, 3, 4, 5, 0);
  const view = backing.subarray(1, 6);
  const rb = new RingBuffer();
  rb.borrow(view);
  assert.equal(rb.length, 5);
  assert.equal(rb.capacity, 5);
  const [first, end] = rb.peekAll();
  assert.equal(first.buffer, backing.buffer);
  assert.equal(first.byteOffset, 1);
  assert.equal(end.length, 0);
  rb.retrieve(2);
  rb.write(Uint8Array.of(9, 9));
  assert.deepEqual(Array.from(backing), [0, 1, 2, 3, 4, 5, 0], 'borrowed memory untouched');
  assert.equal(rb.capacity, 64);
  assert.deepEqual(Array.from(rb.bytes()), [3, 4, 5, 9, 9]);
  rb.release();
  assert.equal(rb.capacity, 64, 'release after the copy is a no-op');
});

test('release copies leftover bytes into owned storage', () => {
  const view = Uint8Array.of(1, 2, 3, 4);
  const rb = new RingBuffer();
  rb.borrow(view);
  rb.readByte();
  rb.release();
  view.fill(0);
  assert.equal(rb.capacity, 64);
  assert.deepEqual(Array.from(rb.bytes()), [2, 3, 4]);
});

test('release with nothing left drops the borrowed memory', () => {
  const view = new Uint8Array(100);
  const rb = new RingBuffer(32);
  rb.borrow(view);
  assert.equal(rb.capacity, 100);
  rb.retrieveAll();
  assert.equal(rb.capacity, 100);
  rb.release();
  assert.equal(rb.capacity, 0);
  assert.ok(rb.isEmpty());
});

test('borrow on a non-empty buffer throws and leaves it unchanged', () => {
  const rb = new RingBuffer();
  rb.writeByte(1);
  assert.throws(() => rb.borrow(new Uint8Array(4)), isInvalidArgument('got number 1'));
  assert.deepEqual(Array.from(rb.bytes()), [1]);
  rb.release();
  assert.equal(rb.capacity, 64, 'release on an owned buffer does nothing');
});

test('pool hands out empty buffers, keeps them once, and resets on put', () => {
  const a = ringBufferPool.get();
  a.write(new Uint8Array(100));
  a.virtualRead(new Uint8Array(5));
  ringBufferPool.put(a);
  assert.equal(a.length, 0);
  assert.equal(a.virtualLength(), 0);
  ringBufferPool.put(a);
  const b = ringBufferPool.get();
  const c = ringBufferPool.get();
  assert.equal(b, a);
  assert.notEqual(c, a, 'a buffer put twice is handed out once');
  assert.equal(b.capacity, 128, 'a pooled buffer keeps its storage');

  const view = Uint8Array.of(1, 2, 3);
  b.borrow(view);
  ringBufferPool.put(b);
  assert.equal(b.capacity, 0, 'put ends a borrow');
  assert.throws(() => ringBufferPool.put({} as RingBuffer), isInvalidArgument('ringBufferPool.put() buffer'));
});

test('pool keeps at most 1024 idle buffers', () => {
  const made = Array.from({ length: 1100 }, () => new RingBuffer());
  for (const rb of made) ringBufferPool.put(rb);
  const taken = new Set<RingBuffer>();
  for (let i = 0; i < 1100; i++) taken.add(ringBufferPool.get());
  const reused = made.filter((rb) => taken.has(rb)).length;
  assert.ok(reused <= 1024, `pool returned ${reused} pooled buffers`);
  assert.ok(reused >= 1000);
});
