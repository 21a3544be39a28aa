/**
 * TLS listeners against real clients (skipped when the binary is missing):
 * - `openssl s_client` with -alpn and -servername, on both backends: the certificate verifies, the
 *   ALPN protocol is agreed, the echo comes back; -sess_out then -sess_in resumes the session
 *   ("Reused");
 * - `curl --cacert` to a tiny HTTPS reply server, on both backends: the body arrives, over ALPN
 *   http/1.1;
 * - renegotiation: s_client -tls1_2 asking for one ('R') gets a no_renegotiation refusal, and the
 *   server's connection closes with the error in `closed`;
 * - a server that requires client certificates: s_client with -cert/-key is authorized, without one
 *   it gets an alert and onError a TlsHandshakeError.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { TlsHandshakeError } from '../src/index.js';
import { backendsUnderTest, startServer, waitFor, within, type Running } from './helpers.js';
import { curlMissing, fixtureFiles, opensslMissing, tlsFixtures } from './tls-fixtures.js';

/** The backends a TLS listener with key, cert and alpn runs on. */
const kBackends = await backendsUnderTest();

/** A gevent TLS echo server with ALPN http/1.1 and the test certificates (portable unless asked). */
async function echoServer(backend: 'portable' | 'native' = 'portable'): Promise<Running> {
  const f = tlsFixtures();
  return startServer(
    {
      data(_c, input) {
        const out = Buffer.from(input.bytes());
        input.retrieveAll();
        return out;
      },
    },
    { backend, tls: { key: f.serverKey, cert: f.serverCert, alpn: ['http/1.1'] } },
    'tls://127.0.0.1:0',
  );
}

/**
 * Runs `openssl s_client` with `args`, sends `line`, and closes its input once the echo is back
 * (after TLS 1.3's session tickets, which come before it); resolves with everything it printed.
 */
function sClient(port: number, args: string[], line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // The client may exit (a refused handshake) before its input is written.
    p.stdin.on('error', () => undefined);
    let out = '';
    let sent = false;
    const onOut = (b: Buffer): void => {
      out += b.toString();
      if (!sent && out.includes('---\n') && /Verify return code/.test(out)) {
        sent = true;
        p.stdin.write(`${line}\n`);
      }
      if (sent && out.split(line).length > 1 && out.lastIndexOf(line) > out.indexOf('Verify return code'))
        p.stdin.end();
    };
    p.stdout.on('data', onOut);
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('close', () => resolve(out));
  });
}

for (const backend of kBackends)
  test(
    `${backend}: openssl s_client: SNI, ALPN, a verified certificate, the echo, and a resumed session`,
    { skip: opensslMissing },
    async () => {
      const f = tlsFixtures();
      const files = fixtureFiles({ 'ca.pem': f.caCert, 'sess.pem': '' });
      const run = await echoServer(backend);
      try {
        assert.equal(run.server.backend, backend);
        const port = run.server.addrs[0]!.port;
        const common = ['-CAfile', files.paths['ca.pem']!, '-servername', 'localhost', '-alpn', 'http/1.1'];
        const first = await within(
          sClient(port, [...common, '-sess_out', files.paths['sess.pem']!], 'ping-1'),
          30_000,
          'openssl s_client',
        );
        assert.match(first, /Verify return code: 0 \(ok\)/);
        assert.match(first, /ALPN protocol: http\/1\.1/);
        assert.match(first, /New, TLSv1\.3/);
        assert.match(first.slice(first.indexOf('Verify return code')), /ping-1\n/);
        const second = await within(
          sClient(port, [...common, '-sess_in', files.paths['sess.pem']!], 'ping-2'),
          30_000,
          'openssl s_client -sess_in',
        );
        assert.match(second, /Reused, TLSv1\.3/);
      } finally {
        await run.stop();
        files.remove();
      }
    },
  );

