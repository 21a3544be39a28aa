/**
 * maxConnections: with a cap of 200 and 1,000 clients connecting while the first 200 stay open,
 * the server never has more than 200 connections live (opened minus closed), every connection past
 * the cap is closed at once, before `opened`, with exactly one `dropped` event, and its client sees
 * EOF or a reset right away instead of hanging. Once the 200 leave, new clients are served again.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import {
  backendsUnderTest,
  needFds,
  closed as socketClosed,
  connectMany,
  openFdCount,
  readEnd,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kCap = 200;
const kClients = 1000;
const kGreeting = 'hi\n';

for (const backend of await backendsUnderTest()) {
  describe(`connection cap (${backend})`, { skip: needFds(2 * kClients + 100) }, () => {
    test(`maxConnections ${kCap} with ${kClients} clients: at most ${kCap} live, the other ${kClients - kCap} dropped at once with one dropped event each`, async () => {
      const fds = openFdCount();
      let live = 0;
      let maxLive = 0;
      let opened = 0;
      let closedCount = 0;
      const dropped: string[] = [];
      const run = await startServer(
        {
          opened() {
            opened++;
            maxLive = Math.max(maxLive, ++live);
            return kGreeting;
          },
          closed() {
            closedCount++;
            live--;
          },
          dropped(info) {
            dropped.push(String(info.remoteAddr));
          },
        },
        { backend, maxConnections: kCap },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      /** 'served' once the greeting arrives; 'eof' or an error code when the server drops the client. */
      const outcome = new Map<Socket, string>();
      const clients: Socket[] = [];
      /** Each client's own port, read once connected (a dropped client's port may be reused by a later one). */
      const clientPort = new Map<Socket, number>();
      try {
        await connectMany(port, kClients, 100, (s) => {
          clients.push(s);
          clientPort.set(s, s.localPort ?? 0);
          s.on('error', () => undefined);
          s.once('data', (d: Buffer) => {
            if (d.toString() === kGreeting) outcome.set(s, 'served');
          });
          void readEnd(s).then((r) => {
            if (!outcome.has(s)) outcome.set(s, r.how);
          });
        });
        await within(
          waitFor(() => outcome.size === kClients, 'every client to be served or dropped', 10_000),
          10_000,
          'every outcome',
        );
        assert.equal(live, kCap);
        for (const s of clients) if (outcome.get(s) === 'served') s.end();
        await within(
          waitFor(() => live === 0, 'the served clients to leave'),
          5000,
          'the served clients to leave',
        );
        const again = await connectMany(port, 1, 1, (s) => clients.push(s));
        const greeting = await within(
          new Promise<string>((r) => again[0]!.once('data', (d: Buffer) => r(d.toString()))),
          5000,
          'a greeting after the others left',
        );
        assert.equal(greeting, kGreeting, 'a client arriving after the others left is served');
      } finally {
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await within(run.stop(), 5000, 'serve() to settle');
      }
      const counts = new Map<string, number>();
      for (const how of outcome.values()) counts.set(how, (counts.get(how) ?? 0) + 1);
      assert.equal(counts.get('served'), kCap, `outcomes: ${JSON.stringify(Object.fromEntries(counts))}`);
      for (const how of counts.keys())
        assert.ok(['served', 'eof', 'ECONNRESET'].includes(how), `a dropped client saw ${how}`);
      assert.ok(maxLive <= kCap, `${maxLive} connections were live at once`);
      assert.equal(opened, kCap + 1);
      assert.equal(closedCount, kCap + 1);
      assert.equal(dropped.length, kClients - kCap, 'one dropped event per connection past the cap');
      // Each dropped event names the client it refused: the ports `dropped` reported are the ports of
      // the clients that saw EOF or a reset, one for one (compared as sorted lists, since a port
      // freed by a dropped client may be taken again by a later one).
      const refusedPorts = clients
        .filter((s) => outcome.has(s) && outcome.get(s) !== 'served')
        .map((s) => `tcp://127.0.0.1:${clientPort.get(s)}`)
        .sort();
      assert.deepEqual([...dropped].sort(), refusedPorts, 'dropped names each refused client by its address');
      assertNoFdLeak(fds);
    });
  });
}
