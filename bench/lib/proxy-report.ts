/**
 * The TCP proxy results: their console table and the "TCP proxy" section of docs/benchmarks.md,
 * with ratios to HAProxy and the proxy's CPU time per message.
 */
import { alignedTable, fmt, markdownTable } from './output.js';
import { kProxyReferenceName, usPerMessage } from './proxy.js';
import { fmtLatency, type Result, type RunInfo } from './report.js';

const kHeader = [
  'workload',
  'proxy',
  'msgs/s',
  `ratio to ${kProxyReferenceName}`,
  'MB/s',
  'p50 / p99 µs',
  `p99 to ${kProxyReferenceName}`,
  'proxy CPU',
  'proxy CPU µs/msg',
  'core 0 busy',
  'core 0 µs/msg',
  'loadgen CPU',
  'upstream CPU',
  'core 1 busy',
  'all trials',
  'notes',
] as const;

const kNumeric = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);

function pct(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a';
}

/** µs per message to three significant digits: 15.3, 0.00335. */
export function usText(us: number): string {
  return Number.isFinite(us) ? us.toPrecision(3) : 'n/a';
}

/** 43,490 -> 43k; 166,535,357 -> 167M (as the echo table writes its trials). */
function kilo(n: number): string {
  return n >= 1e7 ? `${Math.round(n / 1e6)}M` : `${Math.round(n / 1e3)}k`;
}

function notesOf(r: Result): string {
  const parts: string[] = [];
  if (r.errors > 0) parts.push(`${r.errors} ERRORS`);
  if (r.loadgenSaturated) parts.push('load generator saturated');
  if (r.notQuiet) parts.push('machine busy at start');
  if (r.note) parts.push(r.note);
  return parts.join('; ');
}

function rowOf(r: Result): string[] {
  if (r.status !== 'ok') return [r.workload, r.server, r.status, ...kHeader.slice(3, -1).map(() => ''), notesOf(r)];
  return [
    r.workload,
    r.server,
    fmt(r.msgsPerSec),
    r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
    r.workload === 'proxy-pipeline' ? r.mbPerSec.toFixed(1) : '',
    fmtLatency(r),
    r.p99Ratio === null ? '' : r.p99Ratio.toFixed(2),
    pct(r.serverCpuPct),
    usText(r.serverUsPerMsg),
    pct(r.serverCorePct),
    usText(usPerMessage(r.serverCorePct, r.msgsPerSec)),
    pct(r.loadgenCpuPct),
    pct(r.upstreamCpuPct),
    pct(r.loadCorePct),
    r.trials.length > 1 ? r.trials.map(kilo).join(' ') : '',
    notesOf(r),
  ];
}

/** The proxy results as a fixed-width table for the terminal. */
export function proxyConsoleTable(results: Result[]): string {
  return alignedTable(kHeader, results.map(rowOf), kNumeric);
}

/** The "TCP proxy" section of docs/benchmarks.md, as lines: method, proxies and the table. */
export function proxySection(results: Result[], info: RunInfo): string[] {
  const labels = new Map<string, string>();
  for (const r of results) labels.set(r.server, r.label);
  return [
    '## TCP proxy',
    '',
    'The load generator (core 1) talks to a proxy pinned to core 0, which relays every connection to',
    'the C echo server `bench/c/echo_epoll.c`, pinned to core 1 beside the load generator; a fresh',
    'proxy and a fresh echo server are started for every trial. The load generator checks every',
    'echoed byte, so every byte went through the proxy both ways.',
    '',
    '- `proxy-pingpong`: 100 connections, each with exactly one 6-byte message in flight.',
    '- `proxy-pipeline`: 100 connections, each keeping 64 KiB in flight; msgs/s counts 6-byte messages.',
    '',
    `"ratio to ${kProxyReferenceName}" divides by HAProxy's msgs/s on the same workload. "proxy CPU" is the`,
    'proxy process\'s user+system time over the counted interval, in percent of one core; "proxy CPU',
    'µs/msg" is that time divided by the messages echoed: what relaying one message to the upstream',
    'and its echo back cost the proxy. "core 0 busy" is all the busy time of the proxy\'s core: the',
    "proxy's own and the kernel's softirq work for its sockets, which on loopback runs on the sending",
    "core and is not counted as the process's (and any other process's, which a quiet machine keeps",
    'near 0); "core 0 µs/msg" divides it by the messages, the fuller cost of relaying one. "upstream',
    'CPU" is the echo server\'s, on core 1 with the load generator; "core 1 busy" is all of core 1:',
    'near 100% means core 1 rather than the proxy was the limit. "p50 / p99 µs" is the round-trip',
    'time of a message through the proxy under that load (50th and 99th percentile, not for',
    `\`proxy-pipeline\`); "p99 to ${kProxyReferenceName}" divides the p99 by HAProxy's.`,
    '',
    `HAProxy ${info.haproxy ?? '(not installed)'} runs \`haproxy -db -f CFG\` with \`nbthread 1\`, \`maxconn 4096\`,`,
    '`mode tcp`, timeouts of 5 s (connect) and 1 h (client, server), and one `listen` section that',
    'binds 127.0.0.1 and has the echo server as its only `server`; everything else is as Debian ships it.',
    '',
    'Proxies:',
    '',
    ...[...labels].map(([name, label]) => `- \`${name}\`: ${label}`),
    '',
    ...markdownTable(
      kHeader,
      results.map((r) => rowOf(r).map((c) => c.replace(/\|/g, '\\|'))),
      kNumeric,
    ),
    '',
  ];
}
