/**
 * The examples with --tls-cert and --tls-key: `npm start` is a TLS echo server (a node:tls client
 * checking the host name gets its bytes back), `npm run http` serves HTTPS with ALPN http/1.1 on
 * both backends (curl --cacert gets /plaintext); one flag without the other is refused, naming it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { backendsUnderTest, within } from './helpers.js';
import { curlMissing, fixtureFiles, opensslMissing, tlsFixtures } from './tls-fixtures.js';

const kEcho = fileURLToPath(new URL('../examples/echo/main.js', import.meta.url));
const kHttp = fileURLToPath(new URL('../examples/http/main.js', import.meta.url));

/** Starts an example, reads the port from its first line, and runs `use(port)`; the child is stopped after. */
async function withExample(main: string, args: string[], use: (port: number) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = once(child, 'exit');
  try {
    const lines = createInterface({ input: child.stdout });
    const [banner] = (await within(once(lines, 'line'), 15_000, `the banner (stderr: ${stderr})`)) as [string];
    lines.close();
    const port = Number(/port (\d+)/.exec(banner)?.[1]);
    assert.ok(port > 0, banner);
    await use(port);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

test('npm start -- --tls-cert F --tls-key F: a TLS echo server', { skip: opensslMissing }, async () => {
  const f = tlsFixtures();
  const files = fixtureFiles({ 'cert.pem': f.serverCert, 'key.pem': f.serverKey });
  try {
    const args = ['--port', '0', '--backend', 'portable', '--tls-cert', files.paths['cert.pem']!];
    await withExample(kEcho, [...args, '--tls-key', files.paths['key.pem']!], async (port) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: f.caCert });
      await once(s, 'secureConnect');
      s.write('over tls');
      const [back] = (await once(s, 'data')) as [Buffer];
      assert.equal(back.toString(), 'over tls');
      s.end();
      await once(s, 'close');
    });
  } finally {
    files.remove();
  }
});

for (const backend of await backendsUnderTest())
  test(
    `npm run http -- --backend ${backend} --tls-cert F --tls-key F: HTTPS with ALPN http/1.1 for curl`,
    { skip: curlMissing || opensslMissing },
    async () => {
      const f = tlsFixtures();
      const files = fixtureFiles({ 'cert.pem': f.serverCert, 'key.pem': f.serverKey, 'ca.pem': f.caCert });
      try {
        const args = ['--port', '0', '--backend', backend, '--tls-cert', files.paths['cert.pem']!];
        await withExample(kHttp, [...args, '--tls-key', files.paths['key.pem']!], async (port) => {
          const curl = spawn('curl', [
            '-sS',
            '-w',
            ' %{http_version}',
            '--cacert',
            files.paths['ca.pem']!,
            '--resolve',
            `localhost:${port}:127.0.0.1`,
            `https://localhost:${port}/plaintext`,
          ]);
          let out = '';
          let err = '';
          curl.stdout.on('data', (b: Buffer) => (out += b.toString()));
          curl.stderr.on('data', (b: Buffer) => (err += b.toString()));
          const [code] = (await within(once(curl, 'exit'), 30_000, 'curl')) as [number];
          assert.equal(code, 0, err);
          assert.equal(out, 'Hello, World! 1.1');
        });
      } finally {
        files.remove();
      }
    },
  );

test('--tls-cert without --tls-key is refused naming it', async () => {
  const child = spawn(process.execPath, [kEcho, '--port', '0', '--tls-cert', '/nonexistent.pem'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 2);
  assert.match(stderr, /echo: --tls-cert and --tls-key go together/);
});
