/**
 * The HTTPS run of the HTTP benchmark (`npm run bench:http -- --tls`): the same trials as plain
 * HTTP (http-trial.ts), against servers that serve HTTPS with one ECDSA P-256 certificate made for
 * the run, under two workloads: `keep-alive` and `close` (`Connection: close` on every request, so
 * every request opens a connection and pays a TLS handshake, full or resumed). Each row reports requests/s and the server's CPU time
 * per request, both against node:https: near 90k requests/s over TLS wrk fills its own core, and
 * there CPU per request compares the servers where requests/s cannot. Writes
 * docs/benchmarks-https.md.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { makeCert, kCertCommand, type TestCert } from '../lib/cert.js';
import { kLoadCore, kServerCore } from '../lib/cpu.js';
import { findBun, type Machine } from '../lib/machine.js';
import { commandLine, FlagChecks } from '../lib/options.js';
import { alignedTable, fmt, machineSection, markdownTable, writeDocs } from '../lib/output.js';
import { exampleServers, type ProtocolServer } from '../lib/servers.js';
import { endedNote } from '../lib/trial.js';
import {
  badRows,
  caveats,
  cpuUsPerRequest,
  measure,
  socketErrorNote,
  type HttpOptions,
  type Load,
  type Row,
} from './http-trial.js';

const kTag = 'bench:http';
const kReference = 'node-https';
/** The 1-minute load average per core above which the page says the machine was shared. */
const kBusyLoadPerCore = 0.5;

/** What main() hands over to an HTTPS run. */
export interface HttpsRun {
  root: string;
  machine: Machine;
  /** wrk's version line. */
  wrk: string;
  opts: HttpOptions;
  argv: string[];
}

/** The servers, each serving HTTPS with `cert`. */
function catalogue(root: string, bun: string | null, cert: TestCert): ProtocolServer[] {
  const tlsFlags = ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile];
  const examples = exampleServers(root, 'http');
  const native = examples.find((s) => s.name === 'gevent-native')!;
  const portable = examples.find((s) => s.name === 'gevent-portable')!;
  const server = (file: string): string => join(root, 'bench', 'protocols', 'servers', file);
  return [
    {
      name: 'gevent-native-tls',
      label:
        'examples/http with `--tls-cert --tls-key`, native backend, 1 loop: TLS in the native core over ' +
        "Node's own OpenSSL, ALPN http/1.1",
      argv: (port) => [...native.argv(port), ...tlsFlags],
      unavailable: native.unavailable,
    },
    {
      name: 'gevent-portable-tls',
      label:
        'examples/http with `--tls-cert --tls-key`, portable backend, 1 loop: node:tls does the TLS ' +
        "under gevent's loop",
      argv: (port) => [...portable.argv(port), ...tlsFlags],
      unavailable: portable.unavailable,
    },
    {
      name: kReference,
      label: 'node:https, minimal handler (bench/protocols/servers/node-http.mjs CERT KEY)',
      argv: (port) => [process.execPath, server('node-http.mjs'), String(port), cert.certFile, cert.keyFile],
      unavailable: null,
    },
    {
      name: 'bun-https',
      label: 'Bun.serve with `tls: { cert, key }` (bench/protocols/servers/bun-http.ts PORT CERT KEY)',
      argv: (port) => [bun ?? 'bun', server('bun-http.ts'), String(port), cert.certFile, cert.keyFile],
      unavailable: bun === null ? 'Bun is not installed (node_modules/@oven/bun-linux-x64)' : null,
    },
  ];
}

function workloadName(close: boolean): string {
  return close ? 'Connection: close' : 'keep-alive';
}

/** A row's name in the notes. */
function rowName(r: Row): string {
  return `${r.server} ${workloadName(r.close)} ${r.path}`;
}

const kHeader = [
  'workload',
  'path',
  'server',
  'requests/s',
  'ratio to node:https',
  'server CPU µs/request',
  'CPU/request to node:https',
  'avg latency',
  'server CPU',
  'wrk CPU',
  'notes',
];
const kNumeric = new Set([3, 4, 5, 6, 7, 8, 9]);