for (const backend of kBackends)
  test(
    `${backend}: curl --cacert gets a reply from an HTTPS server over ALPN http/1.1`,
    { skip: curlMissing || opensslMissing },
    async () => {
      const f = tlsFixtures();
      const files = fixtureFiles({ 'ca.pem': f.caCert });
      let alpn: string | null | undefined;
      const run = await startServer(
        {
          data(c, input) {
            if (input.indexOf(Buffer.from('\r\n\r\n')) < 0) return null;
            input.retrieveAll();
            alpn = c.tls?.alpnProtocol;
            c.send('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n');
            c.close();
            return null;
          },
        },
        { backend, tls: { key: f.serverKey, cert: f.serverCert, alpn: ['http/1.1'] } },
        'tls://127.0.0.1:0',
      );
      try {
        assert.equal(run.server.backend, backend);
        const port = run.server.addrs[0]!.port;
        const out = await within(
          new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
            const p = spawn('curl', [
              '-sS',
              '--http1.1',
              '--cacert',
              files.paths['ca.pem']!,
              '--resolve',
              `localhost:${port}:127.0.0.1`,
              `https://localhost:${port}/`,
            ]);
            let stdout = '';
            let stderr = '';
            p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
            p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
            p.on('error', reject);
            p.on('close', (code) => resolve({ code, stdout, stderr }));
          }),
          30_000,
          'curl',
        );
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, 'hello\n');
        assert.equal(alpn, 'http/1.1');
      } finally {
        await run.stop();
        files.remove();
      }
    },
  );

test(
  'openssl s_client with a client certificate: authorized; without one: refused and reported',
  { skip: opensslMissing },
  async () => {
    const f = tlsFixtures();
    const files = fixtureFiles({ 'ca.pem': f.caCert, 'client.pem': f.clientCert, 'client.key': f.clientKey });
    const subjects: (string | null)[] = [];
    const errors: Error[] = [];
    const run = await startServer(
      {
        opened(c) {
          subjects.push(c.tls!.authorized ? (c.tls!.peerCertificate?.subject ?? null) : null);
        },
        data(_c, input) {
          const out = Buffer.from(input.bytes());
          input.retrieveAll();
          return out;
        },
      },
      {
        backend: 'portable',
        tls: { key: f.serverKey, cert: f.serverCert, requestCert: true, ca: f.caCert },
        onError: (err) => errors.push(err),
      },
      'tls://127.0.0.1:0',
    );
    try {
      const port = run.server.addrs[0]!.port;
      const common = ['-CAfile', files.paths['ca.pem']!, '-servername', 'localhost'];
      const withCert = await within(
        sClient(port, [...common, '-cert', files.paths['client.pem']!, '-key', files.paths['client.key']!], 'mtls'),
        30_000,
        'openssl s_client -cert',
      );
      assert.match(withCert.slice(withCert.indexOf('Verify return code')), /mtls\n/);
      assert.deepEqual(subjects.length, 1);
      assert.match(subjects[0]!, /CN=gevent client/);
      const without = await within(sClient(port, common, 'no-cert'), 30_000, 'openssl s_client without -cert');
      assert.match(without, /alert|certificate required/i);
      await waitFor(() => errors.length > 0, 'onError');
      assert.ok(errors[0] instanceof TlsHandshakeError, String(errors[0]));
      assert.equal(subjects.length, 1);
    } finally {
      await run.stop();
      files.remove();
    }
  },
);

test(
  'openssl s_client -tls1_2 asking to renegotiate is refused; the connection closes with the error',
  { skip: opensslMissing },
  async () => {
    const f = tlsFixtures();
    const files = fixtureFiles({ 'ca.pem': f.caCert });
    const protocols: string[] = [];
    const closedWith: (Error | null)[] = [];
    const run = await startServer(
      {
        opened: (c) => void protocols.push(c.tls!.protocol),
        closed: (_c, err) => void closedWith.push(err),
      },
      { backend: 'portable', tls: { key: f.serverKey, cert: f.serverCert } },
      'tls://127.0.0.1:0',
    );
    try {
      const port = run.server.addrs[0]!.port;
      const out = await within(
        new Promise<string>((resolve, reject) => {
          const p = spawn('openssl', [
            's_client',
            '-tls1_2',
            '-connect',
            `127.0.0.1:${port}`,
            '-CAfile',
            files.paths['ca.pem']!,
            '-servername',
            'localhost',
          ]);
          let text = '';
          let asked = false;
          const onText = (b: Buffer): void => {
            text += b.toString();
            if (!asked && /Verify return code(.|\n)*---\n/.test(text)) {
              asked = true;
              p.stdin.write('R\n');
            }
          };
          p.stdout.on('data', onText);
          p.stderr.on('data', onText);
          p.on('error', reject);
          p.on('close', () => resolve(text));
        }),
        30_000,
        'openssl s_client -tls1_2 renegotiating',
      );
      assert.match(out, /RENEGOTIATING/);
      assert.match(out, /no renegotiation/);
      await waitFor(() => closedWith.length === 1, 'the server side closing');
      assert.deepEqual(protocols, ['TLSv1.2']);
      assert.ok(closedWith[0] instanceof Error, String(closedWith[0]));
    } finally {
      await run.stop();
      files.remove();
    }
  },
);
