/**
 * Presents results: the console table, docs/benchmarks.md and the bar chart docs/benchmarks.svg
 * (ratios to the C reference, one group of bars per workload). The SVG is written by hand so the
 * benchmark needs no dependency.
 */
import type { Machine } from './machine.js';
import { machineSection } from './output.js';
import { isProxy } from './proxy.js';
import { proxySection } from './proxy-report.js';
import type { Workload } from './servers.js';

export interface Result {
  workload: Workload;
  server: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  note: string;
  /** From the fastest trial, like the CPU figures. */
  msgsPerSec: number;
  mbPerSec: number;
  ratio: number | null;
  loadgenCpuPct: number;
  loadgenSaturated: boolean;
  /**
   * Round-trip times under load in µs, from the fastest trial: the 50th, 99th and 99.9th
   * percentiles and the largest (ping-pong workloads; null for the pipelines and empty cells).
   */
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  maxUs: number | null;
  /** p99Us over the reference's (C, or HAProxy for the proxy workloads). */
  p99Ratio: number | null;
  serverCpuPct: number;
  /** The server's CPU time per message in µs (serverCpuPct over msgsPerSec). */
  serverUsPerMsg: number;
  /** The C echo upstream's CPU on the load core, for the proxy workloads; NaN for the others. */
  upstreamCpuPct: number;
  /** Busy time of the server's core (0) and of the load core (1), from any process or the kernel. */
  serverCorePct: number;
  loadCorePct: number;
  /** CPU used by other processes on the server's or the load generator's core, the larger. */
  otherLoadPct: number;
  /** How the load generator drove its sockets: io_uring or epoll. */
  engine: string;
  /** Some trial started while the machine was still busy after the quiet wait. */
  notQuiet: boolean;
  errors: number;
  losses: number;
  rssPerConnBytes: number | null;
  /** tcp-held: the same from the highest VmRSS sampled during the ping-pong. */
  rssActivePerConnBytes: number | null;
  conns: number;
  trials: number[];
}

export interface RunInfo {
  machine: Machine;
  date: string;
  command: string;
  durationS: number;
  warmupS: number;
  trials: number;
  engines: string[];
  /** HAProxy's version, or null when it is not installed. */
  haproxy: string | null;
  quietWaitS: number;
  notes: string[];
}

const kColors: Record<string, string> = {
  c: '#7f7f7f',
  'gevent-native': '#1f77b4',
  'gevent-portable': '#2ca02c',
  node: '#ff7f0e',
  bun: '#d62728',
};

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 118,698 -> 119k; 466,495,071 -> 466M. */
function fmtK(n: number): string {
  return n >= 1e7 ? `${Math.round(n / 1e6)}M` : `${Math.round(n / 1e3)}k`;
}

function fmtRatio(r: number | null): string {
  return r === null ? 'n/a' : r.toFixed(2);
}

/** "p50 / p99" in µs, or '' where the workload has no latency (pipelines). */
export function fmtLatency(r: Pick<Result, 'p50Us' | 'p99Us'>): string {
  return r.p50Us === null || r.p99Us === null ? '' : `${fmtInt(r.p50Us)} / ${fmtInt(r.p99Us)}`;
}

function fmtPct(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a';
}

function notesOf(r: Result): string {
  const parts: string[] = [];
  if (r.rssPerConnBytes !== null) {
    const active = r.rssActivePerConnBytes === null ? '' : ` (${(r.rssActivePerConnBytes / 1024).toFixed(1)} active)`;
    parts.push(`RSS/conn ${(r.rssPerConnBytes / 1024).toFixed(1)} KiB${active}`);
  }
  if (r.losses > 0) parts.push(`${r.losses} lost`);
  if (r.errors > 0) parts.push(`${r.errors} ERRORS`);
  if (r.loadgenSaturated) parts.push('load generator saturated');
  if (r.otherLoadPct >= 10) parts.push(`other load: ${r.otherLoadPct.toFixed(0)}%`);
  if (r.notQuiet) parts.push('machine busy at start');
  if (r.note) parts.push(r.note);
  return parts.join('; ');
}

interface Row {
  workload: string;
  server: string;
  msgs: string;
  ratio: string;
  mb: string;
  latency: string;
  p99Ratio: string;
  lgCpu: string;
  srvCpu: string;
  trials: string;
  notes: string;
}

