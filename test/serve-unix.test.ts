/**
 * unix:// listeners and their socket files: a stale file left by a killed server is removed and
 * bound over; a live server's socket or a regular file at the path is refused and left alone; the
 * file is removed on shutdown.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ListenError, serve, type Events } from '../src/index.js';
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

const echo: Events = {
  data(_c, input) {
    const out = input.bytes();
    input.retrieveAll();
    return out;
  },
};

/** Leaves a stale socket file at `path`: a child process listens there and is killed with SIGKILL. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.ok(lstatSync(path).isSocket(), 'the killed server left its socket file');
}

async function echoOnce(path: string, msg: string): Promise<void> {
  const s = await connectTo({ network: 'unix', port: 0, path });
  s.write(msg);
  assert.equal((await readExactly(s, msg.length)).toString(), msg);
  s.end();
  await socketClosed(s);
}

for (const backend of await backendsUnderTest()) {
  describe(`unix sockets (${backend})`, () => {
    test('a stale socket file from a killed server is removed and the server binds and serves there', async () => {
      const dir = tempDir('unix-stale');
      const path = join(dir, 'stale.sock');
      await staleSocket(path);
      const fds = openFdCount();
      const run = await startServer(echo, { backend }, `unix://${path}`);
      assert.equal(run.server.addrs[0]!.path, path);
      await echoOnce(path, 'after the stale file');
      await run.stop();
      assert.equal(existsSync(path), false, 'the socket file is removed on shutdown');
      assertNoFdLeak(fds);
    });

    test('the socket file exists while serving and is removed on shutdown', async () => {
      const dir = tempDir('unix-remove');
      const path = join(dir, 's.sock');
      const fds = openFdCount();
      const run = await startServer(echo, { backend }, `unix://${path}`);
      assert.ok(lstatSync(path).isSocket());
      await echoOnce(path, 'hello');
      await run.stop();
      assert.equal(existsSync(path), false);
      assertNoFdLeak(fds);
    });

    test('a path where a live server listens rejects with ListenError EADDRINUSE and the live server keeps working', async () => {
      const dir = tempDir('unix-live');
      const path = join(dir, 'live.sock');
      // The live server runs in this process, so the library's probe connection shows up here as
      // one accepted socket; it is counted and waited for before fds are compared.
      const liveConns = { accepted: 0, closed: 0 };
      const live = createServer((sock) => {
        liveConns.accepted++;
        sock.once('close', () => liveConns.closed++);
        sock.pipe(sock);
      });
      await new Promise<void>((r) => live.listen(path, () => r()));
      const fds = openFdCount();
      const text = `unix://${path}`;
      let serving = 0;
      await assert.rejects(serve({ serving: () => void serving++ }, { backend }, text), (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.code, 'ERR_GEVENT_LISTEN');
        assert.equal(err.errno, 'EADDRINUSE');
        assert.ok(err.message.includes(text), err.message);
        return true;
      });
      assert.equal(serving, 0);
      await waitFor(() => liveConns.closed === liveConns.accepted, 'the probe connection to close');
      assertNoFdLeak(fds);
      assert.ok(lstatSync(path).isSocket(), 'the live socket file is still there');
      await echoOnce(path, 'still alive');
      await new Promise<void>((r) => live.close(() => r()));
    });

    test('a path that is a regular file rejects with ListenError and the file is left untouched', async () => {
      const dir = tempDir('unix-file');
      const path = join(dir, 'not-a-socket');
      writeFileSync(path, 'precious data');
      const fds = openFdCount();
      const text = `unix://${path}`;
      await assert.rejects(serve({}, { backend }, text), (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.code, 'ERR_GEVENT_LISTEN');
        assert.ok(err.message.includes(text), err.message);
        return true;
      });
      assert.equal(readFileSync(path, 'utf8'), 'precious data');
      assertNoFdLeak(fds);
    });

    test('a path in a directory that does not exist rejects with ListenError', async () => {
      const dir = tempDir('unix-nodir');
      const text = `unix://${join(dir, 'missing', 's.sock')}`;
      const fds = openFdCount();
      await assert.rejects(serve({}, { backend }, text), (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.equal(err.code, 'ERR_GEVENT_LISTEN');
        assert.ok(err.message.includes(text), err.message);
        return true;
      });
      assertNoFdLeak(fds);
    });

    test('two unix listeners on one server each serve their own path and both files go on shutdown', async () => {
      const dir = tempDir('unix-two');
      const p0 = join(dir, 'a.sock');
      const p1 = join(dir, 'b.sock');
      const byIndex = [0, 0];
      const fds = openFdCount();
      const run = await startServer(
        { ...echo, opened: (c) => void byIndex[c.addrIndex]!++ },
        { backend },
        `unix://${p0}`,
        `unix://${p1}`,
      );
      await echoOnce(p0, 'to a');
      await echoOnce(p1, 'to b');
      await echoOnce(p1, 'to b again');
      assert.deepEqual(byIndex, [1, 2]);
      await run.stop();
      assert.equal(existsSync(p0), false);
      assert.equal(existsSync(p1), false);
      assertNoFdLeak(fds);
    });
  });
}
