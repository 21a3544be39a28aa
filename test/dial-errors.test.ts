/**
 * Dials that do not open, on every backend: each rejects with the error that names it, and
 * neither `opened` nor `closed` fires for it, nor does an fd stay open.
 * - ECONNREFUSED on a port just closed; ENOENT on a unix path that does not exist.
 * - ENOTFOUND (or EAI_AGAIN without a resolver) for a host under `.invalid`.
 * - A bad target is a BadAddressError, a bad option an InvalidArgumentError, each naming the value.
 * - The connect timeout: a listener whose accept queue is full drops the SYN, so the connect
 *   hangs; the dial rejects with ETIMEDOUT after its timeout (needs python3 for that listener).
 * - A shutdown cancels a pending dial (ECANCELED), and so does its AbortSignal.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { BadAddressError, DialError, InvalidArgumentError, listen, type Events, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  freePort,
  hangingListener,
  havePython,
  openFdCount,
  socketDir,
  waitFor,
  within,
} from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});

/** A client-only server that counts `opened` and `closed`. */
async function counting(backend: string): Promise<{ server: Server; opened: number[]; closed: number[] }> {
  const opened: number[] = [];
  const closed: number[] = [];
  const events: Events = {
    opened: () => void opened.push(1),
    closed: () => void closed.push(1),
  };
  const server = await listen(events, { backend: backend as 'native' | 'portable' });
  cleanups.push(() => server.shutdown());
  return { server, opened, closed };
}

