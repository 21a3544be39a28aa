/**
 * The seed's echo test: clients send random payloads of 0-1 MB and expect them back byte for
 * byte; each `opened` writes a greeting, sets the context and keep-alive; `closed` checks the
 * context; the last `closed` returns Shutdown. Over tcp, and tcp + unix together.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Action, serve, type Conn, type Server } from '../src/index.js';
import { backendsUnderTest, connectTo, openFdCount, readExactly, assertNoFdLeak } from './helpers.js';

const kGreeting = 'sweetness\r\n';
const kClients = 10;

interface Tally {
  opened: number;
  closed: number;
  /** What `closed` got, when not null: checked after the run (an assert inside the callback would be caught by the library). */
  closeErrors: Error[];
  contextOk: number;
  byIndex: number[];
}

async function echoRun(
  backend: 'native' | 'portable',
  addrs: string[],
  clients: number,
  rounds: number,
): Promise<Tally> {
  const tally: Tally = { opened: 0, closed: 0, closeErrors: [], contextOk: 0, byIndex: addrs.map(() => 0) };
  let server!: Server;
  let onServing!: () => void;
  const serving = new Promise<void>((r) => (onServing = r));
  const done = serve(
    {
      serving(s) {
        server = s;
        onServing();
      },
      opened(c: Conn) {
        tally.opened++;
        tally.byIndex[c.addrIndex]!++;
        c.context = { tag: `ctx-${c.addrIndex}` };
        return { out: kGreeting, opts: { tcpKeepAlive: 300_000 } };
      },
      closed(c: Conn, err) {
        if (err !== null) tally.closeErrors.push(err);
        if ((c.context as { tag: string }).tag === `ctx-${c.addrIndex}`) tally.contextOk++;
        tally.closed++;
        return tally.closed === clients ? Action.Shutdown : Action.None;
      },
      data(_c, input) {
        const out = input.bytes();
        input.retrieveAll();
        return out;
      },
    },
    { backend },
    ...addrs,
  );
  await serving;
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const addr = server.addrs[i % server.addrs.length]!;
      const s = await connectTo(addr);
      assert.equal((await readExactly(s, kGreeting.length)).toString(), kGreeting);
      for (let r = 0; r < rounds; r++) {
        const payload = randomBytes(randomInt(0, 1024 * 1024 + 1));
        s.write(payload);
        const back = await readExactly(s, payload.length);
        assert.ok(back.equals(payload), `payload of ${payload.length} bytes came back changed`);
      }
      s.end();
      await new Promise((r) => s.once('close', r));
    }),
  );
  await done;
  return tally;
}

for (const backend of await backendsUnderTest()) {
  describe(`echo (${backend})`, () => {
    test('10 clients get a greeting and their random 0-1 MB payloads back byte for byte over tcp', async () => {
      const fds = openFdCount();
      const t = await echoRun(backend, ['tcp://127.0.0.1:0'], kClients, 4);
      assert.equal(t.opened, kClients);
      assert.equal(t.closed, kClients);
      assert.deepEqual(t.closeErrors, [], 'every connection closed cleanly');
      assert.equal(t.contextOk, kClients);
      assertNoFdLeak(fds);
    });

    test('tcp and unix together: clients on both, each connection knows its address index', async () => {
      const path = join(tmpdir(), `gevent-echo-${process.pid}-${backend}.sock`);
      const fds = openFdCount();
      const t = await echoRun(backend, ['tcp://127.0.0.1:0', `unix://${path}`], kClients, 2);
      assert.equal(t.closed, kClients);
      assert.deepEqual(t.closeErrors, [], 'every connection closed cleanly');
      assert.equal(t.contextOk, kClients);
      assert.deepEqual(t.byIndex, [kClients / 2, kClients / 2]);
      assert.equal(existsSync(path), false, 'the unix socket file is removed on shutdown');
      assertNoFdLeak(fds);
    });
  });
}
