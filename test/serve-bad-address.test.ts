/**
 * serve() with addresses that are malformed or cannot be bound: it rejects with an error that
 * names the address, and leaves nothing bound or open behind it.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BadAddressError, ListenError, serve, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  connectOutcome,
  freePort,
  holdPort,
  openFdCount,
  socketDir,
  startServer,
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

function counting(): { events: Events; calls: { serving: number; tick: number } } {
  const calls = { serving: 0, tick: 0 };
  return {
    calls,
    events: {
      serving: () => void calls.serving++,
      tick: () => void calls.tick++,
    },
  };
}

function isBadAddress(text: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof BadAddressError, `expected a BadAddressError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_GEVENT_BAD_ADDRESS');
    assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} does not name ${text}`);
    return true;
  };
}

function isAddrInUse(text: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ListenError, `expected a ListenError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_GEVENT_LISTEN');
    assert.equal(err.errno, 'EADDRINUSE');
    assert.equal(err.address, text);
    assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} does not name ${text}`);
    return true;
  };
}

for (const backend of await backendsUnderTest()) {
  describe(`serve() bad addresses (${backend})`, () => {
    test('tulip://howdy rejects with ERR_GEVENT_BAD_ADDRESS naming the input; no callback runs', async () => {
      const fds = openFdCount();
      const { events, calls } = counting();
      await assert.rejects(serve(events, { backend }, 'tulip://howdy'), isBadAddress('tulip://howdy'));
      assert.deepEqual(calls, { serving: 0, tick: 0 });
      assertNoFdLeak(fds);
    });

    test('howdy (no port) rejects with ERR_GEVENT_BAD_ADDRESS naming the input', async () => {
      const fds = openFdCount();
      const { events, calls } = counting();
      await assert.rejects(serve(events, { backend }, 'howdy'), isBadAddress('howdy'));
      assert.deepEqual(calls, { serving: 0, tick: 0 });
      assertNoFdLeak(fds);
    });

    test('a bad address after a good one rejects before anything is bound', async () => {
      const fds = openFdCount();
      const port = await freePort();
      const { events, calls } = counting();
      await assert.rejects(serve(events, { backend }, `tcp://127.0.0.1:${port}`, 'howdy'), isBadAddress('howdy'));
      assert.equal(calls.serving, 0);
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('no address at all is no bad address: the server runs with no listener (an aborted signal stops it at once)', async () => {
      const fds = openFdCount();
      const { events, calls } = counting();
      await serve(events, { backend, signal: AbortSignal.abort() });
      assert.equal(calls.serving, 0);
      assertNoFdLeak(fds);
    });

    test('tcp:// (empty) serves on a free port that accepts connections', async () => {
      const fds = openFdCount();
      const { events, calls } = counting();
      const run = await startServer(events, { backend }, 'tcp://');
      const addr = run.server.addrs[0]!;
      assert.equal(addr.network, 'tcp');
      assert.ok(addr.port > 0, `bound port ${addr.port}`);
      assert.equal(await connectOutcome(addr.port), 'connected');
      await run.stop();
      assert.equal(calls.serving, 1);
      assert.equal(await connectOutcome(addr.port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });

    test('a port already in use rejects with ListenError EADDRINUSE naming the address', async () => {
      const held = await holdPort();
      const fds = openFdCount();
      const text = `tcp://127.0.0.1:${held.port}`;
      const { events, calls } = counting();
      await assert.rejects(serve(events, { backend }, text), isAddrInUse(text));
      assert.equal(calls.serving, 0);
      assertNoFdLeak(fds);
      await held.close();
    });

    test('a failed bind of the second address closes the first: its port is free again', async () => {
      const held = await holdPort();
      const first = await freePort();
      const fds = openFdCount();
      const text = `tcp://127.0.0.1:${held.port}`;
      const { events, calls } = counting();
      await assert.rejects(serve(events, { backend }, `tcp://127.0.0.1:${first}`, text), isAddrInUse(text));
      assert.equal(calls.serving, 0);
      assert.equal(await connectOutcome(first), 'ECONNREFUSED');
      assertNoFdLeak(fds);
      // The port can be bound again, by this library too.
      const again = await startServer({}, { backend }, `tcp://127.0.0.1:${first}`);
      assert.equal(again.server.addrs[0]!.port, first);
      await again.stop();
      assertNoFdLeak(fds);
      await held.close();
    });

    test('a failed bind after a unix address removes the socket file it created', async () => {
      const dir = tempDir('badaddr');
      const path = join(dir, 's.sock');
      const held = await holdPort();
      const fds = openFdCount();
      const text = `tcp://127.0.0.1:${held.port}`;
      await assert.rejects(serve({}, { backend }, `unix://${path}`, text), isAddrInUse(text));
      assert.equal(existsSync(path), false, 'the socket file is gone');
      assertNoFdLeak(fds);
      await held.close();
    });

    test('the same port twice in one serve() rejects with EADDRINUSE and releases the first', async () => {
      const port = await freePort();
      const fds = openFdCount();
      const text = `tcp://127.0.0.1:${port}`;
      await assert.rejects(serve({}, { backend }, text, text), isAddrInUse(text));
      assert.equal(await connectOutcome(port), 'ECONNREFUSED');
      assertNoFdLeak(fds);
    });
  });
}
