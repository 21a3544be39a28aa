/**
 * TLS listeners (`tls://`) with node:tls clients that check the host name, on both backends where
 * the native layer runs the options (key, cert, alpn, handshakeTimeout), on the portable one
 * otherwise:
 * - an echo is byte-exact up to 1 MiB; `opened` runs after the handshake; c.tls gives protocol,
 *   cipher, ALPN, server name, resumed, authorized and the peer certificate (portable);
 *   server.addrs say tls://;
 * - ALPN: the server's preference among the protocols the client offers; null when it offers none;
 * - a client certificate with requestCert: authorized, peerCertificate's subject; none when one is
 *   required: refused, TlsHandshakeError, never `opened`;
 * - SNI picks the certificate for the name asked for, the default one otherwise;
 * - failures never reach `opened` and are reported to onError as TlsHandshakeError with a code:
 *   plain HTTP to the TLS port (counted in stats().tlsRefused), garbage, a client that leaves
 *   mid-handshake, no common ALPN protocol (ERR_SSL_NO_APPLICATION_PROTOCOL on both sides);
 * - a handshake fed one byte at a time completes and echoes; a silent client ends at handshakeTimeout;
 * - stop() ends a handshake still under way; no fd is left open;
 * - a key that does not match its certificate, or a certificate that is not PEM, rejects listen()
 *   with TlsConfigError naming the option; bad options name the field.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import {
  BackendUnavailableError,
  InvalidArgumentError,
  listen,
  TlsConfigError,
  TlsHandshakeError,
  type Conn,
  type Events,
  type ServeOptions,
  type TlsInfo,
} from '../src/index.js';
import {
  assertNoFdLeak,
  backendsUnderTest,
  openFdCount,
  readEnd,
  startServer,
  waitFor,
  within,
  type Running,
} from './helpers.js';
import { opensslMissing, tlsFixtures, type TlsFixtures } from './tls-fixtures.js';

const kMiB = 1 << 20;

interface Seen {
  opened: { tls: TlsInfo | null; subject: string | null }[];
  errors: Error[];
}

const echo: Events['data'] = (_c, input) => {
  const out = Buffer.from(input.bytes());
  input.retrieveAll();
  return out;
};

type BackendName = 'portable' | 'native';

/** The backends a TLS listener with only key, cert, alpn and handshakeTimeout runs on. */
const kBackends = await backendsUnderTest();

/** A TLS echo server on tls://127.0.0.1:0 (portable unless asked) recording `opened` and onError. */
async function tlsEcho(
  f: TlsFixtures,
  tls: Partial<NonNullable<ServeOptions['tls']>> = {},
  backend: BackendName = 'portable',
): Promise<{ run: Running; port: number; seen: Seen }> {
  const seen: Seen = { opened: [], errors: [] };
  const run = await startServer(
    {
      opened(c: Conn) {
        seen.opened.push({ tls: c.tls, subject: c.tls?.peerCertificate?.subject ?? null });
      },
      data: echo,
    },
    {
      backend,
      tls: { key: f.serverKey, cert: f.serverCert, ...tls },
      onError: (err) => seen.errors.push(err),
    },
    'tls://127.0.0.1:0',
  );
  return { run, port: run.server.addrs[0]!.port, seen };
}

/** A node:tls client to 127.0.0.1:`port` that checks the server's name (localhost by default) against the test CA. */
function client(f: TlsFixtures, port: number, extra: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: f.caCert, ...extra }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Writes `data` and reads exactly as many bytes back. */
function roundTrip(s: TLSSocket | Duplex, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const onData = (b: Buffer): void => {
      parts.push(b);
      n += b.length;
      if (n >= data.length) {
        s.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(data);
  });
}

