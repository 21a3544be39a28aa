/**
 * The HTTP example served on both backends and driven by real clients: Node's own http client
 * (plain, keep-alive agent, chunked uploads) and raw sockets for pipelining and malformed input
 * (bare LF line ends and leading-zero Content-Length answered as node:http answers them).
 * Each test counts opened/closed connections and checks that no fd is left open. Timeouts are in
 * http-timeouts.test.ts, the body budget in http-body-budget.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { serve } from '../src/index.js';
import {
  backendsUnderTest,
  connectOutcome,
  connectTo,
  freePort,
  openFdCount,
  readEnd,
  sleep,
  waitFor,
} from './helpers.js';
import { parseResponses, rawExchange, rawRequests, request, withServer, type Reply } from './http-harness.js';

function checkDate(value: string | undefined): void {
  assert.match(
    value ?? '',
    /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/,
  );
  assert.ok(Math.abs(Date.parse(value!) - Date.now()) < 3000, `Date ${value} is current`);
}

for (const backend of await backendsUnderTest()) {
  describe(`http server (${backend})`, () => {
    test('GET /plaintext and /json with node:http: status, headers, bodies; HEAD has no body', async () => {
      await withServer(backend, {}, async (port, tally) => {
        const plain = await request(port, { path: '/plaintext' });
        assert.equal(plain.status, 200);
        assert.equal(plain.headers['content-type'], 'text/plain');
        assert.equal(plain.headers['content-length'], '13');
        assert.equal(plain.headers.server, 'gevent');
        assert.equal(plain.headers.connection, 'close', 'agent: false asks for close, and gets it');
        checkDate(plain.headers.date);
        assert.equal(plain.body.toString(), 'Hello, World!');

        const json = await request(port, { path: '/json?x=1' });
        assert.equal(json.status, 200);
        assert.equal(json.headers['content-type'], 'application/json');
        assert.equal(json.headers['content-length'], '27');
        checkDate(json.headers.date);
        assert.deepEqual(JSON.parse(json.body.toString()), { message: 'Hello, World!' });

        const head = await request(port, { path: '/json', method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers['content-length'], '27');
        assert.equal(head.body.length, 0);
        assert.equal(tally.opened, 3);
      });
    });

    test('unknown path -> 404; wrong method -> 405 with Allow', async () => {
      await withServer(backend, {}, async (port) => {
        assert.equal((await request(port, { path: '/nope' })).status, 404);
        const put = await request(port, { path: '/plaintext', method: 'PUT' }, ['x']);
        assert.equal(put.status, 405);
        assert.equal(put.headers.allow, 'GET, HEAD');
        const get = await request(port, { path: '/echo' });
        assert.equal(get.status, 405);
        assert.equal(get.headers.allow, 'POST');
      });
    });

    test('POST /echo with Content-Length and with a chunked body returns the body', async () => {
      await withServer(backend, {}, async (port) => {
        const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
        const sized = await request(
          port,
          {
            path: '/echo',
            method: 'POST',
            headers: { 'content-length': payload.length, 'content-type': 'application/x-test' },
          },
          [payload],
        );
        assert.equal(sized.status, 200);
        assert.equal(sized.headers['content-type'], 'application/x-test');
        assert.ok(sized.body.equals(payload));

        const chunked = await request(port, { path: '/echo', method: 'POST' }, ['first,', payload, ',last']);
        assert.equal(chunked.status, 200);
        assert.equal(chunked.headers['content-type'], 'application/octet-stream');
        assert.ok(chunked.body.equals(Buffer.concat([Buffer.from('first,'), payload, Buffer.from(',last')])));
      });
    });

    test('keep-alive: an Agent with keepAlive sends 10 requests over one connection', async () => {
      await withServer(backend, {}, async (port, tally) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const replies: Reply[] = [];
          for (let i = 0; i < 10; i++)
            replies.push(await request(port, { path: i % 2 ? '/json' : '/plaintext', agent }));
          assert.ok(replies.every((r) => r.status === 200 && r.headers.connection !== 'close'));
          assert.deepEqual(
            replies.map((r) => r.reusedSocket),
            [false, ...Array(9).fill(true)],
          );
          assert.equal(tally.opened, 1);
        } finally {
          agent.destroy();
        }
      });
    });

    test('pipelining: 50 requests in one write get 50 responses in order', async () => {
      await withServer(backend, {}, async (port, tally) => {
        let text = '';
        for (let i = 0; i < 50; i++) {
          if (i % 3 === 0) text += 'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n';
          else if (i % 3 === 1) text += 'GET /json HTTP/1.1\r\nHost: t\r\n\r\n';
          else text += `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${String(i).length + 4}\r\n\r\nreq-${i}`;
        }
        const s = await connectTo({ network: 'tcp', port, path: '' });
        const responses = await rawRequests(s, text, 50);
        assert.equal(responses.length, 50);
        responses.forEach((r, i) => {
          assert.equal(r.status, 200);
          if (i % 3 === 0) assert.equal(r.body, 'Hello, World!');
          else if (i % 3 === 1) assert.equal(r.body, '{"message":"Hello, World!"}');
          else assert.equal(r.body, `req-${i}`);
        });
        const again = await rawRequests(s, 'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n', 1);
        assert.equal(again[0]!.status, 200, 'the connection stays open after the burst');
        s.end();
        await readEnd(s);
        assert.equal(tally.opened, 1);
      });
    });

    test('Connection: close gets its response and then the server closes; pipelined requests after it are dropped', async () => {
      await withServer(backend, {}, async (port) => {
        const { how, responses } = await rawExchange(
          port,
          'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n',
        );
        assert.equal(how, 'eof');
        assert.deepEqual(
          responses.map((r) => [r.status, r.headers.get('connection')]),
          [
            [200, undefined],
            [200, 'close'],
          ],
        );
        const old = await rawExchange(port, 'GET /plaintext HTTP/1.0\r\n\r\n');
        assert.equal(old.how, 'eof');
        assert.equal(old.responses[0]!.headers.get('connection'), 'close');
      });
    });

    test('HTTP/1.0 with Connection: keep-alive stays open and says so', async () => {
      await withServer(backend, {}, async (port) => {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        const [r1] = await rawRequests(s, 'GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 1);
        assert.equal(r1!.headers.get('connection'), 'keep-alive');
        const [r2] = await rawRequests(s, 'GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 1);
        assert.equal(r2!.status, 200);
        s.end();
        await readEnd(s);
      });
    });

    test('a malformed request gets 400 and is closed, while other clients keep being served', async () => {
      await withServer(backend, {}, async (port, tally) => {
        const other = await connectTo({ network: 'tcp', port, path: '' });
        assert.equal((await rawRequests(other, 'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n', 1))[0]!.status, 200);
        for (const bad of [
          'GARBAGE\r\n\r\n',
          'GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n',
          'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
        ]) {
          const { how, responses } = await rawExchange(port, bad);
          assert.equal(how, 'eof');
          assert.equal(responses.length, 1);
          assert.equal(responses[0]!.status, 400);
          assert.equal(responses[0]!.headers.get('connection'), 'close');
        }
        const before = await rawExchange(port, 'GET /json HTTP/1.1\r\nHost: t\r\n\r\nBAD REQUEST\r\n\r\n');
        assert.deepEqual(
          before.responses.map((r) => r.status),
          [200, 400],
          'the good request before the bad one is answered first',
        );
        assert.equal((await rawRequests(other, 'GET /json HTTP/1.1\r\nHost: t\r\n\r\n', 1))[0]!.status, 200);
        assert.equal((await request(port, { path: '/plaintext' })).status, 200);
        other.end();
        await readEnd(other);
        assert.equal(tally.opened, 6);
      });
    });

    test('a head with a bare LF gets 400 at once, before it is complete (it used to wait for 8 KiB, as node:http does not)', async () => {
      // A short headers timeout, so that a parser still waiting for the head's end fails with a 408.
      await withServer(backend, { timeouts: { headersMs: 3000 } }, async (port) => {
        for (const bad of [
          'GET / HTTP/1.1\r\nHost: a\n\r\n',
          'GET / HTTP/1.1\r\nHost: a\nX: b\r\n',
          'GET / HTTP/1.1\n',
          'GET / HTTP/1.1\r\nHost: a\rX',
        ]) {
          const { how, responses } = await rawExchange(port, bad);
          assert.equal(how, 'eof');
          assert.deepEqual(
            responses.map((r) => r.status),
            [400],
            JSON.stringify(bad),
          );
          assert.match(responses[0]!.body, /bare LF|CR not followed by LF/);
        }
      });
    });

    test('Content-Length: 000000000000000000005 is 5 (it used to be a 413; node:http answers 200)', async () => {
      await withServer(backend, {}, async (port) => {
        const { responses } = await rawExchange(
          port,
          'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 000000000000000000005\r\nConnection: close\r\n\r\nhello',
        );
        assert.deepEqual(
          responses.map((r) => [r.status, r.body]),
          [[200, 'hello']],
        );
        const huge = await rawExchange(
          port,
          `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0${'9'.repeat(20)}\r\n\r\n`,
        );
        assert.deepEqual(
          huge.responses.map((r) => r.status),
          [413],
        );
      });
    });

    test('an oversized head gets 431 (the limit is an option)', async () => {
      await withServer(backend, { limits: { maxHeadBytes: 1024 } }, async (port) => {
        const small = await request(port, { path: '/plaintext', headers: { 'x-pad': 'a'.repeat(800) } });
        assert.equal(small.status, 200);
        const big = await request(port, { path: '/plaintext', headers: { 'x-pad': 'a'.repeat(2000) } });
        assert.equal(big.status, 431);
        assert.equal(big.headers.connection, 'close');
        const endless = await rawExchange(port, `GET /plaintext HTTP/1.1\r\nHost: t\r\nX: ${'b'.repeat(4000)}`);
        assert.equal(endless.responses[0]!.status, 431);
        assert.equal((await request(port, { path: '/json' })).status, 200);
      });
    });

    test('an oversized body gets 413, by Content-Length and by chunks (the limit is an option)', async () => {
      await withServer(backend, { limits: { maxBodyBytes: 64 * 1024 } }, async (port) => {
        const fits = Buffer.alloc(64 * 1024, 1);
        assert.equal(
          (await request(port, { path: '/echo', method: 'POST', headers: { 'content-length': fits.length } }, [fits]))
            .body.length,
          fits.length,
        );
        const big = Buffer.alloc(512 * 1024, 2);
        const sized = await request(
          port,
          { path: '/echo', method: 'POST', headers: { 'content-length': big.length } },
          [big],
        );
        assert.equal(sized.status, 413);
        assert.equal(sized.headers.connection, 'close');
        const chunked = await request(port, { path: '/echo', method: 'POST' }, [
          big.subarray(0, 40_000),
          big.subarray(0, 40_000),
        ]);
        assert.equal(chunked.status, 413);
        assert.equal((await request(port, { path: '/plaintext' })).status, 200);
      });
    });

    test('a client still uploading when the 413 is sent, and reading it late, still gets it (lingering close, not RST)', async () => {
      await withServer(backend, { limits: { maxBodyBytes: 64 * 1024 } }, async (port) => {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        s.pause();
        const ended = new Promise<{ error: string | null; data: Buffer }>((resolve) => {
          const chunks: Buffer[] = [];
          let error: string | null = null;
          s.on('data', (d: Buffer) => chunks.push(d));
          s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
          s.once('close', () => resolve({ error, data: Buffer.concat(chunks) }));
        });
        s.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n');
        s.write(Buffer.alloc(2_000_000, 3));
        await sleep(150);
        s.resume();
        const { error, data } = await ended;
        const [response] = parseResponses(data).responses;
        assert.equal(response?.status, 413, `got ${error ?? 'no error'} and ${data.length} bytes`);
      });
    });

    test('after an error the server half-closes at once, and closes by itself at the 2 s linger deadline if the client never does', async () => {
      await withServer(backend, {}, async (port, tally) => {
        const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        const ended = readEnd(s);
        s.write('NOT HTTP\r\n\r\n');
        const { how, data } = await ended;
        assert.equal(how, 'eof', 'FIN right after the response');
        assert.equal(parseResponses(data).responses[0]?.status, 400);
        const endedAt = Date.now();
        await waitFor(() => tally.closed === 1, 'the server to close the lingering connection', 10_000);
        assert.ok(Date.now() - endedAt >= 1500, 'it lingered about 2 s first');
        s.destroy();
      });
    });

    test('Expect: 100-continue gets an interim 100 before the body is sent', async () => {
      await withServer(backend, {}, async (port) => {
        const reply = await new Promise<{ continued: boolean; body: string }>((resolve, reject) => {
          let continued = false;
          const req = http.request({
            host: '127.0.0.1',
            port,
            agent: false,
            path: '/echo',
            method: 'POST',
            headers: { expect: '100-continue', 'content-length': 5 },
          });
          req.once('continue', () => {
            continued = true;
            req.end('hello');
          });
          req.once('response', (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.once('end', () => resolve({ continued, body: Buffer.concat(parts).toString() }));
          });
          req.once('error', reject);
          req.flushHeaders();
        });
        assert.deepEqual(reply, { continued: true, body: 'hello' });
      });
    });
  });
}

if ((await backendsUnderTest()).includes('native')) {
  test('two loops (module form, native): connections on both loops are answered with a current Date', async () => {
    const fds = openFdCount();
    const port = await freePort();
    const ac = new AbortController();
    const events = new URL('../examples/http/events.js?loops=2&quiet=1', import.meta.url);
    const done = serve(events, { backend: 'native', signal: ac.signal }, `tcp://127.0.0.1:${port}`);
    try {
      const started = Date.now();
      while ((await connectOutcome(port)) !== 'connected') {
        assert.ok(Date.now() - started < 5000, 'the server listens within 5 s');
        await sleep(10);
      }
      const replies = await Promise.all(
        Array.from({ length: 8 }, (_, i) => request(port, { path: i % 2 ? '/json' : '/plaintext' })),
      );
      for (const r of replies) {
        assert.equal(r.status, 200);
        checkDate(r.headers.date);
      }
    } finally {
      ac.abort();
      await done;
    }
    await waitFor(() => openFdCount() <= fds, `fds back to ${fds} (now ${openFdCount()})`);
  });
}
