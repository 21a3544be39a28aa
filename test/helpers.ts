/**
 * Shared test plumbing: the backends under test, a server started on port 0 that a test can stop,
 * plain node:net clients, and fd accounting.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type Conn, type Events, type Server, type ServeOptions } from '../src/index.js';

export type BackendName = 'native' | 'portable';

/** Every backend this machine can run: portable always, native when its addon loads. */
export async function backendsUnderTest(): Promise<BackendName[]> {
  const list: BackendName[] = ['portable'];
  try {
    const spec = '../src/backend/addon.js';
    const m = (await import(spec)) as { nativeAvailable?: () => boolean };
    if (m.nativeAvailable?.()) list.unshift('native');
  } catch {
    // No native backend in this build.
  }
  return list;
}

/** A running server and the ways to reach and stop it. */
export interface Running {
  readonly server: Server;
  /** Settles when serve() settles. */
  readonly done: Promise<void>;
  /** Aborts the server and waits for serve() to settle. */
  stop(): Promise<void>;
}

/**
 * Starts serve() and waits for `serving`. The events' own `serving` still runs (its return value
 * is kept). Rejects if serve() rejects before serving.
 */
export async function startServer(events: Events, opts: ServeOptions, ...addrs: string[]): Promise<Running> {
  const ac = new AbortController();
  let onServing!: (s: Server) => void;
  const serving = new Promise<Server>((resolve) => (onServing = resolve));
  const userServing = events.serving;
  const wrapped: Events = Object.assign(Object.create(Object.getPrototypeOf(events)), events, {
    serving(s: Server) {
      onServing(s);
      return userServing?.call(events, s);
    },
  });
  const done = serve(wrapped, { ...opts, signal: opts.signal ?? ac.signal }, ...addrs);
  const server = await Promise.race([
    serving,
    done.then(() => Promise.reject(new Error('serve() ended before serving'))),
  ]);
  return {
    server,
    done,
    async stop() {
      ac.abort();
      await done;
    },
  };
}

/** Connects a node:net client to a bound address (tcp host/port or unix path). */
export function connectTo(addr: { network: string; port: number; path: string; host?: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = addr.network === 'unix' ? connect(addr.path) : connect(addr.port, '127.0.0.1');
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Reads exactly n bytes from a socket (or rejects when it ends or errors first). */
export function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        cleanup();
        const all = Buffer.concat(chunks);
        if (all.length > n) s.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`stream ended after ${got} of ${n} bytes`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
      s.pause();
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
    s.resume();
    if (n === 0) {
      cleanup();
      resolve(Buffer.alloc(0));
    }
  });
}

/** Reads until the peer ends the stream; resolves with everything read (rejects on error). */
export function readToEnd(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.resume();
  });
}

/** Resolves when the socket has fully closed. */
export function closed(s: Socket): Promise<void> {
  return s.destroyed && s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

/** How many fds this process has open now. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Waits until `pred` is true, checking every few ms; rejects after `ms` with `what`. */
export async function waitFor(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** How a client's read side ended: 'eof' for a clean FIN, else the error code (ECONNRESET, ...). */
export function readEnd(s: Socket): Promise<{ how: string; data: Buffer }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const finish = (how: string): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
      resolve({ how, data: Buffer.concat(chunks) });
    };
    const onData = (d: Buffer): void => void chunks.push(d);
    const onEnd = (): void => finish('eof');
    const onError = (err: NodeJS.ErrnoException): void => finish(err.code ?? err.message);
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
    s.resume();
  });
}

/** Resolves with the error code of a TCP connect to 127.0.0.1:port ('connected' if it succeeds). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      s.once('close', () => resolve('connected'));
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A net.Server listening on 127.0.0.1:0 (holding a port), and a way to close it. */
export async function holdPort(): Promise<{ port: number; close(): Promise<void> }> {
  const srv = createServer((sock) => sock.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (srv.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/** A fresh directory for socket files; remove it with rmSync(dir, { recursive: true }). */
export function socketDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `gevent-${tag}-`));
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A test size: `ci` normally, `stress` when GEVENT_STRESS=1 is set. */
export function sized(ci: number, stress: number): number {
  return process.env.GEVENT_STRESS === '1' ? stress : ci;
}

/** This process's resident set size in bytes. */
export function rssBytes(): number {
  return process.memoryUsage.rss();
}

/** The inode numbers of the sockets open in process `pid` ('self' for this one), from /proc/<pid>/fd. */
export function socketInodes(pid: number | 'self'): Set<string> {
  const dir = `/proc/${pid}/fd`;
  const out = new Set<string>();
  for (const fd of readdirSync(dir)) {
    let target: string;
    try {
      target = readlinkSync(join(dir, fd));
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** CPU time (user + system) process `pid` has used, in clock ticks (see `getconf CLK_TCK`, 100 on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Connects `n` clients to 127.0.0.1:port, at most `batch` connects in flight at a time; `onEach`
 * runs for each client as soon as it has connected.
 */
export async function connectMany(
  port: number,
  n: number,
  batch = 100,
  onEach?: (s: Socket) => void,
): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += batch) {
    const part = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        onEach?.(s);
        return s;
      }),
    );
    out.push(...part);
  }
  return out;
}

