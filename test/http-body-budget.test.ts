/**
 * The HTTP example's body budget: request bodies held at once, over all of a loop's connections,
 * are bounded. A body that does not fit gets 503 and a close; the room comes back when a body is
 * complete, when it is refused, and when its connection closes part-way. Before it, 300 clients
 * each one byte short of a 1 MiB body held 300 MiB.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { RingBuffer } from '../src/index.js';
import { BodyBudget } from '../examples/http/budget.js';
import { HttpParser, type HttpRequest } from '../examples/http/parser.js';
import { backendsUnderTest, closed, connectTo, waitFor } from './helpers.js';
import { rawExchange, rawRequests, withServer } from './http-harness.js';

const kKiB = 1024;

function post(length: number, extra = ''): string {
  return `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${length}\r\n${extra}\r\n`;
}

describe('http parser: body budget', () => {
  test('parsers sharing a budget take a Content-Length body whole from it, and give it back when the body is complete', () => {
    const budget = new BodyBudget(100);
    const a = new HttpParser({}, budget);
    const b = new HttpParser({}, budget);
    const inA = RingBuffer.withData(Buffer.from(post(60) + 'x'.repeat(59)));
    const out: HttpRequest[] = [];
    assert.equal(a.parse(inA, out), null);
    assert.equal(budget.usedBytes, 60);
    const err = b.parse(RingBuffer.withData(Buffer.from(post(41))), out);
    assert.equal(err?.status, 503);
    assert.equal(err?.code, 'ERR_HTTP_BODY_BUDGET');
    assert.equal(budget.usedBytes, 60, 'a refused body takes nothing');
    inA.write(Buffer.from('x'));
    assert.equal(a.parse(inA, out), null);
    assert.equal(out.length, 1);
    assert.equal(budget.usedBytes, 0);
    const c = new HttpParser({}, budget);
    assert.equal(c.parse(RingBuffer.withData(Buffer.from(post(100))), out), null, 'exactly the budget fits');
    assert.equal(budget.usedBytes, 100);
    c.dispose();
    assert.equal(budget.usedBytes, 0, 'dispose gives a part-read body back');
  });

  test('a chunked body takes its buffer as it grows, exactly when doubling would not fit, and gives it back on an error', () => {
    const budget = new BodyBudget(70);
    const p = new HttpParser({}, budget);
    const input = RingBuffer.withData(
      Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n' + 'y'.repeat(40) + '\r\n'),
    );
    const out: HttpRequest[] = [];
    assert.equal(p.parse(input, out), null);
    assert.equal(budget.usedBytes, 40);
    input.write(Buffer.from('5\r\nzzzzz\r\n'));
    assert.equal(p.parse(input, out), null);
    assert.equal(budget.usedBytes, 45, 'doubling to 80 would not fit in 70, so the buffer grew to exactly 45');
    input.write(Buffer.from('1a\r\n'));
    assert.equal(p.parse(input, out)?.status, 503, '45 + 26 does not fit in 70');
    assert.equal(budget.usedBytes, 0, 'the failed parser gave its room back');
  });

  test('a body over maxBodyBytes is a 413 whatever the budget; the 503 is only for bodies that could fit', () => {
    const budget = new BodyBudget(10);
    assert.equal(
      new HttpParser({ maxBodyBytes: 5 }, budget).parse(RingBuffer.withData(Buffer.from(post(6))), [])?.status,
      413,
    );
    assert.equal(
      new HttpParser({ maxBodyBytes: 50 }, budget).parse(RingBuffer.withData(Buffer.from(post(11))), [])?.status,
      503,
    );
    assert.equal(budget.usedBytes, 0);
  });
});

/** Connects and sends a head with `Expect: 100-continue`; resolves with the status of the first response (100: the server took the body's room). */
async function announceBody(port: number, length: number): Promise<{ s: Socket; status: number }> {
  const s = await connectTo({ network: 'tcp', port, path: '' });
  const status = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve(Number(seen.split(' ')[1]));
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(post(length, 'Expect: 100-continue\r\n'));
  });
  return { s, status };
}

/** A client holding a body one byte short of `length`: its head took the room, and all but one byte was sent. */
async function holdBody(port: number, length: number): Promise<Socket> {
  const { s, status } = await announceBody(port, length);
  assert.equal(status, 100);
  s.write(Buffer.alloc(length - 1, 0x61));
  return s;
}

for (const backend of await backendsUnderTest()) {
  describe(`http body budget (${backend})`, () => {
    test('bodies past the budget get 503 and a close; the room comes back when a body completes or its client leaves', async () => {
      await withServer(
        backend,
        { bodyBudgetBytes: 256 * kKiB, limits: { maxBodyBytes: 200 * kKiB } },
        async (port, tally) => {
          const a = await holdBody(port, 100 * kKiB);
          const b = await holdBody(port, 100 * kKiB);

          const refused = await rawExchange(port, post(100 * kKiB));
          assert.deepEqual(
            refused.responses.map((r) => [r.status, r.headers.get('connection')]),
            [[503, 'close']],
          );
          assert.equal(refused.how, 'eof');
          const small = await rawExchange(port, post(10, 'Connection: close\r\n') + '0123456789');
          assert.deepEqual(
            small.responses.map((r) => [r.status, r.body]),
            [[200, '0123456789']],
            'a body that fits the rest is served',
          );

          const [echoed] = await rawRequests(a, 'a', 1);
          assert.equal(echoed!.status, 200);
          assert.equal(echoed!.body.length, 100 * kKiB);
          const c = await holdBody(port, 100 * kKiB);
          assert.deepEqual(
            (await rawExchange(port, post(100 * kKiB))).responses.map((r) => r.status),
            [503],
            'b and c hold 200 KiB of 256',
          );

          b.destroy();
          await closed(b);
          await waitFor(() => tally.opened - tally.closed === 2, 'the server to close every connection but a and c');
          const d = await holdBody(port, 100 * kKiB);
          for (const s of [a, c, d]) {
            s.destroy();
            await closed(s);
          }
        },
      );
    });

    test('300 clients each announcing a 1 MiB body: 64 fit in the default 64 MiB budget, the rest get 503 at once', async () => {
      await withServer(backend, { limits: { maxBodyBytes: 1024 * kKiB } }, async (port) => {
        const clients: Socket[] = [];
        const statuses = new Map<number, number>();
        for (let i = 0; i < 300; i++) {
          const { s, status } = await announceBody(port, 1024 * kKiB);
          clients.push(s);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
        assert.deepEqual([...statuses].sort(), [
          [100, 64],
          [503, 236],
        ]);
        for (const s of clients) s.destroy();
      });
    });
  });
}