function rowCells(r: Row, rows: readonly Row[]): string[] {
  const t = r.trial;
  const where = [workloadName(r.close), r.path, r.server];
  if (t === null) return [...where, '', '', '', '', '', '', '', endedNote(r)];
  const ref = rows.find((x) => x.server === kReference && x.path === r.path && x.close === r.close)?.trial ?? null;
  const notes = [
    t.non2xx > 0 ? `${t.non2xx} non-2xx` : '',
    t.socketErrors > 0 ? socketErrorNote(t) : '',
    t.silentClose ? 'closes without `Connection: close` (see notes)' : '',
    t.resumes === true ? 'resumes TLS sessions' : t.resumes === false ? 'no TLS session resumption' : '',
    t.otherLoadPct >= 10 ? `other load ${fmt(t.otherLoadPct)}%` : '',
    t.quiet ? '' : 'machine busy at start',
    t.wrkCpuPct >= 90 ? 'wrk saturated' : '',
  ].filter((x) => x !== '');
  return [
    ...where,
    fmt(t.rps),
    r.ratio === null ? '' : fmt(r.ratio, 2),
    fmt(cpuUsPerRequest(t), 1),
    ref === null ? '' : fmt(cpuUsPerRequest(t) / cpuUsPerRequest(ref), 2),
    t.latency,
    `${fmt(t.serverCpuPct)}% (${fmt(t.serverSysPct)}% sys)`,
    `${fmt(t.wrkCpuPct)}%`,
    notes.join('; '),
  ];
}

/** The first line of `openssl version`, or null when openssl is missing. */
function opensslVersion(): string | null {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.error !== undefined || r.status !== 0 ? null : r.stdout.trim().split('\n')[0]!;
}

/** What the run saw of the machine's load: the 1-minute load average at its start and end. */
interface LoadSeen {
  start: number;
  end: number;
  cores: number;
}

/** Notes on this run: a shared machine, servers that close silently, then caveats(). */
function runNotes(rows: readonly Row[], load: LoadSeen): string[] {
  const notes: string[] = [];
  if (Math.max(load.start, load.end) > kBusyLoadPerCore * load.cores) {
    notes.push(
      `The machine was shared with other work during this run: the 1-minute load average was ${fmt(load.start, 2)} ` +
        `at the start and ${fmt(load.end, 2)} at the end, on ${load.cores} cores. The figures are noisy; server CPU ` +
        'per request is the column that other load disturbs least.',
    );
  }
  const silent = rows.filter((r) => r.trial?.silentClose === true).map((r) => `${r.server} ${r.path}`);
  if (silent.length > 0) {
    notes.push(
      `${[...new Set(silent)].join(', ')}: answers a request that says \`Connection: close\` and closes the ` +
        'connection, but without `Connection: close` in its response, so wrk takes the connection as kept alive, ' +
        'writes its next request into it and counts a read error when it finds it closed, then reconnects. Each ' +
        'such read error is one reconnection, not a failed request; these are not counted as failures.',
    );
  }
  return [...notes, ...caveats(rows, rowName)];
}