function rowOf(r: Result): Row {
  const ok = r.status === 'ok';
  return {
    workload: r.workload,
    server: r.server,
    msgs: ok ? fmtInt(r.msgsPerSec) : r.status,
    ratio: ok ? fmtRatio(r.ratio) : '',
    mb: ok && r.workload === 'tcp-pipeline' ? r.mbPerSec.toFixed(1) : '',
    latency: ok ? fmtLatency(r) : '',
    p99Ratio: ok && r.p99Ratio !== null ? fmtRatio(r.p99Ratio) : '',
    lgCpu: ok ? fmtPct(r.loadgenCpuPct) : '',
    srvCpu: ok ? fmtPct(r.serverCpuPct) : '',
    trials: ok && r.trials.length > 1 ? r.trials.map(fmtK).join(' ') : '',
    notes: notesOf(r),
  };
}

const kHeader: Row = {
  workload: 'workload',
  server: 'server',
  msgs: 'msgs/s',
  ratio: 'ratio to C',
  mb: 'MB/s',
  latency: 'p50 / p99 µs',
  p99Ratio: 'p99 to C',
  lgCpu: 'loadgen CPU',
  srvCpu: 'server CPU',
  trials: 'all trials',
  notes: 'notes',
};

const kKeys = Object.keys(kHeader) as (keyof Row)[];
const kRightAligned = new Set<keyof Row>(['msgs', 'ratio', 'mb', 'latency', 'p99Ratio', 'lgCpu', 'srvCpu']);

/** A fixed-width table for the terminal. */
export function consoleTable(results: Result[]): string {
  const rows = [kHeader, ...results.map(rowOf)];
  const widths = kKeys.map((k) => Math.max(...rows.map((r) => r[k].length)));
  return rows
    .map((r, i) => {
      const line = kKeys
        .map((k, j) => (kRightAligned.has(k) ? r[k].padStart(widths[j]!) : r[k].padEnd(widths[j]!)))
        .join('  ')
        .trimEnd();
      return i === 0 ? `${line}\n${'-'.repeat(line.length)}` : line;
    })
    .join('\n');
}

