/**
 * One trial of the HTTP benchmark and the rows it makes, for plain HTTP and for HTTPS alike: start
 * a server pinned to the server core, check one response, warm it up with wrk, measure it with wrk
 * on the load core (`taskset -c 1 wrk -t1 -cN -dS URL`, with `-H 'Connection: close'` for a new
 * connection per request), then stop it whatever happens. The median trial of each server stands
 * for its row.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { CpuWindow, otherLoadPct, waitQuiet } from '../lib/cpu.js';
import { fmt } from '../lib/output.js';
import { freePort, stopChild } from '../lib/proc.js';
import type { ProtocolServer } from '../lib/servers.js';
import { oneLine, runLoadTool, runRounds, startServer, type Cell, type LoadToolRun } from '../lib/trial.js';

const kWrkSlackMs = 30_000;
const kCheckTimeoutMs = 5000;

/** What a trial takes from the command line. */
export interface TrialOptions {
  quietWaitS: number;
  durationS: number;
  warmupS: number;
  conns: number;
}

/** The workloads of an HTTPS run: connections kept alive, or `Connection: close` on every request. */
export type TlsWorkload = 'keep-alive' | 'close';
export const kTlsWorkloads: readonly TlsWorkload[] = ['keep-alive', 'close'];

/** The command line of the HTTP benchmark. */
export interface HttpOptions extends TrialOptions {
  trials: number;
  only: string[] | null;
  paths: string[];
  writeDocs: boolean;
  /** Serve HTTPS (http-tls.ts) rather than plain HTTP. */
  tls: boolean;
  /** The workloads of an HTTPS run. */
  workloads: TlsWorkload[];
}

/** What wrk loads: a path, on connections kept alive or with a new connection per request. */
export interface Load {
  path: string;
  /** Every request carries `Connection: close`, so every request opens (and for TLS, handshakes) a connection. */
  close: boolean;
}

/** Where the servers listen: plain HTTP, or HTTPS with the certificate `ca` that the check trusts. */
export type Scheme = { name: 'http' } | { name: 'https'; ca: string };

/** wrk's socket errors by kind; a failed TLS handshake counts as a connect error. */
export interface SocketErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
}

/** One wrk run against one server. */
export interface Trial {
  rps: number;
  latency: string;
  non2xx: number;
  socketErrors: number;
  errors: SocketErrors;
  wrkCpuPct: number;
  serverCpuPct: number;
  /** The kernel's share of serverCpuPct (system time). */
  serverSysPct: number;
  otherLoadPct: number;
  /** Whether both cores were quiet before the server started. */
  quiet: boolean;
  /**
   * For a `Connection: close` load: the server closed after its response without saying
   * `Connection: close` in it, so wrk wrote its next request into a closing connection and counted
   * a read error each time it reconnected.
   */
  silentClose: boolean;
  /**
   * For a `Connection: close` load over TLS: the server resumed a TLS session that a client
   * offered again. wrk keeps each connection's session when it closes it and offers it on the next
   * one, so against such a server part of its handshakes resume. Null otherwise.
   */
  resumes: boolean | null;
}

export interface Row extends Cell<Trial> {
  path: string;
  close: boolean;
  ratio: number | null;
  /** requests/s of every trial, in the order run. */
  all: number[];
  /** The server's CPU µs per request in every trial, in the order run. */
  allCpuUs: number[];
}

export const kExpectedBody: Record<string, string> = {
  '/plaintext': 'Hello, World!',
  '/json': '{"message":"Hello, World!"}',
};

/** The server's CPU time per request, in µs. */
export function cpuUsPerRequest(t: Trial): number {
  return (t.serverCpuPct * 1e4) / t.rps;
}

/** GETs `path` once on a connection kept alive and checks the status and body. */
function checkKeepAlive(port: number, path: string, scheme: Scheme): Promise<void> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () => {
        const body = Buffer.concat(parts).toString();
        if (res.statusCode === 200 && body === kExpectedBody[path]) resolve();
        else reject(new Error(`GET ${path} answered ${res.statusCode} ${JSON.stringify(body.slice(0, 80))}`));
      });
    };
    const where = { host: '127.0.0.1', port, path, agent: false };
    const req =
      scheme.name === 'http' ? http.get(where, onResponse) : https.get({ ...where, ca: scheme.ca }, onResponse);
    req.once('error', reject);
    req.setTimeout(kCheckTimeoutMs, () => req.destroy(new Error(`GET ${path} timed out`)));
  });
}

/** What a `Connection: close` check found. */
interface Closed {
  /** The response said `Connection: close`. */
  said: boolean;
  /** The TLS session the server gave (a TLS 1.3 ticket), for the next connection to offer. */
  session: Buffer | null;
  /** The connection resumed the session it offered. */
  resumed: boolean;
}

