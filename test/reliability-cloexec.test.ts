/**
 * Close-on-exec: a child process spawned while the server has listeners (tcp and unix) and open
 * connections inherits none of their sockets. The child lists its own /proc/self/fd; none of the
 * socket inodes it holds may be one of this process's sockets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectMany,
  connectTo,
  openFdCount,
  socketDir,
  socketInodes,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const run = promisify(execFile);
const kConns = 20;
/** A child that prints the target of each of its fds, one `fd target` per line. */
const kListFds = `const fs = require('fs'); for (const fd of fs.readdirSync('/proc/self/fd')) { try { console.log(fd, fs.readlinkSync('/proc/self/fd/' + fd)); } catch {} }`;

for (const backend of await backendsUnderTest()) {
  describe(`close-on-exec (${backend})`, () => {
    test(`a child spawned while listeners and ${kConns} connections are open inherits none of their sockets`, async () => {
      const fds = openFdCount();
      const dir = socketDir('cloexec');
      const before = socketInodes('self');
      let opened = 0;
      const server = await startServer(
        { opened: () => void opened++, data: (_c, input) => (input.retrieveAll(), null) },
        { backend },
        'tcp://127.0.0.1:0',
        `unix://${join(dir, 's.sock')}`,
      );
      const clients = await connectMany(server.server.addrs[0]!.port, kConns);
      clients.push(await connectTo(server.server.addrs[1]!));
      const leaked: string[] = [];
      let childSockets = 0;
      let serverSockets = 0;
      try {
        await within(
          waitFor(() => opened === kConns + 1, 'every connection opened'),
          5000,
          'opened',
        );
        const ours = socketInodes('self');
        for (const inode of before) ours.delete(inode);
        serverSockets = ours.size;
        const { stdout } = await run(process.execPath, ['-e', kListFds]);
        for (const line of stdout.trim().split('\n')) {
          const [fd, target] = line.split(' ');
          const m = /^socket:\[(\d+)\]$/.exec(target ?? '');
          if (!m || Number(fd) <= 2) continue;
          childSockets++;
          if (ours.has(m[1]!)) leaked.push(`fd ${fd}: ${target}`);
        }
      } finally {
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await within(server.stop(), 5000, 'serve() to settle');
        rmSync(dir, { recursive: true, force: true });
      }
      assert.ok(serverSockets >= 2 * (kConns + 1) + 2, `only ${serverSockets} new sockets seen in this process`);
      assert.deepEqual(
        leaked,
        [],
        `the child inherited ${leaked.length} of this process's sockets (of ${childSockets} sockets it holds)`,
      );
      assertNoFdLeak(fds);
    });
  });
}