function closedSock(s: Socket | TLSSocket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

const skip = opensslMissing;

for (const backend of kBackends)
  test(
    `${backend}: a node:tls client with a host name check echoes byte-exact up to 1 MiB; c.tls reports the handshake`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const { run, port, seen } = await tlsEcho(f, { alpn: ['h2', 'http/1.1'] }, backend);
      try {
        assert.match(String(run.server.addrs[0]), /^tls:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(run.server.backend, backend);
        const s = await client(f, port, { ALPNProtocols: ['http/1.1'] });
        assert.equal(s.authorized, true);
        assert.deepEqual(await roundTrip(s, Buffer.from('hello')), Buffer.from('hello'));
        const big = randomBytes(kMiB);
        assert.ok((await roundTrip(s, big)).equals(big));
        s.end();
        await closedSock(s);
        assert.equal(seen.opened.length, 1);
        const t = seen.opened[0]!.tls!;
        assert.equal(t.protocol, 'TLSv1.3');
        assert.match(t.cipher, /^TLS_/);
        assert.equal(t.alpnProtocol, 'http/1.1');
        assert.equal(t.servername, 'localhost');
        assert.equal(t.resumed, false);
        assert.equal(t.authorized, false);
        assert.equal(t.peerCertificate, null);
        assert.equal(t.session, null);
        assert.deepEqual(seen.errors, []);
      } finally {
        await run.stop();
      }
    },
  );

test('a plain connection has c.tls null', async () => {
  let tls: TlsInfo | null | undefined;
  const run = await startServer({ opened: (c) => void (tls = c.tls) }, { backend: 'portable' }, 'tcp://127.0.0.1:0');
  try {
    const s = netConnect(run.server.addrs[0]!.port, '127.0.0.1');
    await waitFor(() => tls !== undefined, 'opened');
    assert.equal(tls, null);
    s.destroy();
  } finally {
    await run.stop();
  }
});

test('requestCert: a client certificate the CA signed is authorized and its subject readable', { skip }, async () => {
  const f = tlsFixtures();
  const { run, port, seen } = await tlsEcho(f, { requestCert: true, ca: f.caCert });
  try {
    const s = await client(f, port, { cert: f.clientCert, key: f.clientKey });
    assert.deepEqual(await roundTrip(s, Buffer.from('x')), Buffer.from('x'));
    s.end();
    await closedSock(s);
    const o = seen.opened[0]!;
    assert.equal(o.tls!.authorized, true);
    assert.equal(o.tls!.authorizationError, null);
    assert.match(o.subject!, /CN=gevent client/);
  } finally {
    await run.stop();
  }
});

test(
  'requestCert with rejectUnauthorized: a client without a certificate is refused, never opened',
  { skip },
  async () => {
    const f = tlsFixtures();
    const { run, port, seen } = await tlsEcho(f, { requestCert: true, ca: f.caCert });
    try {
      // TLS 1.3: the client finishes its side first; the server's refusal arrives as an alert.
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: f.caCert });
      s.on('error', () => undefined);
      s.write('x');
      await within(closedSock(s), 10_000, 'the refused client closing');
      await waitFor(() => seen.errors.length > 0, 'onError');
      const e = seen.errors[0]!;
      assert.ok(e instanceof TlsHandshakeError, String(e));
      assert.equal(e.code, 'ERR_GEVENT_TLS_HANDSHAKE');
      assert.match(e.reason, /CERTIFICATE|PEER_DID_NOT_RETURN/i);
      assert.equal(seen.opened.length, 0);
    } finally {
      await run.stop();
    }
  },
);

test('SNI: the certificate for the name asked for, the default one for any other', { skip }, async () => {
  const f = tlsFixtures();
  const { run, port, seen } = await tlsEcho(f, { sni: { 'other.test': { key: f.otherKey, cert: f.otherCert } } });
  try {
    const other = await client(f, port, { servername: 'other.test' });
    assert.match(other.getPeerX509Certificate()!.subject, /CN=other\.test/);
    other.end();
    await closedSock(other);
    const local = await client(f, port, { servername: 'localhost' });
    assert.match(local.getPeerX509Certificate()!.subject, /CN=localhost/);
    local.end();
    await closedSock(local);
    await waitFor(() => seen.opened.length === 2, 'two opened');
    assert.deepEqual(
      seen.opened.map((o) => o.tls!.servername),
      ['other.test', 'localhost'],
    );
  } finally {
    await run.stop();
  }
});

/** Sends raw bytes to the TLS port and resolves with how the socket ended. */
async function sendRaw(port: number, bytes: Buffer): Promise<{ how: string; data: Buffer }> {
  const s = netConnect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  const end = readEnd(s);
  s.write(bytes);
  return within(end, 15_000, 'the server closing the socket');
}