/**
 * Sends one request with `Connection: close` and reads until the server closes: a server that
 * keeps the connection open fails the check. Over TLS it offers `session` when given one.
 */
function checkClose(port: number, path: string, scheme: Scheme, session: Buffer | null = null): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const socket =
      scheme.name === 'http'
        ? net.connect({ host: '127.0.0.1', port })
        : tls.connect({ host: '127.0.0.1', port, ca: scheme.ca, ...(session !== null ? { session } : {}) });
    const parts: Buffer[] = [];
    let ticket: Buffer | null = null;
    const timer = setTimeout(
      () => socket.destroy(new Error(`GET ${path} with Connection: close: the server did not close the connection`)),
      kCheckTimeoutMs,
    );
    socket.once(scheme.name === 'http' ? 'connect' : 'secureConnect', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
    );
    socket.on('session', (s: Buffer) => (ticket = s));
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      const text = Buffer.concat(parts).toString();
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      if (!head.startsWith('HTTP/1.1 200') || body !== kExpectedBody[path]) {
        reject(new Error(`GET ${path} with Connection: close answered ${JSON.stringify(text.slice(0, 120))}`));
        return;
      }
      resolve({
        said: /\r\nconnection:\s*close\r?$/im.test(head),
        session: ticket,
        resumed: socket instanceof tls.TLSSocket && socket.isSessionReused(),
      });
    });
  });
}

/**
 * The `Connection: close` check twice, the second time offering the first one's TLS session:
 * whether the server closes silently (Trial.silentClose), and over TLS whether it resumes.
 */
async function checkCloseTwice(
  port: number,
  path: string,
  scheme: Scheme,
): Promise<Pick<Trial, 'silentClose' | 'resumes'>> {
  const first = await checkClose(port, path, scheme);
  if (scheme.name === 'http') return { silentClose: !first.said, resumes: null };
  const second = await checkClose(port, path, scheme, first.session);
  return { silentClose: !first.said, resumes: first.session !== null && second.resumed };
}

/** Runs wrk from the load core for `seconds` (`wrk -t1 -cN -dS [-H 'Connection: close'] URL`). */
function runWrk(root: string, url: string, seconds: number, conns: number, close: boolean): Promise<LoadToolRun> {
  const header = close ? ['-H', "'Connection: close'"] : [];
  return runLoadTool(root, ['wrk', '-t1', `-c${conns}`, `-d${seconds}s`, ...header, url], seconds * 1000 + kWrkSlackMs);
}

function parseWrk(output: string): Pick<Trial, 'rps' | 'latency' | 'non2xx' | 'socketErrors' | 'errors'> {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rps) throw new Error(`no Requests/sec in wrk's output: ${output.trim().split('\n').slice(-4).join(' / ')}`);
  const m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const errors = {
    connect: Number(m?.[1] ?? 0),
    read: Number(m?.[2] ?? 0),
    write: Number(m?.[3] ?? 0),
    timeout: Number(m?.[4] ?? 0),
  };
  return {
    rps: Number(rps[1]),
    latency: /Latency\s+(\S+)/.exec(output)?.[1] ?? '',
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
    socketErrors: errors.connect + errors.read + errors.write + errors.timeout,
    errors,
  };
}

/** wrk's socket errors by kind, for a notes cell: `12 socket errors (connect 2, read 10)`. */
export function socketErrorNote(t: Trial): string {
  const kinds = Object.entries(t.errors)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${fmt(n)}`);
  return `${fmt(t.socketErrors)} socket errors (${kinds.join(', ')})`;
}

/** One trial: a fresh server on the server core, checked, warmed up, measured, then stopped whatever happens. */
async function runTrial(
  root: string,
  server: ProtocolServer,
  load: Load,
  scheme: Scheme,
  opts: TrialOptions,
): Promise<Trial> {
  const quiet = await waitQuiet(opts.quietWaitS);
  const port = await freePort();
  const child = await startServer(root, server.argv(port), port);
  try {
    const closing = load.close ? await checkCloseTwice(port, load.path, scheme) : { silentClose: false, resumes: null };
    if (!load.close) await checkKeepAlive(port, load.path, scheme);
    const url = `${scheme.name}://127.0.0.1:${port}${load.path}`;
    if (opts.warmupS > 0) await runWrk(root, url, opts.warmupS, opts.conns, load.close);
    const cpu = new CpuWindow(child.pid);
    cpu.start();
    const wrk = await runWrk(root, url, opts.durationS, opts.conns, load.close);
    const usage = cpu.end();
    return {
      ...parseWrk(wrk.output),
      wrkCpuPct: wrk.cpuPct,
      serverCpuPct: usage.serverPct,
      serverSysPct: usage.serverSysPct,
      otherLoadPct: otherLoadPct(usage, wrk.cpuPct),
      quiet,
      ...closing,
    };
  } finally {
    await stopChild(child);
  }
}

