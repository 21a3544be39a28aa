/**
 * The HTTP benchmark, run by `npm run bench:http`: for every path and every server, starts the
 * server pinned to core 0, checks one response, warms it up, then loads it with wrk pinned to
 * core 1 (`taskset -c 1 wrk -t1 -cN -dS URL`) and records requests/s, the ratio to node:http, the
 * server's CPU and wrk's own CPU (to show that the load generator was not the limit). Prints a
 * table and writes docs/benchmarks-http.md.
 *
 *   npm run bench:http -- [--duration S] [--warmup S] [--trials N] [--conns N]
 *                         [--only gevent-native,gevent-portable,node-http,bun] [--paths /plaintext,/json]
 *                         [--no-write-docs] [--quiet-wait S]
 *   npm run bench:http -- --tls [--workloads keep-alive,close] [--only gevent-native-tls,gevent-portable-tls,node-https,bun-https]
 *                         [--paths /plaintext] [the other flags above]
 *
 * Servers: the HTTP example (one loop, native and portable), a minimal node:http server
 * (servers/node-http.mjs) and Bun.serve (servers/bun-http.ts) when Bun is installed. Every
 * process it starts runs in its own process group and is killed when its trial ends, when the
 * run fails, and on SIGINT/SIGTERM (bench/lib/proc.ts).
 *
 * With --tls every server serves HTTPS instead, with one ECDSA P-256 certificate made for the run
 * by openssl (and removed at its end), under two workloads: `keep-alive` (connections kept open)
 * and `close` (`-H 'Connection: close'`: a TLS handshake per request). That run writes
 * docs/benchmarks-https.md and leaves docs/benchmarks-http.md alone (http-tls.ts).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kLoadCore, kServerCore } from '../lib/cpu.js';
import { describeMachine, findBun, type Machine } from '../lib/machine.js';
import { commandLine, FlagChecks, findRoot, hasCommand, nameList, parseFlags, runMain } from '../lib/options.js';
import { alignedTable, fmt, machineSection, markdownTable, writeDocs } from '../lib/output.js';
import { exampleServers, type ProtocolServer } from '../lib/servers.js';
import { endedNote } from '../lib/trial.js';
import { runHttps } from './http-tls.js';
import {
  badRows,
  caveats,
  kTlsWorkloads,
  measure,
  type HttpOptions,
  type Row,
  type TlsWorkload,
  type Trial,
} from './http-trial.js';

const kTag = 'bench:http';
const kReference = 'node-http';
const kTargetRatio = 2;

const kPaths = ['/plaintext', '/json'];
/** The paths an HTTPS run loads unless --paths says otherwise. */
const kTlsPaths = ['/plaintext'];

function parseOptions(argv: string[]): HttpOptions {
  const values = parseFlags(
    argv,
    {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      trials: { type: 'string', default: '1' },
      conns: { type: 'string', default: '100' },
      paths: { type: 'string' },
      tls: { type: 'boolean', default: false },
      workloads: { type: 'string' },
    },
    'usage: npm run bench:http -- [--duration S] [--warmup S] [--trials N] [--conns N] [--only NAMES]\n' +
      '                             [--paths /plaintext,/json] [--no-write-docs] [--quiet-wait S]\n' +
      '                             [--tls [--workloads keep-alive,close]]\n' +
      'servers: gevent-native, gevent-portable, node-http, bun;\n' +
      '  with --tls: gevent-native-tls, gevent-portable-tls, node-https, bun-https (HTTPS, written to docs/benchmarks-https.md)',
  );
  const flags = new FlagChecks(kTag);
  const paths = nameList(values.paths) ?? (values.tls ? kTlsPaths : kPaths);
  flags.known('path', paths, kPaths);
  const workloads = nameList(values.workloads);
  if (workloads !== null && !values.tls) throw new Error(`${kTag}: --workloads goes with --tls`);
  flags.known('workload', workloads, kTlsWorkloads);
  return {
    durationS: flags.positive('duration', values.duration),
    warmupS: flags.positive('warmup', values.warmup, { zero: true }),
    trials: flags.positive('trials', values.trials, { integer: true }),
    conns: flags.positive('conns', values.conns, { integer: true }),
    only: nameList(values.only),
    paths,
    writeDocs: !values['no-write-docs'],
    quietWaitS: flags.positive('quiet-wait', values['quiet-wait'], { zero: true }),
    tls: values.tls,
    workloads: (workloads ?? kTlsWorkloads) as TlsWorkload[],
  };
}

