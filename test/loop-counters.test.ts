/**
 * The loop's counters and a connection's byte counts, driven through the backend interface with a
 * recording backend so that every queue report is exact:
 * - BytesWritten follows flushes and queue reports, and a flushed close that succeeds counts the
 *   rest of its queue as written (the native core closes a drained queue without reporting it);
 * - output dropped by destroy(), or by a close with an error, is never counted;
 * - Accepted, Closed, Dropped, Connections, BytesRead and AcceptErrors count what they name, into
 *   the array given as LoopOptions.counters; loopIndex comes from LoopOptions.loopIndex;
 * - Dialed counts dials that opened (not Accepted), maxConnections does not count them, a dial
 *   whose connect failed or was cancelled by stop() rejects and opens nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Addr } from '../src/addr.js';
import { kOriginDial, type Backend, type BackendHandler, type DialSpec } from '../src/backend/backend.js';
import { ConnectionError, DialError, type Conn } from '../src/index.js';
import { loopTuning } from '../src/engine/options.js';
import type { StreamConn } from '../src/loop/conn.js';
import { Counter, newCounters } from '../src/loop/counters.js';
import { Loop } from '../src/loop/loop.js';

/** The loop's id of a connection (internal). */
const idOf = (c: Conn): number => (c as StreamConn).id;

class RecordingBackend implements Backend {
  readonly name = 'portable' as const;
  readonly log: string[] = [];
  nextDialId = 1000;
  start(_h: BackendHandler): void {}
  dial(spec: DialSpec): number {
    this.log.push(`dial ${spec.host}:${spec.port}`);
    return this.nextDialId++;
  }
  async listen(): Promise<Addr> {
    return new Addr('tcp', '127.0.0.1', 1);
  }
  write(id: number, data: Uint8Array): void {
    this.log.push(`write ${id} ${data.length}`);
  }
  flush(): void {}
  close(id: number, flush: boolean): void {
    this.log.push(`close ${id} ${flush}`);
  }
  end(): void {}
  setKeepAlive(): void {}
  watchQueue(): void {}
  pauseReading(): void {}
  async closeListeners(): Promise<void> {}
  sendTo(): void {}
  async stop(): Promise<void> {}
}

const addrs = { local: new Addr('tcp', '127.0.0.1', 1), remote: new Addr('tcp', '127.0.0.1', 2) };

function setup(maxConnections = Infinity): {
  loop: Loop;
  counters: Float64Array;
  conns: Map<number, Conn>;
  backend: RecordingBackend;
  errors: Error[];
} {
  const backend = new RecordingBackend();
  const counters = newCounters(false);
  const conns = new Map<number, Conn>();
  const errors: Error[] = [];
  const loop = new Loop(
    backend,
    {
      opened: (c) => void conns.set(idOf(c), c),
      data: (_c, input) => void input.retrieveAll(),
    },
    {
      ...loopTuning({ maxConnections }),
      loopIndex: 3,
      counters,
      onError: (e) => errors.push(e),
      requestShutdown: () => assert.fail('no shutdown'),
    },
  );
  loop.start();
  return { loop, counters, conns, backend, errors };
}

test('BytesWritten follows flushes and queue reports; a flushed close that succeeds counts its queue as written', () => {
  const { loop, counters, conns } = setup();
  loop.onOpen(1, 0, addrs);
  loop.onBatchEnd();
  const c = conns.get(1)!;
  assert.equal(c.loopIndex, 3);
  assert.equal(loop.counters, counters);
  c.send(new Uint8Array(100));
  assert.equal(c.bytesWritten, 0, 'nothing is written before the flush');
  loop.onBatchEnd();
  assert.equal(counters[Counter.BytesWritten], 100);
  loop.onQueued(1, 60);
  assert.equal(c.bytesWritten, 40);
  assert.equal(counters[Counter.BytesWritten], 40);
  loop.onQueued(1, 0);
  assert.equal(c.bytesWritten, 100);
  c.send(new Uint8Array(50));
  loop.onBatchEnd();
  loop.onQueued(1, 30);
  assert.equal(counters[Counter.BytesWritten], 120);
  loop.onData(1, new Uint8Array(7));
  loop.onEnd(1);
  loop.onBatchEnd();
  loop.onClose(1, null);
  assert.equal(c.bytesWritten, 150, 'the queue a successful flushed close drained counts');
  assert.equal(counters[Counter.BytesWritten], 150);
  assert.equal(c.bytesRead, 7);
  assert.equal(counters[Counter.BytesRead], 7);
});

