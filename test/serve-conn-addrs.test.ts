/**
 * The addresses a connection and a server report: c.localAddr is the listener's, c.remoteAddr the
 * client's (still readable in `closed`); unix connections report their path; server.addrs keeps
 * the order given, with port 0 replaced by the bound port.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Addr, Conn, Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readExactly,
  socketDir,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

/** Socket directories made by this file; removed after its tests, even when one fails. */
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(tag: string): string {
  const d = socketDir(tag);
  dirs.push(d);
  return d;
}

interface Snapshot {
  local: Addr;
  remote: Addr;
  addrIndex: number;
}

/** Records the addresses each connection reports in opened and again in closed. */
function recorder() {
  const opened: Snapshot[] = [];
  const closed: Snapshot[] = [];
  const snap = (c: Conn): Snapshot => ({ local: c.localAddr, remote: c.remoteAddr, addrIndex: c.addrIndex });
  const events: Events = {
    opened(c) {
      opened.push(snap(c));
      return 'ok';
    },
    closed: (c) => void closed.push(snap(c)),
  };
  return { events, opened, closed };
}

function connect6(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '::1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Whether this machine can listen on ::1 (IPv6 loopback may be disabled). */
const hasIPv6Loopback = await new Promise<boolean>((resolve) => {
  const srv = createServer();
  srv.once('error', () => resolve(false));
  srv.listen(0, '::1', () => srv.close(() => resolve(true)));
});

for (const backend of await backendsUnderTest()) {
  describe(`connection addresses (${backend})`, () => {
    test('tcp: localAddr is the server port, remoteAddr the client port, family IPv4; both still there in closed', async () => {
      const fds = openFdCount();
      const r = recorder();
      const run = await startServer(r.events, { backend }, 'tcp://127.0.0.1:0');
      const port = run.server.addrs[0]!.port;
      const clients = await Promise.all([1, 2, 3].map(() => connectTo(run.server.addrs[0]!)));
      for (const s of clients) assert.equal((await readExactly(s, 2)).toString(), 'ok');
      const clientPorts = clients.map((s) => s.localPort!).sort();
      assert.deepEqual(r.opened.map((x) => x.remote.port).sort(), clientPorts);
      for (const x of r.opened) {
        assert.equal(x.local.network, 'tcp');
        assert.equal(x.local.host, '127.0.0.1');
        assert.equal(x.local.port, port);
        assert.equal(x.local.family, 'IPv4');
        assert.equal(x.remote.network, 'tcp');
        assert.equal(x.remote.host, '127.0.0.1');
        assert.equal(x.remote.family, 'IPv4');
        assert.equal(x.remote.toString(), `tcp://127.0.0.1:${x.remote.port}`);
        assert.equal(x.addrIndex, 0);
      }
      for (const s of clients) s.end();
      await Promise.all(clients.map(socketClosed));
      await waitFor(() => r.closed.length === 3, 'closed');
      assert.deepEqual(r.closed.map((x) => x.remote.port).sort(), clientPorts);
      assert.ok(r.closed.every((x) => x.local.port === port));
      await run.stop();
      assertNoFdLeak(fds);
    });

    test(
      'tcp6 on [::1]: both addresses are IPv6 and print in brackets',
      { skip: !hasIPv6Loopback && 'no IPv6 loopback here' },
      async () => {
        const fds = openFdCount();
        const r = recorder();
        const run = await startServer(r.events, { backend }, 'tcp6://[::1]:0');
        const a = run.server.addrs[0]!;
        assert.equal(a.host, '::1');
        assert.equal(a.family, 'IPv6');
        assert.equal(a.toString(), `tcp://[::1]:${a.port}`);
        const s = await connect6(a.port);
        assert.equal((await readExactly(s, 2)).toString(), 'ok');
        const x = r.opened[0]!;
        assert.equal(x.local.host, '::1');
        assert.equal(x.local.port, a.port);
        assert.equal(x.remote.host, '::1');
        assert.equal(x.remote.port, s.localPort);
        assert.equal(x.remote.family, 'IPv6');
        s.end();
        await socketClosed(s);
        await waitFor(() => r.closed.length === 1, 'closed');
        await run.stop();
        assertNoFdLeak(fds);
      },
    );

    test('unix: localAddr.path is the socket path, network and family are unix', async () => {
      const dir = tempDir('addrs');
      const path = join(dir, 'a.sock');
      const fds = openFdCount();
      const r = recorder();
      const run = await startServer(r.events, { backend }, `unix://${path}`);
      const a = run.server.addrs[0]!;
      assert.equal(a.network, 'unix');
      assert.equal(a.path, path);
      assert.equal(a.toString(), `unix://${path}`);
      const s = await connectTo(a);
      assert.equal((await readExactly(s, 2)).toString(), 'ok');
      const x = r.opened[0]!;
      assert.equal(x.local.network, 'unix');
      assert.equal(x.local.family, 'unix');
      assert.equal(x.local.path, path);
      assert.equal(x.remote.network, 'unix');
      s.end();
      await socketClosed(s);
      await waitFor(() => r.closed.length === 1, 'closed');
      assert.equal(r.closed[0]!.local.path, path);
      await run.stop();
      assertNoFdLeak(fds);
    });

    test('server.addrs: in the order given, port 0 replaced by the bound port; each connection has its index', async () => {
      const dir = tempDir('addrs-order');
      const path = join(dir, 'b.sock');
      const fds = openFdCount();
      const r = recorder();
      const run = await startServer(
        r.events,
        { backend },
        'tcp://127.0.0.1:0',
        `unix://${path}`,
        'udp://127.0.0.1:0',
        'tcp4://127.0.0.1:0',
      );
      const addrs = run.server.addrs;
      assert.deepEqual(
        addrs.map((a) => a.network),
        ['tcp', 'unix', 'udp', 'tcp'],
      );
      for (const i of [0, 2, 3]) {
        assert.ok(addrs[i]!.port > 0, `addrs[${i}] port ${addrs[i]!.port}`);
        assert.equal(addrs[i]!.host, '127.0.0.1');
        assert.equal(addrs[i]!.toString(), `${addrs[i]!.network}://127.0.0.1:${addrs[i]!.port}`);
      }
      assert.notEqual(addrs[0]!.port, addrs[3]!.port);
      assert.equal(addrs[1]!.path, path);
      assert.ok(Object.isFrozen(addrs), 'server.addrs cannot be changed by a callback');
      for (const i of [3, 0, 1]) {
        const s = await connectTo(addrs[i]!);
        assert.equal((await readExactly(s, 2)).toString(), 'ok');
        s.end();
        await socketClosed(s);
      }
      await waitFor(() => r.closed.length === 3, 'closed');
      assert.deepEqual(
        r.opened.map((x) => x.addrIndex),
        [3, 0, 1],
      );
      assert.equal(r.opened[0]!.local.port, addrs[3]!.port);
      assert.equal(r.opened[1]!.local.port, addrs[0]!.port);
      await run.stop();
      assertNoFdLeak(fds);
    });
  });
}