function catalogue(root: string, bun: string | null): ProtocolServer[] {
  return [
    ...exampleServers(root, 'http'),
    {
      name: kReference,
      label: 'node:http, minimal handler (bench/protocols/servers/node-http.mjs)',
      argv: (port) => [process.execPath, join(root, 'bench', 'protocols', 'servers', 'node-http.mjs'), String(port)],
      unavailable: null,
    },
    {
      name: 'bun',
      label: 'Bun.serve (bench/protocols/servers/bun-http.ts)',
      argv: (port) => [bun ?? 'bun', join(root, 'bench', 'protocols', 'servers', 'bun-http.ts'), String(port)],
      unavailable: bun === null ? 'Bun is not installed (node_modules/@oven/bun-linux-x64)' : null,
    },
  ];
}

function rowCells(r: Row): string[] {
  const t = r.trial;
  if (t === null) return [r.path, r.server, '', '', '', '', '', '', endedNote(r)];
  const notes = [
    t.non2xx > 0 ? `${t.non2xx} non-2xx` : '',
    t.socketErrors > 0 ? `${t.socketErrors} socket errors` : '',
    t.otherLoadPct >= 10 ? `other load ${fmt(t.otherLoadPct)}%` : '',
    t.quiet ? '' : 'machine busy at start',
    t.wrkCpuPct >= 90 ? 'wrk saturated' : '',
  ].filter((x) => x !== '');
  return [
    r.path,
    r.server,
    fmt(t.rps),
    r.ratio === null ? '' : fmt(r.ratio, 2),
    fmt(t.rps / (t.serverCpuPct / 100)),
    t.latency,
    `${fmt(t.serverCpuPct)}% (${fmt(t.serverSysPct)}% sys)`,
    `${fmt(t.wrkCpuPct)}%`,
    notes.join('; '),
  ];
}

const kHeader = [
  'path',
  'server',
  'requests/s',
  'ratio to node:http',
  'requests per CPU-second',
  'avg latency',
  'server CPU',
  'wrk CPU',
  'notes',
];
/** Columns right-aligned in the tables (the numeric ones). */
const kNumeric = new Set([2, 3, 4, 5, 6, 7]);

function targetNotes(rows: Row[], paths: string[]): string[] {
  return paths.map((path) => {
    const native = rows.find((r) => r.path === path && r.server === 'gevent-native');
    if (native?.ratio === null || native?.ratio === undefined)
      return `${path}: no ratio for gevent-native (it or node:http did not run).`;
    const met = native.ratio >= kTargetRatio;
    const ref = rows.find((r) => r.path === path && r.server === kReference)!.trial!;
    const perCpu = (t: Trial): number => t.rps / (t.serverCpuPct / 100);
    const cpuRatio = perCpu(native.trial!) / perCpu(ref);
    return (
      `${path}: gevent-native is ${fmt(native.ratio, 2)}x node:http in requests/s, so the target of ${kTargetRatio}x is ` +
      `${met ? 'met' : 'MISSED'}; in requests per CPU-second it is ${fmt(cpuRatio, 2)}x.`
    );
  });
}