/** Resolves as `p` does, or rejects naming `what` when `p` has not settled after `ms` (so a hang fails instead of stalling the run). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A server running in a child process that prints JSON lines (see test/fixtures/reliability-emfile-server.ts). */
export interface ChildServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** The server's own pid, as it printed it (the child's pid may be a wrapper's, such as strace's). */
  readonly pid: number;
  /** Every JSON line printed so far, with the time (performance.now() here) it arrived. */
  readonly lines: { at: number; msg: Record<string, unknown> }[];
  /** Resolves with the exit code (or signal name) once the child has exited. */
  readonly exited: Promise<number | string>;
  /** Everything the child wrote to stderr. */
  stderr(): string;
  /** SIGTERM to the server's pid, then SIGKILL to the child after `ms`; resolves with how the child exited. */
  stop(ms?: number): Promise<number | string>;
}

/** Spawns `cmd args`, waits for its {"ev":"serving","port":N} line; rejects if it exits or stays silent for `ms`. */
export function spawnChildServer(cmd: string, args: readonly string[], ms = 15_000): Promise<ChildServer> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: { at: number; msg: Record<string, unknown> }[] = [];
  let err = '';
  let pending = '';
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} printed no serving line in ${ms} ms; stderr: ${err.slice(-2000)}`));
    }, ms);
    const server: ChildServer = {
      child,
      port: 0,
      pid: child.pid ?? 0,
      lines,
      exited,
      stderr: () => err,
      async stop(killMs = 5000) {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(server.pid, 'SIGTERM');
          } catch {
            child.kill('SIGTERM');
          }
        }
        const t = setTimeout(() => child.kill('SIGKILL'), killMs);
        const how = await exited;
        clearTimeout(t);
        return how;
      },
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (err += d));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      pending += d;
      for (let k = pending.indexOf('\n'); k >= 0; k = pending.indexOf('\n')) {
        const text = pending.slice(0, k);
        pending = pending.slice(k + 1);
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        lines.push({ at: performance.now(), msg });
        if (msg['ev'] === 'serving') {
          clearTimeout(timer);
          resolve(
            Object.assign(server, {
              port: msg['port'] as number,
              pid: (msg['pid'] as number | undefined) ?? server.pid,
            }),
          );
        }
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${how}) before serving; stderr: ${err.slice(-2000)}`));
    });
  });
}

