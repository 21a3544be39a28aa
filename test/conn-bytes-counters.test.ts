/**
 * Byte counts and the loop's running totals.
 * - c.bytesRead and c.bytesWritten equal what the client sent and received: 1 MiB or more each
 *   way on three connections: one echoed back, one answered with a reply of another size, and one
 *   whose client half-closes after its request and reads its 32 MiB reply late, so the reply is
 *   still queued when the server's flushed close starts (the native core closes once the queue
 *   drains without reporting it drained);
 * - the loop's counters (Connections, Accepted, Closed, BytesRead, BytesWritten) equal the sums
 *   once every connection has closed; Dropped counts connections past maxConnections;
 * - c.loopIndex is 0 on a one-loop server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Conn } from '../src/index.js';
import { Counter } from '../src/loop/counters.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readExactly,
  sleep,
  startServer,
  waitFor,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kMiB = 1024 * 1024;

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

interface Seen {
  read: number;
  written: number;
  loopIndex: number;
}

for (const backend of await backendsUnderTest()) {
  describe(`Conn.bytesRead / bytesWritten / loopIndex and the loop counters (${backend})`, () => {
    test('1 MiB each way on three connections: per-connection counts and the loop totals equal what the clients sent and received', async () => {
      const fds = openFdCount();
      const seen = new Map<string, Seen>();
      let counters: Float64Array | null = null;
      let lateQueuedMax = 0;
      const replies: Record<string, Buffer> = { E: Buffer.alloc(0), R: pattern(kMiB + 7, 3), L: pattern(32 * kMiB, 5) };
      const want: Record<string, number> = { E: kMiB, R: kMiB, L: kMiB };
      const run = await startServer(
        {
          opened(c) {
            counters = (c as unknown as { owner: { counters: Float64Array } }).owner.counters;
            c.context = { kind: '', got: 0 };
          },
          data(c, input) {
            const st = c.context as { kind: string; got: number };
            if (st.kind === '') st.kind = String.fromCharCode(input.peek(1)[0]![0]!);
            const n = input.length;
            st.got += n;
            if (st.kind === 'E') {
              const out = Buffer.from(input.bytes());
              input.retrieveAll();
              return out;
            }
            input.retrieveAll();
            if (st.got !== want[st.kind]) return undefined;
            if (st.kind === 'L') {
              const poll = setInterval(() => {
                lateQueuedMax = Math.max(lateQueuedMax, c.queuedBytes);
                if (!c.open) clearInterval(poll);
              }, 5);
            }
            return replies[st.kind];
          },
          closed(c) {
            const st = c.context as { kind: string };
            seen.set(st.kind, { read: c.bytesRead, written: c.bytesWritten, loopIndex: c.loopIndex });
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      const addr = run.server.addrs[0]!;
      const clients = await Promise.all(['E', 'R', 'L'].map(() => connectTo(addr)));
      try {
        const [e, r, l] = clients as [(typeof clients)[0], (typeof clients)[0], (typeof clients)[0]];
        const echoIn = pattern(kMiB, 1);
        echoIn[0] = 0x45; // 'E'
        const reqR = pattern(kMiB, 2);
        reqR[0] = 0x52; // 'R'
        const reqL = pattern(kMiB, 4);
        reqL[0] = 0x4c; // 'L'
        l.pause();
        e.write(echoIn);
        r.write(reqR);
        l.end(reqL);
        assert.ok((await within(readExactly(e, kMiB), 20_000, 'the echo')).equals(echoIn));
        assert.ok((await within(readExactly(r, replies.R!.length), 20_000, 'the reply')).equals(replies.R!));
        await sleep(200);
        assert.ok((await within(readExactly(l, replies.L!.length), 20_000, 'the late-read reply')).equals(replies.L!));
        e.end();
        r.end();
        await within(
          waitFor(() => seen.size === 3, 'three closed'),
          10_000,
          'closed',
        );
      } finally {
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
      }
      const c = counters!;
      try {
        assert.deepEqual(seen.get('E'), { read: kMiB, written: kMiB, loopIndex: 0 });
        assert.deepEqual(seen.get('R'), { read: kMiB, written: kMiB + 7, loopIndex: 0 });
        assert.ok(lateQueuedMax > 0, "the late reader's reply was queued");
        assert.deepEqual(seen.get('L'), { read: kMiB, written: 32 * kMiB, loopIndex: 0 });
        assert.equal(c[Counter.BytesRead], 3 * kMiB, 'BytesRead is what the clients sent');
        assert.equal(c[Counter.BytesWritten], kMiB + kMiB + 7 + 32 * kMiB, 'BytesWritten is what the clients received');
        assert.equal(c[Counter.Accepted], 3);
        assert.equal(c[Counter.Closed], 3);
        assert.equal(c[Counter.Connections], 0);
        assert.equal(c[Counter.Dropped], 0);
      } finally {
        await run.stop();
      }
      assertNoFdLeak(fds);
    });

    test('Connections counts open connections; Dropped counts those past maxConnections', async () => {
      const fds = openFdCount();
      let counters: Float64Array | null = null;
      let dropped = 0;
      const conns: Conn[] = [];
      const run = await startServer(
        {
          opened(c) {
            counters = (c as unknown as { owner: { counters: Float64Array } }).owner.counters;
            conns.push(c);
          },
          dropped: () => void dropped++,
        },
        { backend, maxConnections: 2 },
        'tcp://127.0.0.1:0',
      );
      const addr = run.server.addrs[0]!;
      const clients = [await connectTo(addr), await connectTo(addr)];
      try {
        await within(
          waitFor(() => conns.length === 2, 'two opened'),
          5000,
          'opened',
        );
        assert.equal(counters![Counter.Connections], 2);
        clients.push(await connectTo(addr));
        await within(
          waitFor(() => dropped === 1, 'one dropped'),
          5000,
          'dropped',
        );
        await within(
          waitFor(() => counters![Counter.Closed] === 1, 'the drop closed'),
          5000,
          'closed',
        );
        assert.equal(counters![Counter.Dropped], 1);
        assert.equal(counters![Counter.Accepted], 3);
        assert.equal(counters![Counter.Connections], 2);
        conns[0]!.close();
        clients[0]!.end();
        await within(
          waitFor(() => counters![Counter.Connections] === 1, 'one left open'),
          5000,
          'one closed',
        );
      } finally {
        for (const s of clients) s.destroy();
        await Promise.all(clients.map(socketClosed));
        await run.stop();
      }
      assert.equal(counters![Counter.Accepted], 3);
      assert.equal(counters![Counter.Closed], 3);
      assert.equal(counters![Counter.Connections], 0);
      assertNoFdLeak(fds);
    });
  });
}
