/**
 * TLS dials (`tls://` targets) on the portable backend, against a gevent TLS echo server:
 * - SNI and the host name check against a given CA: a 1 MiB echo byte-exact; c.tls on the dialled
 *   side (protocol, ALPN, servername, authorized, the server's certificate);
 * - session reuse: c.tls.session of one connection resumes the next (c.tls.resumed);
 * - a servername the certificate does not name, or the system CAs for a private CA: the dial
 *   rejects with TlsHandshakeError and a code; rejectUnauthorized false opens it unverified;
 * - TLS options on a tcp:// target are refused; a client key that does not match its certificate
 *   is a TlsConfigError; the native backend refuses tls:// dials.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, test } from 'node:test';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  listen,
  TlsConfigError,
  TlsHandshakeError,
  type Conn,
  type DialOptions,
  type Events,
  type Server,
} from '../src/index.js';
import { backendsUnderTest, waitFor } from './helpers.js';
import { opensslMissing, tlsFixtures, type TlsFixtures } from './tls-fixtures.js';

const kMiB = 1 << 20;
const skip = opensslMissing;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => {});
});

/** A gevent TLS echo server (ALPN http/1.1), stopped after the test; resolves with its port. */
async function tlsEchoServer(f: TlsFixtures): Promise<number> {
  const server = await listen(
    {
      data(_c, input) {
        const out = Buffer.from(input.bytes());
        input.retrieveAll();
        return out;
      },
    },
    { backend: 'portable', tls: { key: f.serverKey, cert: f.serverCert, alpn: ['http/1.1'] } },
    'tls://127.0.0.1:0',
  );
  cleanups.push(() => server.shutdown());
  return server.addrs[0]!.port;
}

/** The dialling side: a server with no listener whose outbound connections collect their input. */
async function dialer(backend: 'portable' | 'native' = 'portable'): Promise<{
  server: Server;
  dial(target: string, o?: DialOptions): Promise<Conn>;
  input: Map<Conn, Buffer[]>;
}> {
  const input = new Map<Conn, Buffer[]>();
  let dial!: (target: string, o?: DialOptions) => Promise<Conn>;
  const events: Events = {
    init(loop) {
      dial = (t, o) => loop.dial(t, o);
    },
    data(c, rb) {
      const list = input.get(c) ?? [];
      list.push(Buffer.from(rb.bytes()));
      input.set(c, list);
      rb.retrieveAll();
    },
  };
  const server = await listen(events, { backend });
  cleanups.push(() => server.shutdown());
  return { server, dial: (t, o) => dial(t, o), input };
}

function received(input: Map<Conn, Buffer[]>, c: Conn): number {
  return (input.get(c) ?? []).reduce((n, b) => n + b.length, 0);
}

test(
  'a tls:// dial with SNI and a host name check echoes 1 MiB byte-exact; c.tls describes the server',
  { skip },
  async () => {
    const f = tlsFixtures();
    const port = await tlsEchoServer(f);
    const d = await dialer();
    const c = await d.dial(`tls://localhost:${port}`, { ca: f.caCert, alpn: ['http/1.1'] });
    assert.equal(c.outbound, true);
    const t = c.tls!;
    assert.equal(t.protocol, 'TLSv1.3');
    assert.equal(t.alpnProtocol, 'http/1.1');
    assert.equal(t.servername, 'localhost');
    assert.equal(t.authorized, true);
    assert.equal(t.authorizationError, null);
    assert.match(t.peerCertificate!.subject, /CN=localhost/);
    const big = randomBytes(kMiB);
    c.send(big);
    await waitFor(() => received(d.input, c) === kMiB, '1 MiB back', 30_000);
    assert.ok(Buffer.concat(d.input.get(c)!).equals(big));
    c.close();
  },
);

test('a session from one connection resumes the next', { skip }, async () => {
  const f = tlsFixtures();
  const port = await tlsEchoServer(f);
  const d = await dialer();
  const first = await d.dial(`tls://localhost:${port}`, { ca: f.caCert });
  assert.equal(first.tls!.resumed, false);
  first.send('x');
  // TLS 1.3 sends its tickets after the handshake: by the echo they have arrived.
  await waitFor(() => received(d.input, first) === 1 && first.tls!.session !== null, 'the echo and a session');
  const session = first.tls!.session!;
  first.close();
  const second = await d.dial(`tls://localhost:${port}`, { ca: f.caCert, session });
  assert.equal(second.tls!.resumed, true);
  second.close();
});