function markdown(
  rows: readonly Row[],
  servers: readonly ProtocolServer[],
  run: HttpsRun,
  command: string,
  load: LoadSeen,
): string {
  const { machine: m, opts } = run;
  const table = markdownTable(
    [...kHeader, 'all trials (requests/s)', 'all trials (server µs/request)'],
    rows.map((r) => [
      ...rowCells(r, rows),
      r.all.map((x) => fmt(x)).join(' / '),
      r.allCpuUs.map((x) => fmt(x, 1)).join(' / '),
    ]),
    kNumeric,
  );
  const notes = runNotes(rows, load);
  const wrk = (close: boolean): string =>
    `taskset -c ${kLoadCore} wrk -t1 -c${opts.conns} -d${opts.durationS}s ${close ? "-H 'Connection: close' " : ''}https://127.0.0.1:PORT/plaintext`;
  return `# HTTPS benchmarks

Written by \`npm run bench:http -- --tls\` (\`bench/protocols/http.ts\` and \`http-tls.ts\`); rerun
it rather than editing this file. The figures come from one run on one machine: compare them with
each other, not with figures from another machine. Plain HTTP is in
[benchmarks-http.md](benchmarks-http.md).

${machineSection(
  m,
  [
    ['Bun', m.bun ?? '(not installed)'],
    ['OpenSSL (Node.js)', process.versions.openssl ?? 'unknown'],
    ['openssl binary', opensslVersion() ?? '(not found)'],
    ['load generator', run.wrk],
    ['load average (1 min), start / end of run', `${fmt(load.start, 2)} / ${fmt(load.end, 2)}`],
    ['date', new Date().toISOString()],
  ],
  command,
).join('\n')}

## Method

Every server serves HTTPS with the same certificate, made for the run into a temporary folder
(removed at its end):

\`\`\`sh
${kCertCommand.join(' ')} -keyout key.pem -out cert.pem
\`\`\`

Each server runs alone, pinned to core ${kServerCore} (\`taskset -c ${kServerCore}\`), with one event loop.
wrk runs pinned to core ${kLoadCore}, in one of two workloads:

- keep-alive: ${opts.conns} connections, each handshaken once and kept open, one request in flight on each:

  \`\`\`sh
  ${wrk(false)}
  \`\`\`

- Connection: close: every request asks the server to close, so every request opens a new
  connection with a TLS handshake:

  \`\`\`sh
  ${wrk(true)}
  \`\`\`

wrk does not make every one of those handshakes a full one: when it closes a connection it keeps
the connection's TLS session (\`SSL_shutdown\`, then \`SSL_clear\`, which keeps a session that was
shut down cleanly) and offers it on the next connection. A server that issues TLS 1.3 session
tickets then resumes part of the handshakes (a pre-shared key with a fresh ECDHE, no certificate
signature), as it would for a browser. The check before each trial connects twice, the second
time offering the session of the first, and the notes column says whether the server resumed it.

Before it is timed, each server is checked once per trial: a GET over TLS that must answer 200
with the expected body, and for Connection: close a request after which the server must close the
connection (a server that keeps it open fails). Then it is warmed up with wrk for ${opts.warmupS} s and measured
for ${opts.durationS} s; ${opts.trials} trial(s) per cell, in rounds, and the median (by requests/s) is shown beside
all trials. Before each trial the run waits (up to ${opts.quietWaitS} s) until neither core has been more
than 10% busy for a second.

- "server CPU µs/request" is the server process's user+system time over the measured interval
  divided by the requests answered in it. Over TLS wrk fills its own core near 90k requests/s
  (every byte it sends and receives is encrypted too), so where wrk is saturated, requests/s
  shows wrk's limit and this column shows the servers' difference.
- "CPU/request to node:https" is that cost over node:https's: below 1.00 is cheaper. The row
  shows the trial with the median requests/s; the last column gives every trial's cost, since
  other load on the cores raises it too (contention for caches and the core), so the lowest of
  them is the least disturbed.
- "server CPU" is the server's CPU in % of one core, with the system (kernel) part in brackets;
  "wrk CPU" is wrk's own user+system time (bash \`times\`) in % of one core.
- Socket errors are wrk's, by kind; a TLS handshake that fails counts as a connect error.
- "other load" is CPU that other processes used on either core while measuring; figures with it
  are less reliable.

Servers:

${servers.map((s) => `- \`${s.name}\`: ${s.label}`).join('\n')}

## Results

${table.join('\n')}
${notes.length > 0 ? `\n## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}

/** The HTTPS run: every workload and path against every server; writes docs/benchmarks-https.md. */
export async function runHttps(run: HttpsRun): Promise<number> {
  const { root, opts } = run;
  const cert = makeCert(kTag);
  try {
    const all = catalogue(root, findBun(root), cert);
    new FlagChecks(kTag).known(
      'server',
      opts.only,
      all.map((s) => s.name),
    );
    const servers = all.filter((s) => opts.only === null || opts.only.includes(s.name));
    const skipped = new Map<string, string>();
    for (const s of servers) if (s.unavailable !== null) skipped.set(s.name, s.unavailable);
    const loads: Load[] = opts.workloads.flatMap((w) => opts.paths.map((path) => ({ path, close: w === 'close' })));
    const load: LoadSeen = { start: os.loadavg()[0]!, end: 0, cores: run.machine.cores };
    const rows = await measure({
      root,
      servers,
      skipped,
      loads,
      scheme: { name: 'https', ca: cert.certPem },
      reference: kReference,
      trials: opts.trials,
      opts,
      label: (l) => `${l.close ? 'close' : 'keep-alive'} ${l.path}`,
    });
    load.end = os.loadavg()[0]!;

    console.log('');
    console.log(
      alignedTable(
        kHeader,
        rows.map((r) => rowCells(r, rows)),
        kNumeric,
      ),
    );
    for (const n of runNotes(rows, load)) console.log(`note: ${n}`);
    if (opts.writeDocs) {
      const command = commandLine('bench:http', 'dist/bench/protocols/http.js', run.argv);
      writeDocs(root, { 'benchmarks-https.md': markdown(rows, servers, run, command, load) });
    }
    return badRows(rows).length > 0 ? 1 : 0;
  } finally {
    cert.remove();
  }
}