for (const [what, bytes, reason] of [
  ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'), /HTTP_REQUEST|WRONG_VERSION|RECORD/],
  ['garbage', Buffer.from(randomBytes(64).fill(0x42, 0, 1)), /WRONG_VERSION|RECORD|UNKNOWN_PROTOCOL|PACKET/],
] as const) {
  for (const backend of kBackends)
    test(
      `${backend}: ${what} sent to a TLS port: closed, never opened, onError gets TlsHandshakeError with a code`,
      { skip },
      async () => {
        const f = tlsFixtures();
        const { run, port, seen } = await tlsEcho(f, {}, backend);
        try {
          const end = await sendRaw(port, bytes);
          assert.ok(end.how === 'eof' || end.how === 'ECONNRESET', end.how);
          await waitFor(() => seen.errors.length > 0, 'onError');
          const e = seen.errors[0]!;
          assert.ok(e instanceof TlsHandshakeError, String(e));
          assert.match(e.reason, reason);
          assert.equal(e.count, 1);
          assert.equal(e.address, String(run.server.addrs[0]));
          assert.equal(e.peer?.host, '127.0.0.1');
          assert.equal(seen.opened.length, 0);
          const stats = run.server.stats();
          assert.equal(stats.tlsRefused, 1);
          assert.equal(stats.accepted, 0);
          // The listener goes on.
          const s = await client(f, port);
          assert.deepEqual(await roundTrip(s, Buffer.from('ok')), Buffer.from('ok'));
          s.end();
          await closedSock(s);
        } finally {
          await run.stop();
        }
      },
    );
}

/** The first bytes a node:tls client sends (its ClientHello), caught by a plain listener. */
async function clientHello(f: TlsFixtures): Promise<Buffer> {
  let got!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((r) => (got = r));
  const srv = netServer((s) => s.once('data', (b) => (got(b), s.destroy())));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = tlsConnect({ host: '127.0.0.1', port: (srv.address() as { port: number }).port, ca: f.caCert });
  c.on('error', () => undefined);
  const b = await hello;
  c.destroy();
  await new Promise((r) => srv.close(r));
  return b;
}

for (const backend of kBackends)
  test(
    `${backend}: a client that leaves mid-handshake: never opened, reported, the listener goes on`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const { run, port, seen } = await tlsEcho(f, {}, backend);
      try {
        const hello = await clientHello(f);
        const s = netConnect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        s.write(hello.subarray(0, 20));
        s.destroy();
        await waitFor(() => seen.errors.length > 0, 'onError');
        assert.ok(seen.errors[0] instanceof TlsHandshakeError);
        assert.equal(seen.opened.length, 0);
        assert.equal(run.server.stats().tlsRefused, 1);
        const c = await client(f, port);
        assert.deepEqual(await roundTrip(c, Buffer.from('still')), Buffer.from('still'));
        c.end();
        await closedSock(c);
      } finally {
        await run.stop();
      }
    },
  );

/** A Duplex over `sock` that hands what is written to it to the socket one byte at a time. */
function byteAtATime(sock: Socket): Duplex {
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const next = (i: number): void => {
        if (i >= chunk.length) return cb();
        sock.write(chunk.subarray(i, i + 1), () => setImmediate(() => next(i + 1)));
      };
      next(0);
    },
    final(cb) {
      sock.end();
      cb();
    },
    destroy(err, cb) {
      sock.destroy();
      cb(err);
    },
  });
  sock.on('data', (b) => d.push(b));
  sock.on('end', () => d.push(null));
  return d;
}

for (const backend of kBackends)
  test(`${backend}: a handshake fed one byte at a time completes and echoes`, { skip }, async () => {
    const f = tlsFixtures();
    const { run, port, seen } = await tlsEcho(f, {}, backend);
    try {
      const raw = netConnect({ port, host: '127.0.0.1', noDelay: true });
      await new Promise((r) => raw.once('connect', r));
      const s = await new Promise<TLSSocket>((resolve, reject) => {
        const t = tlsConnect({ socket: byteAtATime(raw), servername: 'localhost', ca: f.caCert }, () => resolve(t));
        t.once('error', reject);
      });
      assert.deepEqual(await roundTrip(s, Buffer.from('slow')), Buffer.from('slow'));
      s.end();
      await closedSock(raw);
      assert.equal(seen.opened.length, 1);
      assert.deepEqual(seen.errors, []);
    } finally {
      await run.stop();
    }
  });

