/**
 * Shutdown, however it is asked for (tick, serving, data, an AbortSignal): every connection is
 * closed with `closed` fired for each, the listeners stop accepting, and serve() settles only after
 * all of that.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Action, serve, type Conn, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectOutcome,
  connectTo,
  openFdCount,
  readEnd,
  readExactly,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

function assertReadEnded(how: string): void {
  assert.ok(how === 'eof' || how === 'ECONNRESET', `client read ended with ${how}`);
}

for (const backend of await backendsUnderTest()) {
  describe(`shutdown (${backend})`, () => {
    test('tick returns Shutdown once 10 clients are open: each client read ends, closed fires 10 times first', async () => {
      const fds = openFdCount();
      const kClients = 10;
      let server!: Server;
      let opened = 0;
      let closed = 0;
      const closeErrs: (Error | null)[] = [];
      let closedAtResolve = -1;
      let onServing!: () => void;
      const serving = new Promise<void>((r) => (onServing = r));
      const done = serve(
        {
          serving(s) {
            server = s;
            onServing();
          },
          opened: () => void opened++,
          closed(_c, err) {
            closed++;
            closeErrs.push(err);
          },
          tick: () => ({ delay: 10, action: opened === kClients ? Action.Shutdown : Action.None }),
        },
        { backend },
        'tcp://127.0.0.1:0',
      ).then(() => void (closedAtResolve = closed));
      await serving;
      const clients = await Promise.all(Array.from({ length: kClients }, () => connectTo(server.addrs[0]!)));
      const ends = await Promise.all(clients.map((c) => readEnd(c)));
      for (const e of ends) {
        assertReadEnded(e.how);
        assert.equal(e.data.length, 0);
      }
      await done;
      assert.equal(opened, kClients);
      assert.equal(closed, kClients);
      assert.equal(closedAtResolve, kClients, 'serve() resolved only after every closed');
      assert.deepEqual(closeErrs, Array(kClients).fill(null), 'a shutdown is a clean close');
      assert.equal(await connectOutcome(server.addrs[0]!.port), 'ECONNREFUSED');
      for (const c of clients) c.destroy();
      await Promise.all(clients.map(socketClosed));
      assertNoFdLeak(fds);
    });

    test('serving returning Action.Shutdown stops at once: serve() resolves, no tick, the port refuses', async () => {
      const fds = openFdCount();
      let port = 0;
      let servingCalls = 0;
      let ticks = 0;
      await serve(
        {
          serving(s) {
            servingCalls++;
            port = s.addrs[0]!.port;
            return Action.Shutdown;
          },
          tick: () => void ticks++,
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      assert.equal(servingCalls, 1);
      assert.equal(ticks, 0);
      assert.ok(port > 0);
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('aborting the AbortSignal stops the server and closes its connections', async () => {
      const fds = openFdCount();
      const ac = new AbortController();
      let closed = 0;
      let opened = 0;
      const run = await startServer(
        { opened: () => void opened++, closed: () => void closed++ },
        { backend, signal: ac.signal },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      const client = await connectTo(run.server.addrs[0]!);
      await waitFor(() => opened === 1, 'opened');
      const end = readEnd(client);
      ac.abort();
      await run.done;
      assertReadEnded((await end).how);
      assert.equal(closed, 1);
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      client.destroy();
      await socketClosed(client);
      assertNoFdLeak(fds);
    });

    test('a signal aborted before serve() resolves it without leaving anything bound', async () => {
      const fds = openFdCount();
      let port = 0;
      await serve(
        { serving: (s) => void (port = s.addrs[0]!.port) },
        { backend, signal: AbortSignal.abort() },
        'tcp://127.0.0.1:0',
      );
      if (port !== 0) assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('Action.Shutdown from data stops the server; its reply is written and the other client is closed too', async () => {
      const fds = openFdCount();
      let closed = 0;
      let dataCalls = 0;
      const run = await startServer(
        {
          closed: () => void closed++,
          data(_c: Conn, input) {
            dataCalls++;
            const text = Buffer.from(input.bytes()).toString();
            input.retrieveAll();
            return text === 'quit' ? { out: 'bye', action: Action.Shutdown } : text;
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      const other = await connectTo(run.server.addrs[0]!);
      other.write('ping');
      assert.equal((await readExactly(other, 4)).toString(), 'ping');
      const otherEnd = readEnd(other);
      const quitter: Socket = await connectTo(run.server.addrs[0]!);
      const quitterEnd = readEnd(quitter);
      quitter.write('quit');
      await run.done;
      const q = await quitterEnd;
      assert.equal(q.data.toString(), 'bye');
      assertReadEnded(q.how);
      assertReadEnded((await otherEnd).how);
      assert.equal(dataCalls, 2);
      assert.equal(closed, 2);
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      for (const c of [other, quitter]) c.destroy();
      await Promise.all([other, quitter].map(socketClosed));
      assertNoFdLeak(fds);
    });

    test('Action.Shutdown from a UDP data call stops the server', async () => {
      const fds = openFdCount();
      let dataCalls = 0;
      const run = await startServer(
        {
          data(_c, input) {
            dataCalls++;
            return Buffer.from(input.bytes()).toString() === 'quit' ? Action.Shutdown : undefined;
          },
        },
        { backend },
        'udp://127.0.0.1:0',
      );
      const sock = createSocket('udp4');
      sock.send('hello', run.server.addrs[0]!.port, '127.0.0.1');
      await waitFor(() => dataCalls === 1, 'first datagram');
      sock.send('quit', run.server.addrs[0]!.port, '127.0.0.1');
      await run.done;
      assert.equal(dataCalls, 2);
      await new Promise<void>((r) => sock.close(() => r()));
      assertNoFdLeak(fds);
    });

    test('Shutdown from closed stops the server once the last client leaves', async () => {
      const fds = openFdCount();
      let closed = 0;
      const run = await startServer(
        { closed: () => (++closed === 3 ? Action.Shutdown : Action.None) },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const clients = await Promise.all([1, 2, 3].map(() => connectTo(run.server.addrs[0]!)));
      for (const c of clients) c.end();
      await run.done;
      assert.equal(closed, 3);
      await Promise.all(clients.map(socketClosed));
      assertNoFdLeak(fds);
    });
  });
}
