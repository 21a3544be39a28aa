/**
 * Connections accepted before `serving` has returned wait: `opened` and `data` fire only once the
 * loop starts, in order, with every byte that arrived meanwhile. Driven through the loop's backend
 * interface with a recording backend, so the order is exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Addr } from '../src/addr.js';
import type { Backend, BackendHandler } from '../src/backend/backend.js';
import { loopTuning } from '../src/engine/options.js';
import type { Conn } from '../src/index.js';
import type { StreamConn } from '../src/loop/conn.js';
import { Loop } from '../src/loop/loop.js';

/** The loop's id of a connection (internal). */
const idOf = (c: Conn): number => (c as StreamConn).id;

class RecordingBackend implements Backend {
  readonly name = 'portable' as const;
  readonly log: string[] = [];
  start(_h: BackendHandler): void {}
  dial(): Error {
    return Object.assign(new Error('not dialled in this test'), { code: 'ENOSYS' });
  }
  async listen(): Promise<Addr> {
    return new Addr('tcp', '127.0.0.1', 1);
  }
  write(id: number, data: Uint8Array): void {
    this.log.push(`write ${id} ${Buffer.from(data).toString()}`);
  }
  flush(): void {
    this.log.push('flush');
  }
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

test('a connection accepted before start gets opened, then its buffered data, when the loop starts', () => {
  const backend = new RecordingBackend();
  const seen: string[] = [];
  const loop = new Loop(
    backend,
    {
      opened: (c) => {
        seen.push(`opened ${idOf(c)}`);
        return 'hi ';
      },
      data: (c, input) => {
        const s = Buffer.from(input.bytes()).toString();
        input.retrieveAll();
        seen.push(`data ${idOf(c)} ${s}`);
        return s.toUpperCase();
      },
      closed: (c) => {
        seen.push(`closed ${idOf(c)}`);
      },
    },
    { ...loopTuning({}), onError: (e) => assert.fail(e), requestShutdown: () => assert.fail('no shutdown') },
  );
  loop.onOpen(1, 0, addrs);
  loop.onData(1, Buffer.from('ab'));
  loop.onData(1, Buffer.from('cd'));
  loop.onOpen(2, 0, addrs);
  loop.onClose(2, null);
  loop.onBatchEnd();
  assert.deepEqual(seen, [], 'nothing reaches the handlers before start');
  assert.deepEqual(backend.log, []);
  assert.equal(loop.connectionCount, 1, 'the connection that closed early is gone');
  loop.start();
  assert.deepEqual(seen, ['opened 1', 'data 1 abcd']);
  assert.deepEqual(backend.log, ['write 1 hi ', 'write 1 ABCD', 'flush']);
  loop.onData(1, Buffer.from('e'));
  loop.onBatchEnd();
  assert.deepEqual(seen.at(-1), 'data 1 e');
  loop.onClose(1, null);
  assert.deepEqual(seen.at(-1), 'closed 1');
});

test('a peer FIN before start closes the connection after its buffered data is handled', () => {
  const backend = new RecordingBackend();
  const seen: string[] = [];
  const loop = new Loop(
    backend,
    {
      opened: (c) => void seen.push(`opened ${idOf(c)}`),
      data: (c, input) => {
        seen.push(`data ${idOf(c)} ${Buffer.from(input.bytes()).toString()}`);
        input.retrieveAll();
      },
    },
    { ...loopTuning({}), onError: (e) => assert.fail(e), requestShutdown: () => assert.fail('no shutdown') },
  );
  loop.onOpen(7, 0, addrs);
  loop.onData(7, Buffer.from('last words'));
  loop.onEnd(7);
  loop.start();
  assert.deepEqual(seen, ['opened 7', 'data 7 last words']);
  assert.deepEqual(backend.log, ['close 7 true', 'flush']);
});

test('an end in the same batch as data whose handler paused is held until resume(), then delivered once', async () => {
  const backend = new RecordingBackend();
  const seen: string[] = [];
  let conn: { resume(): void } | null = null;
  const loop = new Loop(
    backend,
    {
      data: (c, input) => {
        seen.push(`data ${idOf(c)} ${Buffer.from(input.bytes()).toString()}`);
        input.retrieveAll();
        c.pause();
        conn = c;
      },
      end: (c) => void seen.push(`end ${idOf(c)}`),
    },
    {
      ...loopTuning({}),
      allowHalfOpen: true,
      onError: (e) => assert.fail(e),
      requestShutdown: () => assert.fail('no shutdown'),
    },
  );
  loop.start();
  loop.onOpen(3, 0, addrs);
  loop.onData(3, Buffer.from('abc'));
  loop.onEnd(3);
  loop.onBatchEnd();
  assert.deepEqual(seen, ['data 3 abc'], 'no end while paused');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['data 3 abc'], 'still held');
  conn!.resume();
  assert.deepEqual(seen, ['data 3 abc'], 'delivered after the call that resumed has returned');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['data 3 abc', 'end 3']);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['data 3 abc', 'end 3'], 'once');
});
