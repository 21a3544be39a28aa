/**
 * A connection's addresses read only after it closed, on every backend: the native backend keeps an
 * accepted connection's peer by the core's slot instead of in the Conn, and the slot of a closed
 * connection goes to the next one, so a Conn kept past `closed` must still report its own peer and
 * local address, not those of a connection that reused its slot.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Conn, ServeOptions } from '../src/index.js';
import { assertNoFdLeak, backendsUnderTest, closed, connectTo, openFdCount, startServer, waitFor } from './helpers.js';

for (const backend of await backendsUnderTest()) {
  test(`addresses first read after close are the connection's own, after its slot was reused (${backend})`, async () => {
    const fds = openFdCount();
    const conns: Conn[] = [];
    let closedCount = 0;
    const run = await startServer(
      {
        opened(c) {
          conns.push(c);
        },
        closed() {
          closedCount++;
        },
      },
      { backend: backend as ServeOptions['backend'] },
      'tcp://127.0.0.1:0',
    );
    const port = run.server.addrs[0]!.port;
    const clientPorts: number[] = [];
    try {
      // One at a time: each opens after the one before has closed, so the core reuses its slot.
      for (let i = 0; i < 6; i++) {
        const s = await connectTo(run.server.addrs[0]!);
        clientPorts.push(s.localPort!);
        await waitFor(() => conns.length === i + 1, `connection ${i} to open`);
        s.destroy();
        await closed(s);
        await waitFor(() => closedCount === i + 1, `connection ${i} to close`);
      }
      const held = await connectTo(run.server.addrs[0]!);
      await waitFor(() => conns.length === 7, 'the last connection to open');
      assert.deepEqual(
        conns.slice(0, 6).map((c) => [c.remoteAddr.host, c.remoteAddr.port, c.localAddr.port]),
        clientPorts.map((p) => ['127.0.0.1', p, port]),
        'each closed connection reports its own peer and local port',
      );
      assert.equal(conns[6]!.remoteAddr.port, held.localPort, 'the open one reports its own peer');
      held.destroy();
      await closed(held);
    } finally {
      await run.stop();
    }
    assertNoFdLeak(fds);
  });
}