function markdown(
  rows: Row[],
  servers: ProtocolServer[],
  m: Machine,
  opts: HttpOptions,
  command: string,
  wrk: string,
): string {
  const header = [...kHeader, 'all trials (requests/s)'];
  const table = markdownTable(
    header,
    rows.map((r) => [...rowCells(r), r.all.map((x) => fmt(x)).join(' / ')]),
    kNumeric,
  );
  return `# HTTP benchmarks

Written by \`npm run bench:http\` (\`bench/protocols/http.ts\`); rerun it rather than editing this
file. The figures come from one run on one machine: compare them with each other, not with
figures from another machine.
HTTPS, with a TLS handshake per request as well, is in [benchmarks-https.md](benchmarks-https.md)
(\`npm run bench:http -- --tls\`).

${machineSection(
  m,
  [
    ['Bun', m.bun ?? '(not installed)'],
    ['load generator', wrk],
    ['date', new Date().toISOString()],
  ],
  command,
).join('\n')}

## Method

Each server runs alone, pinned to core ${kServerCore} (\`taskset -c ${kServerCore}\`), with one event loop.
wrk runs pinned to core ${kLoadCore}:

\`\`\`sh
taskset -c ${kLoadCore} wrk -t1 -c${opts.conns} -d${opts.durationS}s http://127.0.0.1:PORT/plaintext
\`\`\`

Each server is started fresh for every path and trial, its response is checked once, it is warmed
up with wrk for ${opts.warmupS} s, then measured for ${opts.durationS} s; ${opts.trials} trial(s) per cell, in rounds (trial i of
every server before trial i+1 of any), and the median is shown beside all trials. Before each
trial the run waits (up to ${opts.quietWaitS} s) until neither core has been more than 10% busy for a second.
wrk keeps one request in flight per connection (no pipelining). Responses are the TechEmpower
shapes: \`Hello, World!\` as text/plain, and \`{"message":"Hello, World!"}\` serialized per
request, each with Server, Date, Content-Type and Content-Length.

- "server CPU" is the server process's user+system time over the measured interval, in % of one
  core, with the system (kernel) part in brackets. On loopback the kernel part includes TCP work
  for both ends of each send, which costs every server alike.
- "requests per CPU-second" divides requests/s by the server's CPU: its cost per request, which
  other load on a shared machine disturbs less than requests/s.
- "wrk CPU" is wrk's own user+system time (bash \`times\`), in % of one core: well under 100%
  means wrk was not the limit.
- "other load" is CPU that other processes used on either core while measuring; figures with it
  are less reliable.

Servers:

${servers.map((s) => `- \`${s.name}\`: ${s.label}`).join('\n')}

## Results

${table.join('\n')}

## Target

One loop on one core, HTTP at least ${kTargetRatio}x node:http:

${targetNotes(rows, opts.paths)
  .map((n) => `- ${n}`)
  .join('\n')}
${
  caveats(rows, rowName).length > 0
    ? `\n## Notes\n\n${caveats(rows, rowName)
        .map((n) => `- ${n}`)
        .join('\n')}\n`
    : ''
}`;
}

/** `wrk <version>` from `wrk -v` (which exits 1 after printing it); null when wrk is missing. */
function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error !== undefined) return null;
  return /^wrk \S+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? 'wrk';
}

/** A row's name in the notes: server and path. */
function rowName(r: Row): string {
  return `${r.server} ${r.path}`;
}

/** The plain-HTTP run: every path against every server; writes docs/benchmarks-http.md. */
async function runHttp(
  root: string,
  machine: Machine,
  wrk: string,
  opts: HttpOptions,
  argv: string[],
): Promise<number> {
  const all = catalogue(root, findBun(root));
  new FlagChecks(kTag).known(
    'server',
    opts.only,
    all.map((s) => s.name),
  );
  const servers = all.filter((s) => opts.only === null || opts.only.includes(s.name));
  const skipped = new Map<string, string>();
  for (const s of servers) if (s.unavailable !== null) skipped.set(s.name, s.unavailable);

  const rows = await measure({
    root,
    servers,
    skipped,
    loads: opts.paths.map((path) => ({ path, close: false })),
    scheme: { name: 'http' },
    reference: kReference,
    trials: opts.trials,
    opts,
    label: (load) => load.path,
  });

  console.log('');
  console.log(alignedTable(kHeader, rows.map(rowCells), kNumeric));
  for (const n of targetNotes(rows, opts.paths)) console.log(`target: ${n}`);
  for (const n of caveats(rows, rowName)) console.log(`note: ${n}`);
  if (opts.writeDocs) {
    const command = commandLine('bench:http', 'dist/bench/protocols/http.js', argv);
    writeDocs(root, { 'benchmarks-http.md': markdown(rows, servers, machine, opts, command, wrk) });
  }
  return badRows(rows).length > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  const wrk = wrkVersion();
  if (wrk === null) throw new Error(`${kTag}: wrk is not installed (Debian: apt-get install -y wrk)`);
  if (!hasCommand('taskset', ['-V'])) throw new Error(`${kTag}: taskset is not installed (Debian: util-linux)`);
  const root = findRoot(kTag, 'examples/');
  const machine = describeMachine(root);
  console.log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}; node ${machine.node}, bun ${machine.bun ?? '(not installed)'}`,
  );
  if (machine.cores < 2) console.log('note: fewer than 2 cores, so the server and wrk share one');
  return opts.tls ? runHttps({ root, machine, wrk, opts, argv }) : runHttp(root, machine, wrk, opts, argv);
}

runMain(main);
