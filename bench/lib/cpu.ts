/**
 * Where the benchmarks run and what CPU they use: the server is pinned to one core and the load
 * generator to another, a trial starts once both cores are quiet, and CpuWindow measures the
 * server process and both cores over the counted interval (from /proc).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { kTicksPerSecond, readCoreBusyTicks, readProcessTicks } from './proc.js';

/** The core every server under test is pinned to (`taskset -c 0`). */
export const kServerCore = 0;
/** The core every load generator is pinned to (`taskset -c 1`). */
export const kLoadCore = 1;
/** Busy time of a core, in percent of it, above which the machine does not count as quiet. */
const kQuietBelowPct = 10;
const kQuietSampleMs = 1000;

/** What CpuWindow measured; percentages are of one core over the window's wall time. */
export interface CpuUsage {
  /** The server process's user plus system time, in clock ticks. */
  serverTicks: number;
  /** The server process, user plus system. */
  serverPct: number;
  /** The kernel's share of serverPct (system time). */
  serverSysPct: number;
  /** Busy time on the server's core, from any process. */
  serverCorePct: number;
  /** Busy time on the load generator's core, from any process. */
  loadCorePct: number;
}

/** CPU of one server process and of both cores, between start() and end(). */
export class CpuWindow {
  #t0 = 0;
  #server0: [number, number] = [0, 0];
  #cores0: [number, number] = [0, 0];

  constructor(private readonly pid: number) {}

  start(): void {
    this.#t0 = performance.now();
    this.#server0 = readProcessTicks(this.pid);
    this.#cores0 = [readCoreBusyTicks(kServerCore), readCoreBusyTicks(kLoadCore)];
  }

  end(): CpuUsage {
    const seconds = (performance.now() - this.#t0) / 1000;
    const pct = (ticks: number): number => (100 * ticks) / kTicksPerSecond / seconds;
    const [user, sys] = readProcessTicks(this.pid);
    const serverTicks = user - this.#server0[0] + (sys - this.#server0[1]);
    return {
      serverTicks,
      serverPct: pct(serverTicks),
      serverSysPct: pct(sys - this.#server0[1]),
      serverCorePct: pct(readCoreBusyTicks(kServerCore) - this.#cores0[0]),
      loadCorePct: pct(readCoreBusyTicks(kLoadCore) - this.#cores0[1]),
    };
  }
}

/** CPU that other processes used on either core, the larger share: a core's busy time less what the server or the load generator used of it. */
export function otherLoadPct(usage: CpuUsage, loadCpuPct: number): number {
  return Math.max(0, usage.serverCorePct - usage.serverPct, usage.loadCorePct - loadCpuPct);
}

/** Busy time of both cores over `ms`, in percent of each. */
async function coreBusyPct(ms: number): Promise<[number, number]> {
  const a = [readCoreBusyTicks(kServerCore), readCoreBusyTicks(kLoadCore)];
  await sleep(ms);
  const b = [readCoreBusyTicks(kServerCore), readCoreBusyTicks(kLoadCore)];
  const pct = (i: number): number => (100 * (b[i]! - a[i]!)) / kTicksPerSecond / (ms / 1000);
  return [pct(0), pct(1)];
}

/**
 * Waits until neither core is busier than 10% over a second, for at most `maxS` seconds (0: does
 * not wait): other work on a shared machine would otherwise be measured as the server's slowness.
 * Returns whether the machine was quiet, which it counts as when not waiting.
 */
export async function waitQuiet(maxS: number): Promise<boolean> {
  if (maxS === 0) return true;
  const deadline = Date.now() + maxS * 1000;
  do {
    const [c0, c1] = await coreBusyPct(kQuietSampleMs);
    if (c0 < kQuietBelowPct && c1 < kQuietBelowPct) return true;
  } while (Date.now() < deadline);
  return false;
}
