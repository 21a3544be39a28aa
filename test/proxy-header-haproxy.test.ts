/**
 * The PROXY protocol parsers against headers HAProxy really sends: a client connects through
 * HAProxy (`send-proxy`, `send-proxy-v2`) to a plain node:net server that keeps the bytes, and both
 * the native core's parser (test/c/proxyproto.c --parse) and the TypeScript one must report the
 * client's own address and port, the frontend's address and port, and a length that leaves exactly
 * the client's bytes. HAProxy's health checks with `check-send-proxy` carry a v2 LOCAL header,
 * which both must accept as "use the real endpoints". Skipped without HAProxy (CI installs it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { haproxySkip, startHaproxy, type Haproxy } from './haproxy.js';
import { parseProxyHeader } from '../src/proxy-header.js';

const kBuildScript = fileURLToPath(new URL('../../test/c/build.sh', import.meta.url));
const haveCompiler = spawnSync(process.env['CC'] ?? 'gcc', ['--version']).status === 0;

/** A server that keeps each connection's bytes until the peer ends it. */
class Capture {
  readonly server = net.createServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (b) => chunks.push(b));
    s.on('error', () => {});
    s.on('close', () => this.#deliver(Buffer.concat(chunks)));
  });
  #waiting: ((b: Buffer) => void)[] = [];
  #ready: Buffer[] = [];

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The bytes of the next connection that closes. */
  next(): Promise<Buffer> {
    const b = this.#ready.shift();
    return b !== undefined ? Promise.resolve(b) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  #deliver(b: Buffer): void {
    const w = this.#waiting.shift();
    if (w !== undefined) w(b);
    else this.#ready.push(b);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Parsed {
  length?: number;
  status?: number;
  version?: number;
  local?: boolean;
  source?: { host: string; port: number };
  destination?: { host: string; port: number };
}

describe('PROXY protocol headers from HAProxy', { skip: haproxySkip }, () => {
  let dir = '';
  let program = '';
  let haproxy: Haproxy;
  const captures = [new Capture(), new Capture(), new Capture()];

  before(async () => {
    if (haveCompiler) {
      dir = mkdtempSync(join(tmpdir(), 'gevent-pp-haproxy-'));
      program = join(dir, 'proxyproto');
      const built = spawnSync('sh', [kBuildScript, 'proxyproto', program], { encoding: 'utf8' });
      assert.equal(built.status, 0, built.stderr);
    }
    const ports = await Promise.all(captures.map((c) => c.listen()));
    haproxy = await startHaproxy([
      { target: { host: '127.0.0.1', port: ports[0]! }, server: 'send-proxy' },
      { target: { host: '127.0.0.1', port: ports[1]! }, server: 'send-proxy-v2' },
      { target: { host: '127.0.0.1', port: ports[2]! }, server: 'send-proxy-v2 check inter 200 check-send-proxy' },
    ]);
  });

  after(async () => {
    await haproxy?.stop();
    await Promise.all(captures.map((c) => c.close()));
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  /** Both parsers' view of `bytes`, the native one only when a compiler built it. */
  function parseBoth(bytes: Buffer): { native: Parsed | null; ts: ReturnType<typeof parseProxyHeader> } {
    let native: Parsed | null = null;
    if (program !== '') {
      const run = spawnSync(program, ['--parse'], { input: bytes, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      native = JSON.parse(run.stdout) as Parsed;
    }
    return { native, ts: parseProxyHeader(bytes) };
  }

  for (const [i, version] of [
    [0, 1],
    [1, 2],
  ] as const) {
    it(`v${version}: the client's own address and port, and the client's bytes after the header`, async () => {
      const frontendPort = haproxy.ports[i]!;
      const client = net.connect(frontendPort, '127.0.0.1');
      await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
      const clientPort = client.localPort!;
      client.end('hello, upstream');
      const bytes = await captures[i]!.next();
      const { native, ts } = parseBoth(bytes);
      const want = {
        version,
        source: { host: '127.0.0.1', port: clientPort },
        destination: { host: '127.0.0.1', port: frontendPort },
      };
      assert.ok(
        typeof ts === 'object' && 'length' in ts,
        `TypeScript parser: ${JSON.stringify(ts)} ${haproxy.output()}`,
      );
      assert.equal(ts.version, want.version);
      assert.equal(ts.command, 'proxy');
      assert.deepEqual(ts.source, want.source);
      assert.deepEqual(ts.destination, want.destination);
      assert.equal(bytes.subarray(ts.length).toString(), 'hello, upstream');
      if (native !== null) {
        assert.equal(native.version, want.version, JSON.stringify(native));
        assert.equal(native.local, false);
        assert.deepEqual(native.source, want.source);
        assert.deepEqual(native.destination, want.destination);
        assert.equal(native.length, ts.length);
      }
    });
  }

  it('v2 health checks (check-send-proxy) send LOCAL: accepted, addresses not used', async () => {
    const bytes = await captures[2]!.next();
    const { native, ts } = parseBoth(bytes);
    assert.ok(typeof ts === 'object' && 'length' in ts, `TypeScript parser: ${JSON.stringify(ts)}`);
    assert.equal(ts.version, 2);
    assert.equal(ts.command, 'local');
    assert.equal(ts.source, null);
    assert.equal(ts.length, bytes.length, 'a health check sends the header alone');
    if (native !== null) {
      assert.equal(native.local, true, JSON.stringify(native));
      assert.equal(native.length, bytes.length);
    }
  });
});
