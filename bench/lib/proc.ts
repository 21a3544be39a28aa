/**
 * Child processes for the benchmark: each runs in a process group of its own, is recorded in one
 * registry, and is killed with its whole group when the trial ends or the orchestrator exits for
 * any reason (normal end, thrown error, SIGINT, SIGTERM). Also the /proc readers that the
 * benchmarks use for RSS and CPU time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

/** Characters of a child's output kept from its start and from its end, for error messages. */
const kHeadChars = 4096;
const kTailChars = 4096;
const live = new Set<ChildProcess>();

/** A started child with the start and the end of its output (stdout and stderr), for error messages. */
export interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * A child's output, bounded: the first kHeadChars (where a server prints what it listens on, or
 * the first line of an error) and the last kTailChars (where a tool prints its result), with a
 * line that says how much was left out between them.
 */
class OutputLog {
  #head = '';
  #tail = '';
  #omitted = 0;

  add(text: string): void {
    const room = kHeadChars - this.#head.length;
    if (room > 0) {
      this.#head += text.slice(0, room);
      text = text.slice(room);
    }
    const tail = this.#tail + text;
    this.#omitted += Math.max(0, tail.length - kTailChars);
    this.#tail = tail.slice(-kTailChars);
  }

  text(): string {
    return this.#omitted === 0
      ? this.#head + this.#tail
      : `${this.#head}\n[${this.#omitted} characters left out]\n${this.#tail}`;
  }
}

function killGroupNow(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // the group is already gone
  }
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const proc of live) killGroupNow(proc, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const proc of live) killGroupNow(proc, 'SIGKILL');
      process.exit(130);
    });
  }
}

/** Starts argv[0] with argv[1..] in a new process group; stdin is a pipe when `stdin` is set. */
export function startChild(argv: string[], opts: { cwd: string; stdin?: boolean }): Child {
  hookExit();
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('bench: empty command');
  const proc = spawn(cmd, args, {
    cwd: opts.cwd,
    detached: true,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const log = new OutputLog();
  const keep = (chunk: Buffer): void => log.add(chunk.toString('utf8'));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('error', (err) => {
      log.add(`\n${err.message}`);
      live.delete(proc);
      resolve(-1);
    });
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    });
  });
  return { proc, pid: proc.pid ?? -1, output: () => log.text(), exited };
}

/**
 * What `promise` settles with, or 'timeout' when it has not settled within `limitMs`. Clears its
 * timer either way, so that no timer outlives the wait and holds a finished benchmark open.
 */
export async function within<T>(promise: Promise<T>, limitMs: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(resolve, limitMs, 'timeout');
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The child's exit code, or 'timeout' when it has not exited within `limitMs`. */
export function waitExit(child: Child, limitMs: number): Promise<number | null | 'timeout'> {
  return within(child.exited, limitMs);
}

/** Ends the child's whole group: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, graceMs = 1500): Promise<void> {
  killGroupNow(child.proc, 'SIGTERM');
  const done = (await waitExit(child, graceMs)) !== 'timeout';
  killGroupNow(child.proc, 'SIGKILL');
  if (!done) await waitExit(child, graceMs);
  live.delete(child.proc);
}

/** A port that was free on 127.0.0.1 a moment ago, for TCP and UDP alike. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '0.0.0.0', () => {
        const addr = server.address();
        server.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, '0.0.0.0', () => sock.close(() => resolve(true)));
    });
    if (port > 0 && udpFree) return port;
  }
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function tryUdpEcho(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('error', () => done(false));
    sock.once('message', () => done(true));
    sock.send('probe', port, '127.0.0.1');
  });
}

/**
 * Polls until the server answers: a TCP connect that succeeds, or a UDP datagram echoed back.
 * Rejects with the server's output if it exits first or does not answer within `timeoutMs`.
 */
export async function waitReady(child: Child, port: number, udp: boolean, timeoutMs = 15_000): Promise<void> {
  let exitCode: number | null | undefined;
  void child.exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`exited with code ${exitCode} before listening`);
    if (udp ? await tryUdpEcho(port, 100) : await tryConnect(port)) return;
    await sleep(udp ? 0 : 50);
  }
  throw new Error(`did not answer on port ${port} within ${timeoutMs} ms`);
}

/** Resident set size of a process in bytes, from /proc/PID/status VmRSS. */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`bench: no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** User and system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15); NaN once it is gone. */
export function readProcessTicks(pid: number): [user: number, sys: number] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(fields[11]), Number(fields[12])];
  } catch {
    return [Number.NaN, Number.NaN];
  }
}

/** Busy ticks of one core (user, nice, system, irq, softirq, steal: all but idle and iowait). */
export function readCoreBusyTicks(core: number): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${core} `));
  if (!line) return Number.NaN;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return f.slice(0, 8).reduce((sum, n, i) => (i === 3 || i === 4 ? sum : sum + n), 0);
}

/** Clock ticks per second for /proc CPU figures (USER_HZ, 100 on Linux). */
export const kTicksPerSecond = 100;
