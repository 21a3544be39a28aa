/**
 * Which backend runs TLS. On backend 'auto', a tls:// server whose options the native layer runs
 * (key, cert and alpn) is native; one with any other option (sni, requestCert,
 * sessionTimeout, ...) runs on the portable backend, and the process is warned once (GEVENT_TLS_PORTABLE), naming
 * the option, however many such servers start. Backend 'native' with such an option is refused
 * naming it; numLoops > 1 with TLS is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendUnavailableError, listen } from '../src/index.js';
import { backendsUnderTest } from './helpers.js';
import { opensslMissing, tlsFixtures } from './tls-fixtures.js';

test(
  'backend auto with a tls:// address: native for key, cert and alpn, portable with one GEVENT_TLS_PORTABLE warning otherwise',
  { skip: opensslMissing },
  async (t) => {
    if (!(await backendsUnderTest()).includes('native'))
      return t.skip('the native backend is not built here, so auto is portable anyway');
    const f = tlsFixtures();
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if ((w as { code?: string }).code === 'GEVENT_TLS_PORTABLE') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const plainTls = { key: f.serverKey, cert: f.serverCert };
      const n = await listen({}, { tls: plainTls }, 'tls://127.0.0.1:0');
      assert.equal(n.backend, 'native');
      await n.shutdown();
      const h = await listen({}, { tls: { ...plainTls, alpn: ['h2', 'http/1.1'] } }, 'tls://127.0.0.1:0');
      assert.equal(h.backend, 'native');
      await h.shutdown();
      const a = await listen({}, { tls: { ...plainTls, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } }, 'tls://127.0.0.1:0');
      const b = await listen(
        {},
        { tls: { ...plainTls, sessionTimeout: 60 } },
        'tls://127.0.0.1:0',
        'tcp://127.0.0.1:0',
      );
      assert.equal(a.backend, 'portable');
      assert.equal(b.backend, 'portable');
      await a.shutdown();
      await b.shutdown();
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /tls:\/\/127\.0\.0\.1:0: options\.tls\.ciphers is set/);
    } finally {
      process.off('warning', onWarning);
    }
  },
);

test('backend native with an option the native TLS layer does not run is refused, naming it', async () => {
  const tls = { key: 'k', cert: 'c' };
  for (const [extra, name] of [
    [{ sni: { 'a.test': tls } }, 'sni'],
    [{ requestCert: true }, 'requestCert'],
    [{ passphrase: 'x' }, 'passphrase'],
    [{ minVersion: 'TLSv1.3' as const }, 'minVersion'],
    [{ ticketKeys: Buffer.alloc(48) }, 'ticketKeys'],
    [{ sessionTimeout: 60 }, 'sessionTimeout'],
  ] as const) {
    await assert.rejects(
      listen({}, { backend: 'native', tls: { ...tls, ...extra } }, 'tls://127.0.0.1:0'),
      (err: unknown) =>
        err instanceof BackendUnavailableError &&
        err.message.includes(`options.tls.${name} is set`) &&
        /portable backend/.test(err.message),
    );
  }
});

test('numLoops > 1 with a tls:// address is refused: TLS servers run one loop', async () => {
  await assert.rejects(
    listen({ numLoops: 2 }, { tls: { key: 'k', cert: 'c' } }, 'tls://127.0.0.1:0'),
    (err: unknown) => err instanceof BackendUnavailableError && /numLoops 2 with tls:\/\//.test(err.message),
  );
});
