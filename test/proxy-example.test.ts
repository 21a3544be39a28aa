/**
 * The proxy example (examples/proxy/events.ts), on every backend and both relays (Conn.pipe and a
 * `data` handler): 4 MiB go through it to a node:net echo upstream and come back byte-exact, with
 * backpressure on both sides; when the client ends, both sides close; an upstream that refuses
 * closes the client's connection.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { listen } from '../src/index.js';
import { backendsUnderTest, connectTo, freePort, readEnd, readExactly, waitFor, within } from './helpers.js';

const module = new URL('../examples/proxy/events.js', import.meta.url);
let runs = 0;

function proxyEvents(upstream: string, relay: string): URL {
  const url = new URL(module);
  url.searchParams.set('upstream', upstream);
  url.searchParams.set('relay', relay);
  url.searchParams.set('run', String(runs++));
  return url;
}

const backends = await backendsUnderTest();
for (const [backend, relay] of backends.flatMap((b) => [[b, 'pipe'] as const, [b, 'js'] as const])) {
  describe(`the proxy example (${backend}, relay=${relay})`, () => {
    test('4 MiB through the proxy to an echo upstream come back byte-exact; the client ending closes both sides', async () => {
      const socks: Socket[] = [];
      const echo = createServer((s) => void socks.push(s.pipe(s)));
      await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
      const up = `tcp://127.0.0.1:${(echo.address() as { port: number }).port}`;
      const server = await listen(proxyEvents(up, relay), { backend, highWaterMark: 64 * 1024 }, 'tcp://127.0.0.1:0');
      try {
        const client = await connectTo(server.addrs[0]!);
        const payload = randomBytes(4 << 20);
        client.write(payload);
        const back = await within(readExactly(client, payload.length), 30_000, '4 MiB back');
        assert.ok(back.equals(payload));
        assert.equal(server.stats().dialed, 1);
        client.end();
        await waitFor(() => server.connections === 0, 'both sides to close', 10_000);
        client.destroy();
      } finally {
        await within(server.shutdown(), 10_000, 'shutdown');
        for (const s of socks) s.destroy();
        await new Promise<void>((resolve) => echo.close(() => resolve()));
      }
    });

    test('an upstream that refuses: the client connection is closed', async () => {
      const server = await listen(
        proxyEvents(`tcp://127.0.0.1:${await freePort()}`, relay),
        { backend },
        'tcp://127.0.0.1:0',
      );
      try {
        const client = await connectTo(server.addrs[0]!);
        const end = await within(readEnd(client), 10_000, 'the client to be closed');
        assert.ok(['eof', 'ECONNRESET'].includes(end.how), end.how);
        client.destroy();
        assert.equal(server.stats().dialed, 0);
      } finally {
        await within(server.shutdown(), 10_000, 'shutdown');
      }
    });
  });
}