/** This process's soft limit on open fds (RLIMIT_NOFILE), from /proc/self/limits; Infinity when unlimited. */
export function fdLimit(): number {
  const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** A `skip` reason when this process may not open `needed` fds, else false. */
export function needFds(needed: number): string | false {
  const limit = fdLimit();
  return limit < needed ? `needs ${needed} fds, but ulimit -n is ${limit}` : false;
}

const kNetAcceptProbe = `
const net = require('node:net');
const server = net.createServer((s) => s.destroy());
let heard = 'none';
server.on('error', (e) => { if (e.syscall === 'accept') heard = e.code; });
server.listen(0, '127.0.0.1', () => {
  const c = net.connect(server.address().port, '127.0.0.1');
  c.on('error', () => {});
  c.on('close', () => setTimeout(() => { process.stdout.write(heard); server.close(); }, 100));
});
`;

/**
 * Whether this Node's net.Server tells its 'error' listeners of a failed accept(): runs a plain
 * net.Server under `strace -e inject=accept4:error=ENOBUFS:when=1` and reports what its listener
 * heard. The portable backend can only report the accept failures that net.Server surfaces.
 * Returns a `skip`-style reason when it does not (or strace cannot tell), else false.
 */
export function netHidesAcceptErrors(): string | false {
  try {
    const out = execFileSync(
      'strace',
      [
        '-f',
        '-qq',
        '-e',
        'trace=none',
        '-e',
        'inject=accept4:error=ENOBUFS:when=1',
        process.execPath,
        '-e',
        kNetAcceptProbe,
      ],
      { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return out === 'ENOBUFS'
      ? false
      : `Node ${process.version}'s net.Server does not surface accept() failures (a plain net.Server under an injected ENOBUFS heard: ${out || 'nothing'}), so the portable backend has none to report`;
  } catch (err) {
    return `strace could not run the net.Server probe (${(err as Error).message.split('\n')[0]})`;
  }
}

const kTcpStates = [
  '',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
];

/** A TCP socket's state and kernel queues, from /proc/net/tcp (or tcp6). */
export interface TcpQueues {
  /** The kernel's name for its state: ESTABLISHED, CLOSE_WAIT (the peer's FIN arrived), ... */
  readonly state: string;
  /** Bytes received that the application has not read yet. */
  readonly rxBytes: number;
  /** Bytes sent that the peer has not acknowledged yet. */
  readonly txBytes: number;
}

/**
 * The state and kernel queues of this machine's TCP socket from `localPort` to `remotePort`, or
 * undefined when the kernel lists none (an ESTABLISHED one is preferred). rxBytes > 0 is the proof
 * a test needs that a close will find unread input, whatever the kernel's buffer sizes and cached
 * metrics; a test cannot get that from the timing of its writes. A socket that a RST has reset
 * leaves the list while its fd is still open, so undefined there tells a RST from a FIN, which a
 * node:net client cannot always (libuv can report a RST that follows the last data as EOF).
 */
export function tcpQueues(localPort: number, remotePort: number): TcpQueues | undefined {
  let found: TcpQueues | undefined;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (
        f.length < 5 ||
        parseInt(f[1]!.split(':')[1]!, 16) !== localPort ||
        parseInt(f[2]!.split(':')[1]!, 16) !== remotePort
      )
        continue;
      const [tx, rx] = f[4]!.split(':').map((h) => parseInt(h, 16));
      const q = { state: kTcpStates[parseInt(f[3]!, 16)] ?? f[3]!, txBytes: tx!, rxBytes: rx! };
      if (q.state === 'ESTABLISHED') return q;
      found ??= q;
    }
  }
  return found;
}

/**
 * Sends chunk(offset) after chunk to `c`, whose peer is not reading, until the server holds at
 * least `minQueuedBytes` that the kernel will not take: c.queuedBytes, as the backend reports it,
 * at or above that and unchanged for `steadyMs` (a kernel takes more for a while after it first
 * refuses, as the peer's receive window grows). How much a TCP connection takes depends on the
 * machine (tcp_wmem, tcp_rmem, the metrics the kernel caches per destination), so a test that
 * needs output still queued fills until it is instead of assuming a size. Keep the pieces small
 * (a MiB) and send nothing large before: the portable backend reports a write's queue when the
 * write is made and again only when node:net has written all of it, so the figure of one large
 * write stays high while the kernel is still taking it. Resolves with the bytes sent; rejects once
 * it has sent `maxBytes` or the connection closes.
 */
export async function sendUntilQueued(
  c: Conn,
  minQueuedBytes: number,
  chunk: (offset: number) => Uint8Array,
  maxBytes = 2 ** 30,
  steadyMs = 200,
): Promise<number> {
  let sent = 0;
  let last = -1;
  let since = performance.now();
  for (;;) {
    await sleep(5);
    const queued = c.queuedBytes;
    if (queued !== last) {
      last = queued;
      since = performance.now();
    }
    if (queued >= minQueuedBytes && performance.now() - since >= steadyMs) return sent;
    if (!c.open)
      throw new Error(`the connection closed after ${sent} bytes were sent, before ${minQueuedBytes} stayed queued`);
    if (queued >= minQueuedBytes) continue;
    if (sent >= maxBytes)
      throw new Error(
        `${sent} bytes sent and only ${queued} queued: the peer is reading, or the kernel takes more than ${maxBytes} bytes`,
      );
    const b = chunk(sent);
    c.send(b);
    sent += b.length;
  }
}

/**
 * Fails when this process has more fds open than `before`: what a test opened must be closed. Fewer
 * is fine (an fd the runtime held when the count was taken may have closed since).
 */
export function assertNoFdLeak(before: number): void {
  const now = openFdCount();
  assert.ok(now <= before, `${now - before} fd(s) left open (${now} now, ${before} before)`);
}

/** Whether python3 runs here (for hangingListener). */
export const havePython = spawnSync('python3', ['-c', 'pass']).status === 0;

/**
 * A TCP listener on 127.0.0.1 (in a python3 child) that never accepts, its backlog of 0 already
 * filled by one connection: the kernel drops further SYNs, so a connect to it hangs until its
 * timeout. `close()` ends the child and the filling connection.
 */
export async function hangingListener(): Promise<{ port: number; close(): Promise<void> }> {
  const script =
    "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()\n";
  const child: ChildProcess = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let filler: Socket | null = null;
  const close = async (): Promise<void> => {
    filler?.destroy();
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin!.end();
    child.kill();
    await exited;
  };
  try {
    const port = await within(
      new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))),
      10_000,
      'the python listener',
    );
    const s = connect(port, '127.0.0.1');
    filler = s;
    await within(new Promise((resolve) => s.once('connect', resolve)), 5000, 'the connection that fills the queue');
    return { port, close };
  } catch (err) {
    await close();
    throw err;
  }
}
