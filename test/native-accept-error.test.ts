/**
 * Accept errors on the native backend, at the fd limit: a child process runs a NativeBackend echo
 * server under `prlimit --nofile=64` while this process opens 100 clients. The child must report
 * EMFILE through onAcceptError, must not spin (under 20% CPU over a second while its listener
 * stays readable with nothing acceptable), and must serve a new client once the others leave.
 * RLIMIT_NOFILE can only be lowered for a child, hence the separate process.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { nativeAvailable } from '../src/backend/native.js';

const kClients = 100;
const kNoFile = 64;
const kMaxCpuShare = 0.2;

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const skip = !nativeAvailable() ? 'native addon not built' : !hasPrlimit ? 'prlimit not available' : false;

const nativeUrl = new URL('../src/backend/native.js', import.meta.url).href;
const addrUrl = new URL('../src/addr.js', import.meta.url).href;

/** The child: an echo server; answers 'stats' and 'stop' lines on stdin with JSON lines. */
const childSource = `
const { NativeBackend } = await import(${JSON.stringify(nativeUrl)});
const { parseAddress } = await import(${JSON.stringify(addrUrl)});
const b = new NativeBackend({ tcpNoDelay: true });
const s = { opened: 0, closed: 0, acceptErrors: 0, errnos: [], badListener: 0 };
b.start({
  onOpen() { s.opened++; },
  onData(id, bytes) { b.write(id, bytes); },
  onEnd(id) { b.close(id, true); },
  onClose() { s.closed++; },
  onDatagram() {},
  onBatchEnd() { b.flush(); },
  onQueued() {},
  onAcceptError(listener, errno) {
    s.acceptErrors++;
    if (listener !== 0) s.badListener++;
    if (!s.errnos.includes(errno)) s.errnos.push(errno);
  },
});
const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'));
const say = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
say({ port: addr.port });
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', async (d) => {
  buffered += d;
  let nl;
  while ((nl = buffered.indexOf('\\n')) >= 0) {
    const cmd = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (cmd === 'stats') say({ ...s, parked: b.stats().listenersParked });
    if (cmd === 'stop') {
      await b.stop();
      say({ stopped: true, ...s });
      process.stdin.pause();
    }
  }
});
`;

interface ChildStats {
  port?: number;
  opened: number;
  closed: number;
  acceptErrors: number;
  errnos: string[];
  badListener: number;
  parked: number;
  stopped?: boolean;
}

/** A line-oriented JSON conversation with the child. */
class Child {
  readonly #lines: ChildStats[] = [];
  #waiter: (() => void) | null = null;
  #out = '';
  constructor(readonly proc: ChildProcessByStdio<Writable, Readable, null>) {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      this.#out += d;
      let nl;
      while ((nl = this.#out.indexOf('\n')) >= 0) {
        this.#lines.push(JSON.parse(this.#out.slice(0, nl)) as ChildStats);
        this.#out = this.#out.slice(nl + 1);
      }
      this.#waiter?.();
    });
  }
  async next(): Promise<ChildStats> {
    const deadline = Date.now() + 10000;
    while (this.#lines.length === 0) {
      if (this.proc.exitCode !== null) throw new Error(`child exited with ${this.proc.exitCode}`);
      if (Date.now() > deadline) throw new Error('child did not answer');
      await new Promise<void>((r) => {
        this.#waiter = r;
        setTimeout(r, 50);
      });
    }
    return this.#lines.shift()!;
  }
  async ask(cmd: string): Promise<ChildStats> {
    this.proc.stdin.write(`${cmd}\n`);
    return this.next();
  }
  async until(cond: (s: ChildStats) => boolean, what: string): Promise<ChildStats> {
    const deadline = Date.now() + 10000;
    for (;;) {
      const s = await this.ask('stats');
      if (cond(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** CPU time (user + system) the process has used, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const tick = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  return (Number(fields[11]) + Number(fields[12])) / tick;
}

function client(port: number): net.Socket {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  return s;
}

describe('native backend: accept errors at the fd limit', { skip }, () => {
  it(`reports EMFILE, stays under ${kMaxCpuShare * 100}% CPU with ${kClients} clients at nofile=${kNoFile}, then serves again`, async () => {
    const proc = spawn('prlimit', [`--nofile=${kNoFile}`, process.execPath, '--input-type=module', '-e', childSource], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const child = new Child(proc);
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const clients: net.Socket[] = [];
    try {
      const { port } = await child.next();
      assert.ok(port !== undefined && port > 0);
      for (let i = 0; i < kClients; i++) clients.push(client(port));
      const limited = await child.until((s) => s.acceptErrors > 0, 'an accept error');
      assert.deepEqual(limited.errnos, ['EMFILE']);
      assert.equal(limited.badListener, 0, 'errors name listener 0');
      assert.ok(limited.opened < kClients, `the fd limit stopped accepting (${limited.opened} opened)`);

      const before = cpuSeconds(proc.pid!);
      const t0 = process.hrtime.bigint();
      await new Promise((r) => setTimeout(r, 1000));
      const share = (cpuSeconds(proc.pid!) - before) / (Number(process.hrtime.bigint() - t0) / 1e9);
      assert.ok(share < kMaxCpuShare, `the child used ${(share * 100).toFixed(1)}% CPU at the fd limit`);
      const during = await child.ask('stats');
      assert.ok(during.acceptErrors < 40, `accept errors are paced (${during.acceptErrors} in about a second)`);

      for (const c of clients) c.destroy();
      await child.until((s) => s.opened === s.closed && s.parked === 0, 'every client to leave');
      const fresh = client(port);
      clients.push(fresh);
      const reply = await new Promise<string>((resolve) => {
        fresh.once('data', (d: Buffer) => resolve(d.toString()));
        fresh.write('served again');
      });
      assert.equal(reply, 'served again');
      fresh.destroy();
      const last = await child.until((s) => s.opened === s.closed, 'the fresh client to close');
      const stopped = await child.ask('stop');
      assert.equal(stopped.stopped, true);
      assert.equal(stopped.opened, last.opened);
      proc.stdin.end();
      assert.equal(await exited, 0);
    } finally {
      for (const c of clients) c.destroy();
      if (proc.exitCode === null) proc.kill();
    }
  });
});