for (const backend of kBackends)
  test(
    `${backend}: ALPN picks the server's preference among the client's protocols; none offered is null`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const { run, port, seen } = await tlsEcho(f, { alpn: ['h2', 'http/1.1'] }, backend);
      try {
        for (const offer of [['http/1.1', 'h2'], ['http/1.1'], undefined]) {
          const s = await client(f, port, offer !== undefined ? { ALPNProtocols: offer } : {});
          assert.deepEqual(await roundTrip(s, Buffer.from('x')), Buffer.from('x'));
          s.end();
          await closedSock(s);
        }
        assert.deepEqual(
          seen.opened.map((o) => o.tls?.alpnProtocol),
          ['h2', 'http/1.1', null],
        );
        assert.deepEqual(seen.errors, []);
      } finally {
        await run.stop();
      }
    },
  );

for (const backend of kBackends)
  test(
    `${backend}: no common ALPN protocol: the handshake fails on both sides, counted, never opened`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const { run, port, seen } = await tlsEcho(f, { alpn: ['h2'] }, backend);
      try {
        await assert.rejects(client(f, port, { ALPNProtocols: ['http/1.1'] }), (err: NodeJS.ErrnoException) => {
          assert.match(String(err.code), /NO_APPLICATION_PROTOCOL/);
          return true;
        });
        await waitFor(() => seen.errors.length > 0, 'onError');
        const e = seen.errors[0] as TlsHandshakeError;
        assert.ok(e instanceof TlsHandshakeError, String(e));
        assert.equal(e.reason, 'ERR_SSL_NO_APPLICATION_PROTOCOL');
        assert.equal(run.server.stats().tlsRefused, 1);
        assert.equal(seen.opened.length, 0);
      } finally {
        await run.stop();
      }
    },
  );

for (const backend of kBackends)
  test(
    `${backend}: a key that does not match its certificate rejects listen() naming it; so does a bad PEM`,
    { skip },
    async () => {
      const f = tlsFixtures();
      await assert.rejects(
        listen({}, { backend, tls: { key: f.strayKey, cert: f.serverCert } }, 'tls://127.0.0.1:0'),
        (err: unknown) => {
          assert.ok(err instanceof TlsConfigError, String(err));
          assert.equal(err.code, 'ERR_GEVENT_TLS_CONFIG');
          assert.equal(err.field, 'options.tls.key');
          assert.match(err.message, /does not match options\.tls\.cert/);
          assert.match(err.reason, /MISMATCH/);
          return true;
        },
      );
      await assert.rejects(
        listen({}, { backend, tls: { key: f.serverKey, cert: 'not a certificate' } }, 'tls://127.0.0.1:0'),
        (err: unknown) => err instanceof TlsConfigError && err.field === 'options.tls.cert',
      );
      await assert.rejects(
        listen({}, { backend, tls: { key: 'not a key', cert: f.serverCert } }, 'tls://127.0.0.1:0'),
        (err: unknown) => err instanceof TlsConfigError && err.field === 'options.tls.key',
      );
    },
  );

test('an SNI key that does not match its certificate rejects listen() naming it', { skip }, async () => {
  const f = tlsFixtures();
  await assert.rejects(
    listen(
      {},
      {
        backend: 'portable',
        tls: { key: f.serverKey, cert: f.serverCert, sni: { 'a.test': { key: f.strayKey, cert: f.otherCert } } },
      },
      'tls://127.0.0.1:0',
    ),
    (err: unknown) => err instanceof TlsConfigError && err.field === 'options.tls.sni["a.test"].key',
  );
});

