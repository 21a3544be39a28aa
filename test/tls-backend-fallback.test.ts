/**
 * Which backend runs TLS: a server with a tls:// address on backend 'auto' runs on the portable
 * backend, and the process is warned once (GEVENT_TLS_PORTABLE) however many such servers start,
 * where the native backend would otherwise have run; numLoops > 1 with TLS is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendUnavailableError, listen } from '../src/index.js';
import { backendsUnderTest } from './helpers.js';
import { opensslMissing, tlsFixtures } from './tls-fixtures.js';

test(
  'backend auto with a tls:// address: portable, one GEVENT_TLS_PORTABLE warning for two servers',
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
      const tls = { key: f.serverKey, cert: f.serverCert };
      const a = await listen({}, { tls }, 'tls://127.0.0.1:0');
      const b = await listen({}, { tls }, 'tls://127.0.0.1:0', 'tcp://127.0.0.1:0');
      assert.equal(a.backend, 'portable');
      assert.equal(b.backend, 'portable');
      await a.shutdown();
      await b.shutdown();
      const plain = await listen({}, {}, 'tcp://127.0.0.1:0');
      assert.equal(plain.backend, 'native');
      await plain.shutdown();
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /tls:\/\/127\.0\.0\.1:0 needs TLS/);
    } finally {
      process.off('warning', onWarning);
    }
  },
);

test('numLoops > 1 with a tls:// address is refused: the portable backend runs one loop', async () => {
  await assert.rejects(
    listen({ numLoops: 2 }, { tls: { key: 'k', cert: 'c' } }, 'tls://127.0.0.1:0'),
    (err: unknown) => err instanceof BackendUnavailableError && /numLoops 2 with tls:\/\//.test(err.message),
  );
});
