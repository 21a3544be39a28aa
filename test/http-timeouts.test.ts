/**
 * The HTTP example bounds slow and idle clients, after node:http's headersTimeout, requestTimeout
 * and keepAliveTimeout: a head trickling in (slowloris) or left half-sent, and a body trickling in,
 * get 408 Request Timeout and are closed; an idle keep-alive connection is closed without a word.
 * Clients that keep up are served all the while. Timeouts are set short by options; the tests
 * check what happens, never how fast.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { backendsUnderTest, connectTo, readEnd, sleep } from './helpers.js';
import { parseResponses, rawRequests, withServer, type RawResponse } from './http-harness.js';

const kGet = 'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n';

/** Writes `next()` every `everyMs` until the socket ends or stop(); `sending` says whether it still does. */
function trickle(s: Socket, everyMs: number, next: () => string): { readonly sending: boolean; stop(): void } {
  let sending = true;
  const timer = setInterval(() => {
    if (s.destroyed || !s.writable) return stop();
    s.write(next());
  }, everyMs);
  const stop = (): void => {
    sending = false;
    clearInterval(timer);
  };
  s.once('close', stop);
  s.once('end', stop);
  return {
    get sending() {
      return sending;
    },
    stop,
  };
}

/** Reads until the server closes; the responses and how the stream ended. */
async function untilClosed(s: Socket): Promise<{ how: string; responses: RawResponse[] }> {
  const { how, data } = await readEnd(s);
  s.destroy();
  return { how, responses: parseResponses(data).responses };
}

for (const backend of await backendsUnderTest()) {
  describe(`http timeouts (${backend})`, () => {
    test('slowloris (a head byte every 20 ms, never ending) gets 408 at headersTimeout while still sending; a normal client is served meanwhile', async () => {
      await withServer(backend, { timeouts: { headersMs: 400 } }, async (port, tally) => {
        const slow = await connectTo({ network: 'tcp', port, path: '' });
        const slowEnded = readEnd(slow);
        const head = 'GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Pad: ';
        let sent = 0;
        let sendingAt408 = false;
        const sender = trickle(slow, 20, () => (sent < head.length ? head[sent++]! : (sent++, 'a')));
        slow.once('data', () => (sendingAt408 = sender.sending));

        const normal = await connectTo({ network: 'tcp', port, path: '' });
        let served = 0;
        let slowDone = false;
        const done = slowEnded.then(() => (slowDone = true));
        while (!slowDone) {
          const [r] = await rawRequests(normal, kGet, 1);
          assert.equal(r!.status, 200);
          served++;
          await Promise.race([sleep(20), done]);
        }
        const { how, data } = await slowEnded;
        sender.stop();
        slow.destroy();
        const responses = parseResponses(data).responses;
        assert.equal(how, 'eof');
        assert.deepEqual(
          responses.map((r) => [r.status, r.headers.get('connection')]),
          [[408, 'close']],
        );
        assert.match(responses[0]!.body, /head not received within 400 ms/);
        assert.ok(sendingAt408, 'the 408 came while the client was still sending: bytes do not reset the deadline');
        assert.ok(served > 0);
        const [after] = await rawRequests(normal, kGet, 1);
        assert.equal(after!.status, 200, 'the normal client is still served after the slow one was cut');
        normal.end();
        await readEnd(normal);
        assert.equal(tally.opened, 2);
      });
    });

    test('a half-sent request line, and a connection that sends nothing, get 408 and are closed', async () => {
      await withServer(backend, { timeouts: { headersMs: 300 } }, async (port) => {
        const half = await connectTo({ network: 'tcp', port, path: '' });
        half.write('GET /plain');
        const silent = await connectTo({ network: 'tcp', port, path: '' });
        for (const s of [half, silent]) {
          const { how, responses } = await untilClosed(s);
          assert.equal(how, 'eof');
          assert.deepEqual(
            responses.map((r) => r.status),
            [408],
          );
        }
      });
    });

    test('a body trickling in gets 408 at requestTimeout, though its head came in time', async () => {
      await withServer(backend, { timeouts: { headersMs: 200, requestMs: 600 } }, async (port) => {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        const ended = untilClosed(s);
        s.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n');
        const sender = trickle(s, 20, () => 'b');
        const { how, responses } = await ended;
        sender.stop();
        assert.equal(how, 'eof');
        assert.deepEqual(
          responses.map((r) => r.status),
          [408],
        );
        assert.match(responses[0]!.body, /request not received within 600 ms/);
      });
    });

    test("each request's headers clock starts at its own first byte, not at the connection's open", async () => {
      await withServer(backend, { timeouts: { headersMs: 1500 } }, async (port, tally) => {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        assert.equal((await rawRequests(s, kGet, 1))[0]!.status, 200);
        await sleep(900);
        s.write('GET /plaintext HTTP/1.1\r\n');
        await sleep(900);
        const [r] = await rawRequests(s, 'Host: t\r\n\r\n', 1);
        assert.equal(
          r!.status,
          200,
          'the second head took 900 ms of its own 1500, though 1800 ms passed since the open',
        );
        s.end();
        await readEnd(s);
        assert.equal(tally.opened, 1);
      });
    });

    test('an idle keep-alive connection is closed after keepAliveTimeout, without a response; a busy one stays open', async () => {
      await withServer(backend, { timeouts: { keepAliveMs: 600 } }, async (port, tally) => {
        const idle = await connectTo({ network: 'tcp', port, path: '' });
        const idleEnded = readEnd(idle);
        idle.write(kGet);
        const busy = await connectTo({ network: 'tcp', port, path: '' });
        const started = Date.now();
        while (Date.now() - started < 1500) {
          assert.equal((await rawRequests(busy, kGet, 1))[0]!.status, 200);
          await sleep(30);
        }
        const { how, data } = await idleEnded;
        idle.destroy();
        assert.equal(how, 'eof');
        assert.deepEqual(
          parseResponses(data).responses.map((r) => r.status),
          [200],
          'its one response, then the close: no 408',
        );
        assert.equal(
          (await rawRequests(busy, kGet, 1))[0]!.status,
          200,
          'the busy connection outlived several keep-alive timeouts',
        );
        busy.end();
        await readEnd(busy);
        assert.equal(tally.opened, 2);
        assert.deepEqual(tally.errors, []);
      });
    });

    test('timeouts of 0 are off: a silent connection and an idle one stay open', async () => {
      await withServer(backend, { timeouts: { headersMs: 0, requestMs: 0, keepAliveMs: 0 } }, async (port, tally) => {
        const silent = await connectTo({ network: 'tcp', port, path: '' });
        const idle = await connectTo({ network: 'tcp', port, path: '' });
        assert.equal((await rawRequests(idle, kGet, 1))[0]!.status, 200);
        let closedEarly = false;
        for (const s of [silent, idle]) s.once('end', () => (closedEarly = true));
        await sleep(300);
        assert.equal(closedEarly, false);
        assert.equal(tally.closed, 0);
        for (const s of [silent, idle]) {
          s.end();
          await readEnd(s);
        }
      });
    });
  });
}