test('bad TLS options are refused naming the field; tls and its addresses go together', async () => {
  const tls = { key: 'k', cert: 'c' };
  const cases: [ServeOptions, string[], RegExp][] = [
    [{ tls: { ...tls, alpn: 'h2' as unknown as string[] } }, ['tls://:0'], /options\.tls\.alpn/],
    [
      { tls: { ...tls, minVersion: 'TLSv1.1' as 'TLSv1.2' } },
      ['tls://:0'],
      /options\.tls\.minVersion.*TLS 1\.2 is the minimum/,
    ],
    [{ tls: { ...tls, ticketKeys: Buffer.alloc(10) } }, ['tls://:0'], /options\.tls\.ticketKeys/],
    [{ tls: { ...tls, bogus: 1 } as never }, ['tls://:0'], /options\.tls\.bogus/],
    [{ tls: { cert: 'c' } as never }, ['tls://:0'], /options\.tls\.key/],
    [{}, ['tls://:0'], /options\.tls must be given for tls:\/\/:0/],
    [{ tls }, ['tcp://:0'], /options\.tls must be absent/],
  ];
  for (const [opts, addrs, re] of cases) {
    await assert.rejects(listen({}, { backend: 'portable', ...opts }, ...addrs), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.match(err.message, re);
      return true;
    });
  }
  await assert.rejects(
    listen({}, { backend: 'native', tls: { ...tls, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' } }, 'tls://127.0.0.1:0'),
    (err: unknown) =>
      err instanceof BackendUnavailableError && /options\.tls\.ciphers.*portable backend/.test(err.message),
  );
});

for (const backend of kBackends)
  test(
    `${backend}: a stalled handshake ends at handshakeTimeout: ERR_TLS_HANDSHAKE_TIMEOUT, never opened`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const { run, port, seen } = await tlsEcho(f, { handshakeTimeout: 100 }, backend);
      try {
        const s = netConnect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        const end = await within(readEnd(s), 15_000, 'the server closing a silent client');
        assert.ok(end.how === 'eof' || end.how === 'ECONNRESET', end.how);
        await waitFor(() => seen.errors.length > 0, 'onError');
        assert.ok(seen.errors[0] instanceof TlsHandshakeError);
        assert.equal((seen.errors[0] as TlsHandshakeError).reason, 'ERR_TLS_HANDSHAKE_TIMEOUT');
        assert.equal(seen.opened.length, 0);
      } finally {
        await run.stop();
      }
    },
  );

for (const backend of kBackends)
  test(
    `${backend}: no fd is left open after TLS connections, failed handshakes and a client stalled mid-handshake at stop`,
    { skip },
    async () => {
      const f = tlsFixtures();
      const hello = await clientHello(f);
      const before = openFdCount();
      const { run, port, seen } = await tlsEcho(f, {}, backend);
      const ok = await client(f, port);
      assert.deepEqual(await roundTrip(ok, Buffer.from('a')), Buffer.from('a'));
      ok.end();
      await closedSock(ok);
      await sendRaw(port, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
      const stalled = netConnect(port, '127.0.0.1');
      await new Promise((r) => stalled.once('connect', r));
      stalled.write(hello.subarray(0, 10));
      const stalledEnd = readEnd(stalled);
      await run.stop();
      await within(stalledEnd, 10_000, 'the stalled client closed by stop');
      stalled.destroy();
      await closedSock(stalled);
      assert.equal(seen.opened.length, 1);
      assertNoFdLeak(before);
    },
  );

test('shared ticketKeys: a session one server gave resumes on another, for SNI names too', { skip }, async () => {
  const f = tlsFixtures();
  const ticketKeys = randomBytes(48);
  const sni = { 'other.test': { key: f.otherKey, cert: f.otherCert } };
  const a = await tlsEcho(f, { ticketKeys, sessionTimeout: 60, sni });
  const b = await tlsEcho(f, { ticketKeys, sessionTimeout: 60, sni });
  try {
    for (const servername of ['localhost', 'other.test']) {
      const first = await client(f, a.port, { servername });
      let session: Buffer | undefined;
      first.on('session', (s: Buffer) => (session = s));
      // TLS 1.3 tickets come after the handshake, before the echo.
      await roundTrip(first, Buffer.from('x'));
      await waitFor(() => session !== undefined, 'a session ticket');
      first.end();
      await closedSock(first);
      const second = await client(f, b.port, { servername, session });
      assert.equal(second.isSessionReused(), true, servername);
      second.end();
      await closedSock(second);
    }
    await waitFor(() => b.seen.opened.length === 2, 'two opened');
    assert.deepEqual(
      b.seen.opened.map((o) => o.tls!.resumed),
      [true, true],
    );
  } finally {
    await a.run.stop();
    await b.run.stop();
  }
});
