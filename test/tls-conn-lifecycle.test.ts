/**
 * A TLS connection's life after its handshake, on both backends (key and cert only, which the
 * native layer runs):
 * - c.end() sends close_notify and the client reads its end after the reply; the client's own end
 *   (close_notify) reaches the server as the end of input, and `closed` follows;
 * - an idle TLS connection is closed at waitTimeout like a plain one;
 * - 8 MiB written to a client that does not read waits in the server (backpressure) and then
 *   arrives byte-exact once it reads;
 * - openssl s_client gets a verified certificate and its echo;
 * - native: after a failed handshake on the main thread, node:crypto and a node:https request
 *   still work (the layer leaves OpenSSL's per-thread error queue empty).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { request as httpsRequest, createServer as httpsServer } from 'node:https';
import { connect as netConnect } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Conn, Events } from '../src/index.js';
import { backendsUnderTest, openFdCount, assertNoFdLeak, startServer, waitFor, within } from './helpers.js';
import { fixtureFiles, opensslMissing, tlsFixtures, type TlsFixtures } from './tls-fixtures.js';

const skip = opensslMissing;
const kBackends = await backendsUnderTest();

function client(f: TlsFixtures, port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: f.caCert }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Everything `s` sends until its end, and how it ended. */
function readAll(s: TLSSocket): Promise<{ how: string; data: Buffer }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.once('end', () => resolve({ how: 'eof', data: Buffer.concat(parts) }));
    s.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ how: err.code ?? err.message, data: Buffer.concat(parts) }),
    );
  });
}

