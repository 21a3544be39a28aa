/**
 * The steps every benchmark's trials share: start a server pinned to the server core and wait
 * until it answers, run a load tool pinned to the load core and measure its own CPU, and run the
 * trials of all servers in rounds. A server that cannot run on this machine throws SkipError; any
 * other failure is an Error. The caller stops the servers it starts.
 */
import { kLoadCore, kServerCore } from './cpu.js';
import { startChild, stopChild, waitExit, waitReady, within, type Child } from './proc.js';

/** Output that says the backend a server asked for cannot run on this machine. */
const kUnavailable = /ERR_GEVENT_BACKEND_UNAVAILABLE|BackendUnavailableError|native addon not available/;
/** How long a finished load tool's output streams may take to close. */
const kStreamsCloseMs = 2000;
/** Characters of an error message kept for a table cell or a log line. */
const kMessageChars = 300;

/** A server that cannot run here (no Bun, no native backend): noted in the table, not a failure. */
export class SkipError extends Error {}

/** How a server's trials ended before their rounds were over. */
export type Ended = 'skipped' | 'failed';

/** One cell of a protocol benchmark's table: the trial that stands for it, or why there is none. */
export interface Cell<T> {
  server: string;
  status: 'ok' | Ended;
  /** Why the server was skipped or failed; empty when ok. */
  note: string;
  trial: T | null;
}

/** The notes column of a cell without a trial. */
export function endedNote(cell: Cell<unknown>): string {
  return cell.status === 'skipped' ? `skipped: ${cell.note}` : `FAILED: ${cell.note}`;
}

/** An error message on one line and at most kMessageChars long, for a table cell or a log line. */
export function oneLine(message: string): string {
  return message.replace(/\s+/g, ' ').slice(0, kMessageChars);
}

/**
 * Starts `argv` pinned to the server core, with the open-file limit `nofile` when given, and waits
 * until it answers on `port` (a UDP echo when `udp`). If it does not, stops it and throws
 * SkipError when its output says its backend cannot run here, else an Error with its first
 * `gevent:` line or its last lines. The caller stops the child it gets back.
 */
export async function startServer(
  root: string,
  argv: string[],
  port: number,
  opts: { udp?: boolean; nofile?: number } = {},
): Promise<Child> {
  const limit = opts.nofile === undefined ? [] : ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`];
  const child = startChild(['taskset', '-c', String(kServerCore), ...limit, ...argv], { cwd: root });
  try {
    await waitReady(child, port, opts.udp ?? false);
    return child;
  } catch (err) {
    const output = child.output();
    await stopChild(child);
    const why = /gevent: [^\n]*/.exec(output)?.[0] ?? output.trim().split('\n').slice(-3).join(' / ');
    if (kUnavailable.test(output)) throw new SkipError(why);
    throw new Error(`${(err as Error).message}${why ? `: ${why}` : ''}`, { cause: err });
  }
}

/** The user plus system CPU seconds of bash's children, from the last line `times` prints ("0m1.5s 0m0.2s"). */
function childCpuSeconds(output: string): number {
  const lines = output.trim().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1]!.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

/** What a load tool printed, and the CPU it used. */
export interface LoadToolRun {
  /** All it wrote to stdout. */
  stdout: string;
  /** The start and the end of its stdout and stderr together, as startChild keeps them. */
  output: string;
  /** Its own user plus system time over the run, in percent of one core. */
  cpuPct: number;
}

/**
 * Runs a load tool (`args`: wrk or redis-benchmark and its arguments, joined by spaces for bash)
 * pinned to the load core, through bash so that `times` reports the tool's own CPU. Throws when it
 * has not finished within `limitMs` or exits with a code other than 0 (the tool's own code).
 */
export async function runLoadTool(root: string, args: string[], limitMs: number): Promise<LoadToolRun> {
  const start = performance.now();
  const script = `taskset -c ${kLoadCore} ${args.join(' ')}; status=$?; times; exit $status`;
  const child = startChild(['bash', '-c', script], { cwd: root });
  let stdout = '';
  child.proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  const streamsClosed = new Promise((resolve) => child.proc.once('close', resolve));
  const code = await waitExit(child, limitMs);
  const wallS = (performance.now() - start) / 1000;
  await stopChild(child);
  await within(streamsClosed, kStreamsCloseMs);
  const output = child.output();
  if (code === 'timeout') throw new Error(`${args[0]} did not finish within ${limitMs / 1000} s`);
  if (code !== 0)
    throw new Error(`${args[0]} exited with code ${code}: ${output.trim().split('\n').slice(-3).join(' / ')}`);
  return { stdout, output, cpuPct: (100 * childCpuSeconds(stdout)) / wallS };
}

/** What runRounds runs, and whom it tells. */
export interface Rounds<S, T> {
  rounds: number;
  servers: readonly S[];
  /** One trial of one server. */
  trial: (server: S) => Promise<T>;
  /** A trial that gave a result. */
  ran: (server: S, t: T) => void;
  /** A trial that threw: `skipped` for a SkipError, else `failed`; the server runs no more trials. */
  stopped: (server: S, how: Ended, message: string) => void;
}

/**
 * Runs the trials in rounds: trial i of every server before trial i+1 of any, so that a slow drift
 * of the machine touches all servers alike.
 */
export async function runRounds<S, T>(r: Rounds<S, T>): Promise<void> {
  const stopped = new Set<S>();
  for (let round = 0; round < r.rounds; round++) {
    for (const server of r.servers) {
      if (stopped.has(server)) continue;
      try {
        r.ran(server, await r.trial(server));
      } catch (err) {
        stopped.add(server);
        r.stopped(server, err instanceof SkipError ? 'skipped' : 'failed', (err as Error).message);
      }
    }
  }
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
