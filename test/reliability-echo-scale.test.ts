/**
 * Echo at scale: 1,000 connections open at once, each sending its payload in random chunks of
 * 1 B to 64 KiB, all in flight together; every echo must come back byte-exact (sha256) with no
 * error on either side.
 *
 * Size: 256 KiB per connection in CI (256 MiB through one process that is both client and server;
 * 1 MiB each takes about four times as long on the portable backend, past the file's time budget
 * on 2 cores). GEVENT_STRESS=1 sends 1 MiB from each of 2,000 connections.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { Conn, RingBuffer } from '../src/index.js';
import {
  backendsUnderTest,
  needFds,
  connectMany,
  openFdCount,
  sized,
  startServer,
  waitFor,
  assertNoFdLeak,
} from './helpers.js';

const kConns = sized(1000, 2000);
const kBytesPerConn = sized(256 * 1024, 1024 * 1024);
const kMaxChunk = 64 * 1024;

/** Sends `total` random bytes in random chunks (honouring the socket's backpressure); resolves with their sha256. */
async function sendRandom(s: Socket, total: number): Promise<string> {
  const h = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const chunk = randomBytes(Math.min(total - sent, randomInt(1, kMaxChunk + 1)));
    h.update(chunk);
    sent += chunk.length;
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
  return h.digest('hex');
}

/** Hashes exactly `total` incoming bytes; rejects on an error or an early end. */
function receiveHash(s: Socket, total: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got > total) return reject(new Error(`got ${got} bytes, more than the ${total} sent`));
      h.update(d);
      if (got === total) resolve(h.digest('hex'));
    });
    s.once('end', () => reject(new Error(`stream ended after ${got} of ${total} bytes`)));
    s.once('error', reject);
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`echo at scale (${backend})`, { skip: needFds(2 * kConns + 100) }, () => {
    test(`${kConns} concurrent connections each echo ${kBytesPerConn / 1024} KiB sent in random 1 B-64 KiB chunks, hash-exact, 0 errors`, async () => {
      const fds = openFdCount();
      let opened = 0;
      const errors: (Error | null)[] = [];
      let closedClean = 0;
      const run = await startServer(
        {
          opened: () => void opened++,
          data(_c: Conn, input: RingBuffer) {
            const out = input.bytes();
            input.retrieveAll();
            return out;
          },
          closed(_c: Conn, err: Error | null) {
            if (err) errors.push(err);
            else closedClean++;
          },
        },
        { backend, onError: (err) => errors.push(err) },
        'tcp://127.0.0.1:0',
      );
      const clients = await connectMany(run.server.addrs[0]!.port, kConns);
      await waitFor(() => opened === kConns, `${kConns} opened`);
      const results = await Promise.all(
        clients.map(async (s) => {
          const back = receiveHash(s, kBytesPerConn);
          const sent = await sendRandom(s, kBytesPerConn);
          return { sent, back: await back };
        }),
      );
      let mismatched = 0;
      for (const r of results) if (r.sent !== r.back) mismatched++;
      assert.equal(mismatched, 0, `${mismatched} of ${kConns} echoes differ from what was sent`);
      for (const s of clients) s.end();
      await Promise.all(clients.map((s) => new Promise((r) => (s.closed ? r(null) : s.once('close', r)))));
      await waitFor(() => closedClean + errors.length === kConns, 'every closed');
      await run.stop();
      assert.deepEqual(errors, []);
      assert.equal(opened, kConns);
      assert.equal(closedClean, kConns);
      assertNoFdLeak(fds);
    });
  });
}
