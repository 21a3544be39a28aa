/**
 * PROXY protocol listeners behind real balancers, on every backend, with the HTTP example's events
 * on `tcp://127.0.0.1:0?proxy=true` (as `--proxy-protocol` serves them):
 * - HAProxy with `send-proxy` (v1) and `send-proxy-v2` in front: a client asks GET /ip through
 *   HAProxy and gets `127.0.0.1:<its own port>`, not HAProxy's;
 * - HAProxy's `check-send-proxy` health checks (v2 LOCAL) are accepted: they open with the real
 *   addresses and c.proxy.command 'local', and nothing is refused;
 * - the proxy example with `sendProxy=2` (--send-proxy-v2) in front: GET /ip reports the original
 *   client's port, and a half-close is relayed.
 * The HAProxy cases are skipped without HAProxy (CI installs it); the proxy example's run anywhere.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { httpEvents } from '../examples/http/events.js';
import { kDefaultLimits } from '../examples/http/parser.js';
import { listen, type Conn, type Events, type Server } from '../src/index.js';
import { haproxySkip, startHaproxy, type Haproxy } from './haproxy.js';
import { backendsUnderTest, readToEnd, startServer, waitFor, within, type Running } from './helpers.js';

/** The HTTP example's events, counting LOCAL (health check) opens. */
function countingHttp(): { events: Events; locals: { n: number }; opened: { n: number } } {
  const inner = httpEvents({ loops: 1, limits: kDefaultLimits, log: false });
  const locals = { n: 0 };
  const opened = { n: 0 };
  const events: Events = {
    ...inner,
    opened(c: Conn) {
      opened.n++;
      if (c.proxy?.command === 'local') {
        locals.n++;
        assert.equal(c.remoteAddr.host.replace(/^::ffff:/, ''), '127.0.0.1');
      }
      return inner.opened!.call(inner, c);
    },
  };
  return { events, locals, opened };
}

/** GET /ip on 127.0.0.1:port; resolves with the body and the client's own port. */
async function askIp(port: number): Promise<{ body: string; clientPort: number }> {
  const s: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const clientPort = s.localPort!;
  s.write('GET /ip HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
  const raw = (await within(readToEnd(s), 10_000, 'the /ip response')).toString('latin1');
  s.destroy();
  assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/, raw);
  return { body: raw.slice(raw.indexOf('\r\n\r\n') + 4), clientPort };
}

for (const backend of await backendsUnderTest()) {
  describe(`PROXY protocol listeners behind HAProxy (${backend})`, { skip: haproxySkip }, () => {
    let server: Running;
    let haproxy: Haproxy;
    const errors: Error[] = [];
    const counts = countingHttp();

    before(async () => {
      server = await startServer(
        counts.events,
        { backend, onError: (e) => errors.push(e) },
        'tcp://127.0.0.1:0?proxy=true',
      );
      const target = { host: '127.0.0.1', port: server.server.addrs[0]!.port };
      haproxy = await startHaproxy([
        { target, server: 'send-proxy' },
        { target, server: 'send-proxy-v2' },
        { target, server: 'send-proxy-v2 check check-send-proxy inter 100' },
      ]);
    });

    after(async () => {
      await haproxy?.stop();
      await server?.stop();
    });

    for (const [i, how] of ['send-proxy (v1)', 'send-proxy-v2'].entries()) {
      test(`${how}: GET /ip answers the client's own address and port`, async () => {
        const { body, clientPort } = await askIp(haproxy.ports[i]!);
        assert.equal(body, `127.0.0.1:${clientPort}\n`, haproxy.output());
      });
    }

    test('check-send-proxy health checks (LOCAL) are accepted, and nothing is refused', async () => {
      await waitFor(() => counts.locals.n >= 2, `two health checks (${haproxy.output()})`, 10_000);
      const { body, clientPort } = await askIp(haproxy.ports[2]!);
      assert.equal(body, `127.0.0.1:${clientPort}\n`);
      assert.deepEqual(errors, []);
      assert.equal(server.server.stats().proxyRefused, 0);
    });
  });

  describe(`the proxy example with --send-proxy-v2 in front of a PROXY listener (${backend})`, () => {
    let upstream: Running;
    let proxy: Server;
    const errors: Error[] = [];

    before(async () => {
      upstream = await startServer(
        countingHttp().events,
        { backend, onError: (e) => errors.push(e) },
        'tcp://127.0.0.1:0?proxy=true',
      );
      const url = new URL('../examples/proxy/events.js', import.meta.url);
      url.searchParams.set('upstream', `tcp://127.0.0.1:${upstream.server.addrs[0]!.port}`);
      url.searchParams.set('sendProxy', '2');
      url.searchParams.set('run', `haproxy-${backend}`);
      proxy = await listen(url, { backend, allowHalfOpen: true }, 'tcp://127.0.0.1:0');
    });

    after(async () => {
      await proxy?.shutdown();
      await upstream?.stop();
    });

    test('GET /ip through the proxy reports the original client port', async () => {
      const { body, clientPort } = await askIp(proxy.addrs[0]!.port);
      assert.equal(body, `127.0.0.1:${clientPort}\n`);
      assert.deepEqual(errors, []);
      assert.equal(upstream.server.stats().proxyRefused, 0);
    });

    test('a half-closed request is answered: the FIN is relayed after the request', async () => {
      const s: Socket = connect(proxy.addrs[0]!.port, '127.0.0.1');
      await new Promise<void>((resolve) => s.once('connect', resolve));
      const clientPort = s.localPort!;
      // HTTP/1.0 without keep-alive: the server answers, then closes; our FIN went first.
      s.end('GET /ip HTTP/1.0\r\n\r\n');
      const raw = (await within(readToEnd(s), 10_000, 'the response after a half-close')).toString('latin1');
      s.destroy();
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/, raw);
      assert.equal(raw.slice(raw.indexOf('\r\n\r\n') + 4), `127.0.0.1:${clientPort}\n`);
    });
  });
}
