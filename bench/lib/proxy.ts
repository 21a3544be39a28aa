/**
 * The TCP proxy workloads: the load generator on core 1 talks to a proxy pinned to core 0, which
 * relays every connection to the C echo server (`bench/c/echo_epoll.c`), also on core 1. The
 * proxies are the proxy example (native backend, one loop) relaying with Conn.pipe (`gevent-proxy`)
 * and with a `data` handler (`gevent-proxy-js`), and Debian's HAProxy
 * (`haproxy`, `nbthread 1`, mode tcp), the reference that ratios are taken against. HAProxy reads
 * a config written for the trial into a folder of its own, removed when the trial ends.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kLoadCore } from './cpu.js';
import { startChild, stopChild, waitReady, type Child } from './proc.js';
import type { ServerSpec, TrialContext, Workload } from './servers.js';

/** The proxy workloads, each the load generator mode of the same name with `tcp-` for `proxy-`. */
export const kProxyWorkloads = ['proxy-pingpong', 'proxy-pipeline'] as const;

/** A proxy workload. */
export type ProxyWorkload = (typeof kProxyWorkloads)[number];

/** The name of the proxy that proxy ratios are taken against. */
export const kProxyReferenceName = 'haproxy';

/** Whether `workload` runs through a proxy to the C echo upstream. */
export function isProxy(workload: Workload): workload is ProxyWorkload {
  return (kProxyWorkloads as readonly string[]).includes(workload);
}

/** The load generator mode of a workload: a proxy workload loads the proxy like an echo server. */
export function loadgenMode(workload: Workload): string {
  return isProxy(workload) ? workload.replace(/^proxy-/, 'tcp-') : workload;
}

/** Connections HAProxy accepts at once (`maxconn`), well above what any workload opens. */
const kHaproxyMaxconn = 4096;

/** HAProxy's config: one thread, mode tcp, one listener on 127.0.0.1:`port` relaying to the upstream. */
export function haproxyConfig(port: number, upstreamPort: number): string {
  return [
    'global',
    '  nbthread 1',
    `  maxconn ${kHaproxyMaxconn}`,
    'defaults',
    '  mode tcp',
    `  maxconn ${kHaproxyMaxconn}`,
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
    'listen bench',
    `  bind 127.0.0.1:${port}`,
    `  server up 127.0.0.1:${upstreamPort}`,
    '',
  ].join('\n');
}

/** HAProxy's version line, or null when it is not installed. */
export function haproxyVersion(): string | null {
  const run = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (run.error !== undefined || run.status !== 0) return null;
  return /HAProxy version (\S+)/.exec(run.stdout)?.[1] ?? run.stdout.split('\n')[0]!.trim();
}

/** The proxies under the proxy workloads: the proxy example and HAProxy (the reference). */
export function proxyCatalogue(root: string, haproxy: string | null): ServerSpec[] {
  const main = join(root, 'dist', 'examples', 'proxy', 'main.js');
  const example = (name: string, relay: 'pipe' | 'js', how: string): ServerSpec => ({
    name,
    label: () => `examples/proxy, native backend, 1 loop, ${how}`,
    command: (port, _udp, ctx) => [
      process.execPath,
      main,
      '--port',
      String(port),
      '--to',
      `127.0.0.1:${upstreamPortOf(ctx)}`,
      '--loops',
      '1',
      '--backend',
      'native',
      '--relay',
      relay,
    ],
    unavailable: existsSync(main) ? null : 'dist/ is not built (npm run build)',
    reference: false,
  });
  return [
    example('gevent-proxy', 'pipe', 'Conn.pipe (relayed in the C core)'),
    example('gevent-proxy-js', 'js', 'a data handler writing to the other side'),
    {
      name: kProxyReferenceName,
      label: () => `HAProxy${haproxy === null ? '' : ` ${haproxy}`}, nbthread 1, mode tcp (reference)`,
      command: (port, _udp, ctx) => {
        if (ctx === undefined) throw new Error('bench: haproxy needs a trial folder for its config');
        const cfg = join(ctx.dir, 'haproxy.cfg');
        writeFileSync(cfg, haproxyConfig(port, upstreamPortOf(ctx)));
        return ['haproxy', '-db', '-f', cfg];
      },
      unavailable: haproxy === null ? 'haproxy is not installed (apt-get install haproxy)' : null,
      reference: true,
    },
  ];
}

function upstreamPortOf(ctx: TrialContext | undefined): number {
  if (ctx?.upstreamPort === undefined) throw new Error('bench: a proxy needs an upstream port');
  return ctx.upstreamPort;
}

/** The C echo upstream of one proxy trial, on the load core, and the trial's folder. */
export interface Upstream {
  /** The echo server's process. */
  child: Child;
  /** Where the echo server listens (127.0.0.1). */
  port: number;
  /** A folder for the trial's files (HAProxy's config). */
  dir: string;
  /** Stops the echo server and removes the folder. */
  stop(): Promise<void>;
}

/** Starts `bench/bin/echo_epoll` on `port`, pinned to the load core, and waits until it answers. */
export async function startUpstream(root: string, binDir: string, port: number, nofile: number): Promise<Upstream> {
  const dir = mkdtempSync(join(tmpdir(), 'gevent-bench-proxy-'));
  const child = startChild(
    [
      'taskset',
      '-c',
      String(kLoadCore),
      'prlimit',
      `--nofile=${nofile}:${nofile}`,
      join(binDir, 'echo_epoll'),
      String(port),
    ],
    { cwd: root },
  );
  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(child, port, false);
  } catch (err) {
    await stop();
    throw new Error(`the C echo upstream: ${(err as Error).message}: ${child.output().trim()}`, { cause: err });
  }
  return { child, port, dir, stop };
}

/** Server CPU per message in µs: `cpuPct` percent of a core spent on `msgsPerSec` messages. */
export function usPerMessage(cpuPct: number, msgsPerSec: number): number {
  return msgsPerSec > 0 ? (cpuPct / 100) * (1e6 / msgsPerSec) : Number.NaN;
}
