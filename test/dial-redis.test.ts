/**
 * A dial to a real server: redis-server on a unix socket (redis cannot listen on port 0), reached
 * with `unix://` from loop.dial in `init`; PING, SET and GET in RESP get their replies, in order.
 * Skipped where redis-server is not installed (CI installs only redis-tools).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { listen, type Conn } from '../src/index.js';
import { backendsUnderTest, socketDir, waitFor, within } from './helpers.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

/** A RESP command (an array of bulk strings). */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`dial redis-server (${backend})`, { skip: haveRedis ? false : 'redis-server is not installed' }, () => {
    test('unix:// dial from init: PING, SET and GET get +PONG, +OK and the value', async () => {
      const dir = socketDir('dial-redis');
      const sock = join(dir, 'r.sock');
      const redis = spawn(
        'redis-server',
        ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no', '--dir', dir],
        { stdio: 'ignore' },
      );
      try {
        await waitFor(() => existsSync(sock), 'redis-server to listen', 10_000);
        let replies = '';
        let conn: Conn | null = null;
        const server = await listen(
          {
            async init(loop) {
              conn = await loop.dial(`unix://${sock}`);
            },
            data(_c, input) {
              replies += Buffer.from(input.bytes()).toString();
              input.retrieveAll();
            },
          },
          { backend },
        );
        try {
          assert.equal(conn!.outbound, true);
          assert.equal(conn!.remoteAddr.path, sock);
          conn!.send(resp('PING') + resp('SET', 'k', 'v') + resp('GET', 'k'));
          await waitFor(() => replies.length >= '+PONG\r\n+OK\r\n$1\r\nv\r\n'.length, 'the replies');
          assert.equal(replies, '+PONG\r\n+OK\r\n$1\r\nv\r\n');
        } finally {
          await within(server.shutdown(), 10_000, 'shutdown');
        }
      } finally {
        if (redis.exitCode === null && redis.signalCode === null) {
          const exited = new Promise((resolve) => redis.once('exit', resolve));
          redis.kill();
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
