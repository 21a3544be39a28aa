/**
 * A buffer back in the pool keeps no grown storage: a connection that held a large partial message
 * must not keep that memory after it closed (the pool holds up to 1024 buffers per thread).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ringBufferPool, type RingBuffer } from '../src/index.js';
import { backendsUnderTest, closed as socketClosed, connectTo, startServer, waitFor } from './helpers.js';

describe('ringBufferPool', () => {
  test('a buffer that grew comes back from the pool with no storage', () => {
    const rb = ringBufferPool.get();
    rb.write(new Uint8Array(8 * 1024 * 1024));
    assert.ok(rb.capacity >= 8 * 1024 * 1024);
    ringBufferPool.put(rb);
    const again = ringBufferPool.get();
    assert.equal(again, rb, 'the pool hands back the buffer it was given');
    assert.equal(again.length, 0);
    assert.equal(again.capacity, 0);
    ringBufferPool.put(again);
  });

  test('a small buffer keeps its storage for reuse', () => {
    const rb = ringBufferPool.get();
    rb.write(new Uint8Array(100));
    const cap = rb.capacity;
    ringBufferPool.put(rb);
    const again = ringBufferPool.get();
    assert.equal(again, rb);
    assert.equal(again.capacity, cap);
    ringBufferPool.put(again);
  });
});

for (const backend of await backendsUnderTest()) {
  test(`a closed connection's input buffer goes back to the pool without its grown storage (${backend})`, async () => {
    let input: RingBuffer | null = null;
    let closes = 0;
    const run = await startServer(
      {
        data(_c, inp) {
          input = inp; // keeps every byte: waits for a frame that never completes
        },
        closed() {
          closes++;
        },
      },
      { backend },
      'tcp://127.0.0.1:0',
    );
    const s = await connectTo(run.server.addrs[0]!);
    const size = 4 * 1024 * 1024;
    s.write(Buffer.alloc(size, 7));
    await waitFor(() => input !== null && input.length === size, 'the server to hold 4 MiB of input', 10_000);
    assert.ok(input!.capacity >= size);
    s.end();
    await socketClosed(s);
    await waitFor(() => closes === 1, 'closed');
    assert.equal(input!.length, 0);
    assert.ok(input!.capacity <= 4096, `the pooled buffer kept ${input!.capacity} bytes of storage`);
    await run.stop();
  });
}