function closed(s: TLSSocket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

for (const backend of kBackends) {
  test(
    `${backend}: c.end() sends the reply then close_notify; the client's end reaches the server`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const fds = openFdCount();
      const log: string[] = [];
      const events: Events = {
        data(c: Conn, input) {
          const text = Buffer.from(input.bytes()).toString();
          input.retrieveAll();
          if (text === 'bye') {
            c.send('see you');
            c.end();
          }
          return text === 'bye' ? undefined : text.toUpperCase();
        },
        closed(_c, err) {
          log.push(`closed ${err === null ? 'clean' : String(err)}`);
        },
      };
      const run = await startServer(
        events,
        { backend, tls: { key: f.serverKey, cert: f.serverCert } },
        'tls://127.0.0.1:0',
      );
      try {
        assert.equal(run.server.backend, backend);
        const port = run.server.addrs[0]!.port;
        const a = await client(f, port);
        const endA = readAll(a);
        a.write('bye');
        const got = await within(endA, 10_000, 'the server ending');
        assert.equal(got.how, 'eof');
        assert.equal(got.data.toString(), 'see you');
        a.end();
        await closed(a);
        const b = await client(f, port);
        const endB = readAll(b);
        b.write('hi');
        b.end();
        const gotB = await within(endB, 10_000, 'the server closing after the client ended');
        assert.equal(gotB.data.toString(), 'HI');
        await closed(b);
        await waitFor(() => log.length === 2, 'both closed');
        assert.deepEqual(log, ['closed clean', 'closed clean']);
      } finally {
        await run.stop();
      }
      assertNoFdLeak(fds);
    },
  );

  test(`${backend}: an idle TLS connection is closed at waitTimeout`, { skip }, async () => {
    const f = tlsFixtures();
    const errs: (Error | null)[] = [];
    const run = await startServer(
      { closed: (_c, err) => void errs.push(err) },
      { backend, waitTimeout: 200, tls: { key: f.serverKey, cert: f.serverCert } },
      'tls://127.0.0.1:0',
    );
    try {
      const s = await client(f, run.server.addrs[0]!.port);
      const t0 = performance.now();
      const end = await within(readAll(s), 10_000, 'the idle close');
      assert.ok(end.how === 'eof' || end.how === 'ECONNRESET', end.how);
      assert.ok(performance.now() - t0 >= 150, 'not before the timeout');
      await waitFor(() => errs.length === 1, 'closed');
      assert.match(String(errs[0]), /idle/i);
      s.destroy();
      await closed(s);
    } finally {
      await run.stop();
    }
  });

  test(`${backend}: 8 MiB to a client that does not read waits, then arrives byte-exact`, { skip }, async () => {
    const f = tlsFixtures();
    const big = randomBytes(8 << 20);
    const run = await startServer(
      { opened: () => big },
      { backend, tls: { key: f.serverKey, cert: f.serverCert } },
      'tls://127.0.0.1:0',
    );
    try {
      const s = await client(f, run.server.addrs[0]!.port);
      s.pause();
      await new Promise((r) => setTimeout(r, 300));
      const parts: Buffer[] = [];
      let n = 0;
      await within(
        new Promise<void>((resolve) => {
          s.on('data', (b: Buffer) => {
            parts.push(b);
            n += b.length;
            if (n >= big.length) resolve();
          });
          s.resume();
        }),
        30_000,
        'all 8 MiB',
      );
      const got = Buffer.concat(parts);
      assert.equal(got.length, big.length);
      assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(big).digest('hex'));
      s.end();
      await closed(s);
    } finally {
      await run.stop();
    }
  });

  test(`${backend}: openssl s_client verifies the certificate and gets its echo`, { skip }, async () => {
    const f = tlsFixtures();
    const files = fixtureFiles({ 'ca.pem': f.caCert });
    const run = await startServer(
      {
        data(_c, input) {
          const out = Buffer.from(input.bytes());
          input.retrieveAll();
          return out;
        },
      },
      { backend, tls: { key: f.serverKey, cert: f.serverCert } },
      'tls://127.0.0.1:0',
    );
    try {
      const port = run.server.addrs[0]!.port;
      const out = await within(
        new Promise<string>((resolve, reject) => {
          const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', files.paths['ca.pem']!];
          const p = spawn('openssl', [...args, '-servername', 'localhost'], { stdio: ['pipe', 'pipe', 'pipe'] });
          p.stdin.on('error', () => undefined);
          let text = '';
          let sent = false;
          p.stdout.on('data', (b: Buffer) => {
            text += b.toString();
            if (!sent && /Verify return code/.test(text) && text.includes('---\n')) {
              sent = true;
              p.stdin.write('ping-native\n');
            }
            if (sent && text.lastIndexOf('ping-native') > text.indexOf('Verify return code')) p.stdin.end();
          });
          p.stderr.on('data', (b: Buffer) => (text += b.toString()));
          p.on('error', reject);
          p.on('close', () => resolve(text));
        }),
        30_000,
        'openssl s_client',
      );
      assert.match(out, /Verify return code: 0 \(ok\)/);
      assert.match(out, /TLSv1\.3/);
      assert.ok(out.lastIndexOf('ping-native') > out.indexOf('Verify return code'), out);
    } finally {
      await run.stop();
      files.remove();
    }
  });
}

test(
  'native: after a failed handshake on the main thread, node:crypto and node:https still work',
  { skip: skip || (kBackends.includes('native') ? false : 'the native backend is not built here') },
  async () => {
    const f = tlsFixtures();
    const errors: Error[] = [];
    const run = await startServer(
      {},
      { backend: 'native', tls: { key: f.serverKey, cert: f.serverCert }, onError: (e) => errors.push(e) },
      'tls://127.0.0.1:0',
    );
    const https = httpsServer({ key: f.serverKey, cert: f.serverCert }, (_req, res) => res.end('fine'));
    try {
      const raw = netConnect(run.server.addrs[0]!.port, '127.0.0.1');
      raw.on('error', () => undefined);
      raw.write(Buffer.from(randomBytes(64).fill(0x42, 0, 1)));
      await waitFor(() => errors.length > 0, 'the failed handshake');
      raw.destroy();
      assert.equal(createPrivateKey(f.serverKey).asymmetricKeyType, 'ec');
      await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
      const port = (https.address() as { port: number }).port;
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, servername: 'localhost', ca: f.caCert, path: '/' },
          (res) => {
            let b = '';
            res.on('data', (d: Buffer) => (b += d.toString()));
            res.on('end', () => resolve(b));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, 'fine');
    } finally {
      await new Promise((r) => https.close(r));
      await run.stop();
    }
  },
);