test('output dropped by destroy() or by a close with an error is not counted; the loop total stays the sum', () => {
  const { loop, counters, conns } = setup();
  loop.onOpen(1, 0, addrs);
  loop.onOpen(2, 0, addrs);
  loop.onBatchEnd();
  const [a, b] = [conns.get(1)!, conns.get(2)!];
  a.send(new Uint8Array(1000));
  b.send(new Uint8Array(1000));
  loop.onBatchEnd();
  loop.onQueued(1, 400);
  loop.onQueued(2, 300);
  a.send(new Uint8Array(10));
  a.destroy();
  loop.onBatchEnd();
  loop.onClose(1, null);
  loop.onClose(2, new ConnectionError('ECONNRESET'));
  assert.equal(a.bytesWritten, 600, 'destroy(): the queued 400 and the unflushed 10 were dropped');
  assert.equal(b.bytesWritten, 700);
  assert.equal(counters[Counter.BytesWritten], 1300);
});

test('Accepted, Closed, Dropped, Connections and AcceptErrors count what they name', () => {
  const { loop, counters, errors } = setup(1);
  loop.onOpen(1, 0, addrs);
  loop.onOpen(2, 0, addrs);
  loop.onBatchEnd();
  assert.equal(counters[Counter.Accepted], 2);
  assert.equal(counters[Counter.Dropped], 1);
  assert.equal(counters[Counter.Connections], 2, 'the dropped connection is open until its fd closes');
  loop.onClose(2, null);
  assert.equal(counters[Counter.Connections], 1);
  assert.equal(counters[Counter.Closed], 1);
  loop.onAcceptError(0, 'EMFILE');
  loop.onAcceptError(0, 'EMFILE');
  assert.equal(counters[Counter.AcceptErrors], 2);
  loop.onClose(1, null);
  assert.equal(counters[Counter.Connections], 0);
  assert.equal(counters[Counter.Closed], 2);
  void loop.stop();
  assert.equal(
    errors.length,
    1,
    'the first accept error is reported at once, the second held back and dropped at stop',
  );
});

test('dials: Dialed counts opened ones only, maxConnections ignores them, a failed or cancelled one opens nothing', async () => {
  const { loop, counters, conns, backend } = setup(1);
  const refused = loop.dial('tcp://127.0.0.1:7');
  const ok = loop.dial('tcp://127.0.0.1:8', { context: 'ctx' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    backend.log.filter((l) => l.startsWith('dial')),
    ['dial 127.0.0.1:7', 'dial 127.0.0.1:8'],
  );
  loop.onClose(1000, Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
  await assert.rejects(refused, (e: unknown) => e instanceof DialError && e.errno === 'ECONNREFUSED');
  loop.onOpen(1001, kOriginDial, addrs);
  loop.onBatchEnd();
  const c = await ok;
  assert.equal(c, conns.get(1001));
  assert.equal(c.context, 'ctx');
  assert.equal(c.outbound, true);
  assert.equal(c.addrIndex, -1);
  assert.equal(c.loop, loop.handle);
  assert.equal(counters[Counter.Dialed], 1);
  assert.equal(counters[Counter.Accepted], 0);
  loop.onOpen(1, 0, addrs);
  loop.onBatchEnd();
  assert.equal(counters[Counter.Dropped], 0, 'the dialled connection does not count against maxConnections 1');
  loop.onOpen(2, 0, addrs);
  loop.onBatchEnd();
  assert.equal(counters[Counter.Dropped], 1);
  // A connect that completes after its dial was cancelled (here: never pending) is closed at once.
  loop.onOpen(5000, kOriginDial, addrs);
  assert.ok(backend.log.includes('close 5000 false'));
  assert.equal(conns.has(5000), false);
  const pending = loop.dial('tcp://127.0.0.1:9');
  await new Promise((r) => setImmediate(r));
  await loop.stop();
  await assert.rejects(pending, (e: unknown) => e instanceof DialError && e.errno === 'ECANCELED');
  assert.ok(backend.log.includes('close 1002 false'), 'stop cancels the pending connect');
});