/** The trial with the median requests/s (the upper of the middle two for an even count). */
function medianTrial(trials: Trial[]): Trial {
  const sorted = [...trials].sort((a, b) => a.rps - b.rps);
  return sorted[sorted.length >> 1]!;
}

/** What measure() runs: every load against every server, in rounds of trials. */
export interface Measure {
  root: string;
  servers: readonly ProtocolServer[];
  /** Servers that cannot run here, with why; measure() adds the ones that turn out so. */
  skipped: Map<string, string>;
  loads: readonly Load[];
  scheme: Scheme;
  /** The server the ratios divide by. */
  reference: string;
  trials: number;
  opts: TrialOptions;
  /** A load's name in the log lines. */
  label: (load: Load) => string;
}

/** Runs every load against every server and gives one row per load and server, in that order. */
export async function measure(m: Measure): Promise<Row[]> {
  const rows: Row[] = [];
  const width = Math.max(10, ...m.loads.map((l) => m.label(l).length));
  for (const load of m.loads) {
    const label = m.label(load).padEnd(width);
    const trials = new Map<string, Trial[]>(m.servers.map((s) => [s.name, []]));
    const failed = new Map<string, string>();
    await runRounds({
      rounds: m.trials,
      servers: m.servers.filter((s) => !m.skipped.has(s.name)),
      trial: (server) => runTrial(m.root, server, load, m.scheme, m.opts),
      ran: (server, t) => {
        trials.get(server.name)!.push(t);
        console.log(
          `${label} ${server.name.padEnd(16)} ${fmt(t.rps).padStart(9)} req/s  latency ${t.latency}  ` +
            `server CPU ${fmt(t.serverCpuPct)}% (${fmt(t.serverSysPct)}% sys)  wrk CPU ${fmt(t.wrkCpuPct)}%` +
            (t.non2xx + t.socketErrors > 0 ? `  ${t.non2xx} non-2xx, ${t.socketErrors} socket errors` : ''),
        );
      },
      stopped: (server, how, message) => {
        const msg = oneLine(message);
        (how === 'skipped' ? m.skipped : failed).set(server.name, msg);
        console.log(`${label} ${server.name.padEnd(16)} ${how === 'skipped' ? 'skipped' : 'FAILED'}: ${msg}`);
      },
    });
    const ref = trials.get(m.reference);
    const refRps = ref !== undefined && ref.length > 0 ? medianTrial(ref).rps : null;
    for (const server of m.servers) {
      const ts = trials.get(server.name)!;
      const skip = m.skipped.get(server.name);
      const fail = failed.get(server.name);
      const where = { path: load.path, close: load.close, server: server.name };
      if (ts.length === 0 || fail !== undefined) {
        rows.push({
          ...where,
          status: skip !== undefined ? 'skipped' : 'failed',
          note: skip ?? fail ?? '',
          trial: null,
          ratio: null,
          all: [],
          allCpuUs: [],
        });
        continue;
      }
      const t = medianTrial(ts);
      rows.push({
        ...where,
        status: 'ok',
        note: '',
        trial: t,
        ratio: refRps === null ? null : t.rps / refRps,
        all: ts.map((x) => x.rps),
        allCpuUs: ts.map(cpuUsPerRequest),
      });
    }
  }
  return rows;
}

/**
 * Rows that make the run fail: a failed server, a non-2xx response, or a socket error other than
 * the read errors of a server that closes without saying so (Trial.silentClose).
 */
export function badRows(rows: readonly Row[]): Row[] {
  return rows.filter((r) => {
    if (r.status === 'failed') return true;
    const t = r.trial;
    if (t === null) return false;
    const expected = t.silentClose ? t.errors.read : 0;
    return t.non2xx > 0 || t.socketErrors - expected > 0;
  });
}

/** Caveats that the figures themselves show: a saturated wrk, other load, a busy machine; `name` names a row. */
export function caveats(rows: readonly Row[], name: (r: Row) => string): string[] {
  const cells = (pred: (t: Trial) => boolean): string =>
    rows
      .filter((r) => r.trial !== null && pred(r.trial))
      .map(name)
      .join(', ');
  const notes: string[] = [];
  const saturated = cells((t) => t.wrkCpuPct >= 90);
  if (saturated !== '') {
    notes.push(
      `wrk used 90% or more of its core in: ${saturated}. There the figure is as much wrk's limit as the ` +
        "server's: on loopback each side's send also runs the other side's receive processing, and one wrk " +
        'thread is all that the second core holds.',
    );
  }
  const busy = cells((t) => t.otherLoadPct >= 10 || !t.quiet);
  if (busy !== '')
    notes.push(
      `Other processes used 10% or more of a core, or the machine was busy at the start, in: ${busy}. Those figures are less reliable.`,
    );
  return notes;
}