test(
  'a servername the certificate does not name: TlsHandshakeError ERR_TLS_CERT_ALTNAME_INVALID',
  { skip },
  async () => {
    const f = tlsFixtures();
    const port = await tlsEchoServer(f);
    const d = await dialer();
    await assert.rejects(d.dial(`tls://127.0.0.1:${port}`, { ca: f.caCert, servername: 'wrong.test' }), (err) => {
      assert.ok(err instanceof TlsHandshakeError, String(err));
      assert.equal(err.code, 'ERR_GEVENT_TLS_HANDSHAKE');
      assert.equal(err.reason, 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.equal(err.address, `tls://127.0.0.1:${port}`);
      assert.equal(err.count, 1);
      return true;
    });
    assert.equal(d.server.stats().connections, 0);
  },
);

test(
  'the system CAs do not know a private CA: the dial is refused, or opens unverified when asked',
  { skip },
  async () => {
    const f = tlsFixtures();
    const port = await tlsEchoServer(f);
    const d = await dialer();
    await assert.rejects(d.dial(`tls://localhost:${port}`), (err) => {
      assert.ok(err instanceof TlsHandshakeError, String(err));
      assert.match(err.reason, /UNABLE_TO|SELF_SIGNED|ISSUER/);
      return true;
    });
    const c = await d.dial(`tls://localhost:${port}`, { rejectUnauthorized: false });
    assert.equal(c.tls!.authorized, false);
    assert.match(c.tls!.authorizationError!, /UNABLE_TO|SELF_SIGNED|ISSUER/);
    c.close();
  },
);

test('a client certificate reaches a server that requires one', { skip }, async () => {
  const f = tlsFixtures();
  let subject: string | null = null;
  const server = await listen(
    { opened: (c) => void (subject = c.tls!.peerCertificate?.subject ?? null) },
    { backend: 'portable', tls: { key: f.serverKey, cert: f.serverCert, requestCert: true, ca: f.caCert } },
    'tls://127.0.0.1:0',
  );
  cleanups.push(() => server.shutdown());
  const d = await dialer();
  const c = await d.dial(`tls://localhost:${server.addrs[0]!.port}`, {
    ca: f.caCert,
    cert: f.clientCert,
    key: f.clientKey,
  });
  await waitFor(() => subject !== null, 'the server opening');
  assert.match(subject!, /CN=gevent client/);
  c.close();
});

test('TLS options on a tcp:// target are refused; so are bad ones on a tls:// target', async () => {
  const d = await dialer();
  await assert.rejects(
    d.dial('tcp://127.0.0.1:1', { servername: 'x' }),
    (err) => err instanceof InvalidArgumentError && /servername.*tls:\/\/ target only/.test(err.message),
  );
  await assert.rejects(
    d.dial('tls://127.0.0.1:1', { alpn: [] }),
    (err) => err instanceof InvalidArgumentError && /dial option alpn/.test(err.message),
  );
  await assert.rejects(
    d.dial('tls://127.0.0.1:1', { cert: 'x' }),
    (err) => err instanceof InvalidArgumentError && /dial option key/.test(err.message),
  );
});

test('the native backend refuses tls:// dials', async (t) => {
  if (!(await backendsUnderTest()).includes('native')) return t.skip('the native backend is not built here');
  const d = await dialer('native');
  await assert.rejects(
    d.dial('tls://127.0.0.1:1'),
    (err) => err instanceof BackendUnavailableError && /portable backend/.test(err.message),
  );
});

test('a client key that does not match its certificate rejects the dial with TlsConfigError', { skip }, async () => {
  const f = tlsFixtures();
  const port = await tlsEchoServer(f);
  const d = await dialer();
  await assert.rejects(
    d.dial(`tls://localhost:${port}`, { ca: f.caCert, cert: f.clientCert, key: f.strayKey }),
    (err) => err instanceof TlsConfigError && err.code === 'ERR_GEVENT_TLS_CONFIG' && /MISMATCH/.test(err.reason),
  );
});
