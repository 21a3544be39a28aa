/**
 * A shutdown that cuts a connection's output tells its `closed` so: ShutdownError
 * (ERR_GEVENT_SHUTDOWN, with graceMs and the bytes dropped as last known) instead of null.
 * - with a 300 ms grace: a peer that does not read its 64 MiB gets ShutdownError at the deadline;
 *   a peer that read its whole reply but keeps its side open (lingering, its output written) and
 *   an idle peer get null;
 * - without a grace: a peer with output still queued gets ShutdownError (graceMs 0); an idle peer
 *   gets null.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ShutdownError, type Conn } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readExactly,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kBig = Buffer.alloc(64 * 1024 * 1024, 0x64);

for (const backend of await backendsUnderTest()) {
  describe(`ShutdownError for output cut by a shutdown (${backend})`, () => {
    for (const graceMs of [300, 0]) {
      test(`grace ${graceMs}: the peer that does not read gets ShutdownError; peers with nothing left to write get null`, async () => {
        const fds = openFdCount();
        const errs = new Map<string, Error | null>();
        const conns = new Map<string, Conn>();
        const run = await startServer(
          {
            data(c, input) {
              const role = Buffer.from(input.bytes()).toString();
              input.retrieveAll();
              c.context = role;
              conns.set(role, c);
              if (role === 'stuck') return kBig;
              if (role === 'reader') return 'small reply';
              return undefined;
            },
            closed(c, err) {
              errs.set(c.context as string, err);
            },
          },
          { backend, grace: graceMs },
          'tcp://127.0.0.1:0',
        );
        const addr = run.server.addrs[0]!;
        const stuck = await connectTo(addr);
        const reader = await connectTo(addr);
        const idle = await connectTo(addr);
        const clients = [stuck, reader, idle];
        stuck.pause();
        try {
          stuck.write('stuck');
          reader.write('reader');
          idle.write('idle');
          assert.equal((await readExactly(reader, 11)).toString(), 'small reply');
          await within(
            waitFor(
              () => conns.size === 3 && conns.get('stuck')!.queuedBytes > 0,
              'output queued for the stuck peer',
              10_000,
            ),
            12_000,
            'queued',
          );
          const before = performance.now();
          await within(run.stop(), 10_000 + graceMs, 'the shutdown');
          if (graceMs > 0) assert.ok(performance.now() - before >= graceMs - 20, 'the shutdown waited out the grace');
        } finally {
          for (const s of clients) s.destroy();
          await Promise.all(clients.map(socketClosed));
          await run.stop();
        }
        const cut = errs.get('stuck');
        assert.ok(cut instanceof ShutdownError, `the stuck peer's closed got ${String(cut)}`);
        assert.equal(cut.code, 'ERR_GEVENT_SHUTDOWN');
        assert.equal(cut.graceMs, graceMs);
        assert.ok(cut.droppedBytes > 0 && cut.droppedBytes <= kBig.length, `droppedBytes ${cut.droppedBytes}`);
        assert.equal(errs.get('reader'), null, 'a peer whose reply was all written gets null');
        assert.equal(errs.get('idle'), null, 'an idle peer gets null');
        assert.equal(errs.size, 3);
        assertNoFdLeak(fds);
      });
    }
  });
}