function markdownTable(results: Result[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const head = `| ${kKeys.map((k) => kHeader[k]).join(' | ')} |`;
  const sep = `|${kKeys.map((k) => (kRightAligned.has(k) ? '---:' : '---')).join('|')}|`;
  const body = results.map(rowOf).map((r) => `| ${kKeys.map((k) => esc(r[k])).join(' | ')} |`);
  return [head, sep, ...body].join('\n');
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A grouped bar chart of ratios to C: one group per workload, one bar per server. */
export function barChartSvg(results: Result[], title: string): string {
  const ok = results.filter((r) => r.status === 'ok' && r.ratio !== null);
  const workloads = [...new Set(ok.map((r) => r.workload))];
  const servers = [...new Set(ok.map((r) => r.server))];
  const barW = 26;
  const groupGap = 34;
  const groupW = Math.max(servers.length, 1) * barW + groupGap;
  const left = 56;
  const top = 48;
  const plotH = 260;
  const legendW = 170;
  const width = left + Math.max(workloads.length, 1) * groupW + legendW;
  const height = top + plotH + 56;
  const maxRatio = Math.max(1, ...ok.map((r) => r.ratio ?? 0));
  const yMax = Math.ceil(maxRatio * 4) / 4;
  const y = (v: number): number => top + plotH - (v / yMax) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${xml(title)}</text>`,
  );
  for (let t = 0; t <= yMax + 1e-9; t += 0.25) {
    const ty = y(t).toFixed(1);
    const stroke = Math.abs(t - 1) < 1e-9 ? '#555555" stroke-dasharray="5,3' : '#e5e5e5';
    out.push(`<line x1="${left}" y1="${ty}" x2="${left + workloads.length * groupW}" y2="${ty}" stroke="${stroke}"/>`);
    out.push(`<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(2)}</text>`);
  }
  out.push(
    `<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">ratio to C (msgs/s)</text>`,
  );
  workloads.forEach((w, gi) => {
    const gx = left + gi * groupW + groupGap / 2;
    servers.forEach((s, si) => {
      const r = ok.find((x) => x.workload === w && x.server === s);
      if (!r || r.ratio === null) return;
      const bx = gx + si * barW;
      const by = y(r.ratio);
      out.push(
        `<rect x="${bx + 2}" y="${by.toFixed(1)}" width="${barW - 4}" height="${(top + plotH - by).toFixed(1)}" fill="${kColors[s] ?? '#9467bd'}"><title>${xml(`${s} ${w}: ${r.ratio.toFixed(2)}`)}</title></rect>`,
        `<text x="${bx + barW / 2}" y="${(by - 4).toFixed(1)}" text-anchor="middle" font-size="10">${r.ratio.toFixed(2)}</text>`,
      );
    });
    out.push(
      `<text x="${gx + (servers.length * barW) / 2}" y="${top + plotH + 20}" text-anchor="middle">${xml(w)}</text>`,
    );
  });
  out.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${left + workloads.length * groupW}" y2="${top + plotH}" stroke="#333333"/>`,
  );
  const lx = left + workloads.length * groupW + 16;
  servers.forEach((s, i) => {
    const ly = top + 10 + i * 20;
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${kColors[s] ?? '#9467bd'}"/>`,
      `<text x="${lx + 18}" y="${ly}">${xml(s)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** docs/benchmarks.md: machine, date, command, method, table, chart and notes. */
export function markdownReport(all: Result[], info: RunInfo, svgName: string): string {
  const m = info.machine;
  const results = all.filter((r) => !isProxy(r.workload));
  const proxies = all.filter((r) => isProxy(r.workload));
  const servers = new Map<string, Set<string>>();
  for (const r of results) servers.set(r.server, (servers.get(r.server) ?? new Set<string>()).add(r.label));
  const lines = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (`bench/run.ts`); rerun it rather than editing this file. The figures',
    'are ratios measured in one run on one machine: compare them with each other, not with figures',
    'from another machine.',
    '',
    ...machineSection(
      m,
      [
        ['Bun', m.bun ?? 'not installed'],
        ['HAProxy', info.haproxy ?? 'not installed'],
        ['C compiler', `${m.gcc} (-O2)`],
        ['open-file limit', String(m.nofile)],
        ['date', info.date],
      ],
      info.command,
    ),
    '',
    '## Method',
    '',
    'Each server runs alone, pinned to core 0 (`taskset -c 0`); the load generator',
    '(`bench/c/loadgen.c`, one thread) is pinned to core 1 and checks every echoed byte. It opens',
    'connections with epoll and drives the load with io_uring where the kernel has it (here:',
    `${info.engines.length > 0 ? info.engines.map((e) => `\`${e}\``).join(', ') : 'none ran'}): every send and receive of one`,
    'wake-up goes into a single system call, the ping-pong modes use one multishot receive per socket',
    'and sends that post a completion only on failure, so that its own cost per message is little',
    "more than the kernel's socket work.",
    `Each trial warms up for ${info.warmupS} s, then counts for ${info.durationS} s;`,
    `${info.trials} trial(s) per cell, run in rounds (every server once, then again), so that a slow`,
    'drift of the machine touches every server alike. The fastest trial stands for the cell, since',
    'other work on the machine only ever slows a trial down; "all trials" lists every figure.',
    'A fresh server is started for every trial,',
    info.quietWaitS > 0
      ? `once neither core has been more than 10% busy for a second (waiting up to ${info.quietWaitS} s).`
      : 'without waiting for the machine to be quiet.',
    '',
    '- `tcp-pingpong`: 100 connections, each with exactly one 6-byte message in flight.',
    '- `tcp-pipeline`: 100 connections, each keeping 64 KiB in flight; msgs/s counts 6-byte messages.',
    '- `udp-pingpong`: 100 UDP sockets, one 6-byte datagram in flight each; a datagram unanswered',
    '  within 200 ms is sent again and counted as lost.',
    '- `tcp-held`: 9000 connections opened and echoed once, then ping-pong on all of them. RSS/conn is',
    '  (server VmRSS after all are connected and echoed once − VmRSS before) / connections; "active"',
    '  in brackets takes the highest VmRSS sampled every 200 ms during the ping-pong instead.',
    '',
    '"ratio to C" divides by the C reference of the same workload (`bench/c/echo_epoll.c` for TCP,',
    '`bench/c/udp_echo_mmsg.c` for UDP). "loadgen CPU" is the load generator\'s own user+system time',
    'over the counted interval: well under 100% means the load generator was not the limit.',
    '"server CPU" is the same for the server process. "other load" is CPU that other processes used',
    'on either core during the counted interval; figures with it are less reliable.',
    '"p50 / p99 µs" is the round-trip time of a message under that load, from the wake-up of the load',
    'generator that sent it to the wake-up that saw the last byte of its echo (50th and 99th',
    'percentile over the counted interval of the fastest trial; not for `tcp-pipeline`); "p99 to C"',
    "divides the p99 by the C reference's.",
    "RSS counts the server process's memory only: socket buffers live in the kernel, which is why",
    'the C server shows about 0 KiB per connection.',
    '',
    'Servers:',
    '',
    ...[...servers].map(([name, labels]) => `- \`${name}\`: ${[...labels].join('; ')}`),
    '',
    '## Results',
    '',
    markdownTable(results),
    '',
    `![ratio to C per workload](${svgName})`,
    '',
    ...(proxies.length > 0 ? proxySection(proxies, info) : []),
  ];
  if (info.notes.length > 0) {
    lines.push('## Notes', '', ...info.notes.map((n) => `- ${n}`), '');
  }
  return lines.join('\n');
}