/** Asserts that `p` rejects with a DialError for `target` with one of `errnos`; returns it. */
async function dialFails(p: Promise<unknown>, target: string, errnos: string[]): Promise<DialError> {
  const err = await p.then(
    () => assert.fail(`dial ${target} resolved`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DialError, `a DialError, got ${String(err)}`);
  assert.equal(err.code, 'ERR_GEVENT_DIAL');
  assert.ok(errnos.includes(err.errno), `errno ${err.errno}, expected one of ${errnos.join(', ')}`);
  assert.equal(err.address, target);
  assert.match(err.message, new RegExp(`^gevent: dial ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
  return err;
}

/** hangingListener(), closed after the test. */
async function hanging(): Promise<number> {
  const h = await hangingListener();
  cleanups.push(() => h.close());
  return h.port;
}

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`dial errors (${backend})`, () => {
    test('ECONNREFUSED on a port just closed: rejects, no opened or closed, nothing counted, no fd left', async () => {
      const fds = openFdCount();
      const { server, opened, closed } = await counting(backend);
      const target = `tcp://127.0.0.1:${await freePort()}`;
      await dialFails(server.dial(target), target, ['ECONNREFUSED']);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual([opened.length, closed.length], [0, 0]);
      assert.equal(server.stats().dialed, 0);
      assert.equal(server.connections, 0);
      await server.shutdown();
      await waitFor(() => openFdCount() <= fds, 'no fd left open');
    });

    test('ENOENT on a unix path that does not exist', async () => {
      const dir = socketDir('dial-enoent');
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const { server, opened } = await counting(backend);
      const target = `unix://${join(dir, 'missing.sock')}`;
      await dialFails(server.dial(target), target, ['ENOENT']);
      assert.equal(opened.length, 0);
    });

    test('a host that does not resolve: ENOTFOUND (EAI_AGAIN without a resolver)', async () => {
      const { server, opened } = await counting(backend);
      const target = 'tcp://no-such-host.invalid:1';
      const err = await dialFails(server.dial(target), target, ['ENOTFOUND', 'EAI_AGAIN']);
      assert.match(err.message, /lookup no-such-host\.invalid/);
      assert.equal(opened.length, 0);
    });

    test('a bad target is a BadAddressError, a bad option an InvalidArgumentError, naming the value', async () => {
      const { server } = await counting(backend);
      const port = 9;
      const cases: [unknown, unknown, typeof BadAddressError | typeof InvalidArgumentError, RegExp][] = [
        [42, undefined, InvalidArgumentError, /dial target must be .*number 42/],
        ['tcp://127.0.0.1:0', undefined, BadAddressError, /"tcp:\/\/127\.0\.0\.1:0".*needs a port/],
        ['tcp://:80', undefined, BadAddressError, /"tcp:\/\/:80".*needs a host/],
        ['udp://127.0.0.1:0', undefined, BadAddressError, /"udp:\/\/127\.0\.0\.1:0".*needs a port/],
        ['udp://127.0.0.1:53?reuseport=1', undefined, BadAddressError, /takes no options/],
        [`udp4://127.0.0.1:${port}`, { localAddress: '::1' }, InvalidArgumentError, /an IPv4 address.*"::1"/],
        ['tcp://127.0.0.1:80?reuseport=1', undefined, BadAddressError, /takes no options/],
        ['ftp://127.0.0.1:21', undefined, BadAddressError, /unknown scheme "ftp"/],
        [`tcp://127.0.0.1:${port}`, 'fast', InvalidArgumentError, /dial options must be .*"fast"/],
        [`tcp://127.0.0.1:${port}`, { bogus: 1 }, InvalidArgumentError, /dial option bogus must be a known option/],
        [`tcp://127.0.0.1:${port}`, { timeout: 0 }, InvalidArgumentError, /dial option timeout .*number 0/],
        [`tcp://127.0.0.1:${port}`, { timeout: '5' }, InvalidArgumentError, /dial option timeout .*"5"/],
        [`tcp://127.0.0.1:${port}`, { localPort: 70000 }, InvalidArgumentError, /localPort .*number 70000/],
        [`tcp://127.0.0.1:${port}`, { localAddress: 'localhost' }, InvalidArgumentError, /localAddress .*"localhost"/],
        [`tcp4://127.0.0.1:${port}`, { localAddress: '::1' }, InvalidArgumentError, /an IPv4 address.*"::1"/],
        ['unix:///tmp/x.sock', { localPort: 1 }, InvalidArgumentError, /localPort must be absent for a unix target/],
        [`tcp://127.0.0.1:${port}`, { signal: {} }, InvalidArgumentError, /signal must be an AbortSignal/],
      ];
      for (const [target, opts, cls, message] of cases) {
        await assert.rejects(
          server.dial(target as string, opts as never),
          (err: Error) => err instanceof cls && message.test(err.message),
          `${String(target)} ${JSON.stringify(opts)}`,
        );
      }
      assert.equal(server.connections, 0);
    });

    test(
      'the connect timeout: a SYN the peer drops rejects with ETIMEDOUT after the timeout, and is cancelled',
      { skip: havePython ? false : 'needs python3 for a listener that never accepts' },
      async () => {
        const port = await hanging();
        const fds = openFdCount();
        const { server, opened, closed } = await counting(backend);
        const target = `tcp://127.0.0.1:${port}`;
        const t0 = performance.now();
        const err = await dialFails(server.dial(target, { timeout: 200 }), target, ['ETIMEDOUT']);
        const elapsed = performance.now() - t0;
        assert.ok(elapsed >= 190, `rejected after ${elapsed} ms`);
        assert.match(err.message, /not connected after 200 ms/);
        await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual([opened.length, closed.length], [0, 0]);
        await server.shutdown();
        await waitFor(() => openFdCount() <= fds, 'the cancelled connect closed its fd');
      },
    );

    test(
      'a shutdown cancels a pending dial (ECANCELED), and so does its AbortSignal',
      { skip: havePython ? false : 'needs python3 for a listener that never accepts' },
      async () => {
        const port = await hanging();
        const { server, opened } = await counting(backend);
        const target = `tcp://127.0.0.1:${port}`;
        const ac = new AbortController();
        const aborted = server.dial(target, { signal: ac.signal });
        setTimeout(() => ac.abort(), 50);
        const abortErr = await dialFails(aborted, target, ['ECANCELED']);
        assert.match(abortErr.message, /aborted by its signal/);
        await assert.rejects(server.dial(target, { signal: AbortSignal.abort() }), DialError);
        const pending = server.dial(target);
        await new Promise((r) => setTimeout(r, 50));
        const stopping = server.shutdown();
        const err = await dialFails(pending, target, ['ECANCELED']);
        assert.match(err.message, /shutting down/);
        await within(stopping, 10_000, 'shutdown');
        await dialFails(server.dial(target), target, ['ECANCELED']);
        assert.equal(opened.length, 0);
      },
    );
  });
}
