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
 *
 * Servers: the HTTP example (one loop, native and portable), a minimal node:http server
 * (servers/node-http.mjs) and Bun.serve (servers/bun-http.ts) when Bun is installed. Every
 * process it starts runs in its own process group and is killed when its trial ends, when the
 * run fails, and on SIGINT/SIGTERM (bench/lib/proc.ts).
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { CpuWindow, kLoadCore, kServerCore, otherLoadPct, waitQuiet } from '../lib/cpu.js';
import { describeMachine, findBun, type Machine } from '../lib/machine.js';
import { commandLine, FlagChecks, findRoot, hasCommand, nameList, parseFlags, runMain } from '../lib/options.js';
import { alignedTable, fmt, machineSection, markdownTable, writeDocs } from '../lib/output.js';
import { freePort, stopChild } from '../lib/proc.js';
import { exampleServers, type ProtocolServer } from '../lib/servers.js';
import { endedNote, oneLine, runLoadTool, runRounds, startServer, type Cell, type LoadToolRun } from '../lib/trial.js';

const kTag = 'bench:http';
const kReference = 'node-http';
const kTargetRatio = 2;
const kWrkSlackMs = 30_000;

interface Options {
  quietWaitS: number;
  durationS: number;
  warmupS: number;
  trials: number;
  conns: number;
  only: string[] | null;
  paths: string[];
  writeDocs: boolean;
}

/** One wrk run against one server. */
interface Trial {
  rps: number;
  latency: string;
  non2xx: number;
  socketErrors: number;
  wrkCpuPct: number;
  serverCpuPct: number;
  /** The kernel's share of serverCpuPct (system time). */
  serverSysPct: number;
  otherLoadPct: number;
  /** Whether both cores were quiet before the server started. */
  quiet: boolean;
}

interface Row extends Cell<Trial> {
  path: string;
  ratio: number | null;
  /** requests/s of every trial, in the order run. */
  all: number[];
}

const kPaths = ['/plaintext', '/json'];
const kExpectedBody: Record<string, string> = { '/plaintext': 'Hello, World!', '/json': '{"message":"Hello, World!"}' };

function parseOptions(argv: string[]): Options {
  const values = parseFlags(
    argv,
    {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      trials: { type: 'string', default: '1' },
      conns: { type: 'string', default: '100' },
      paths: { type: 'string' },
    },
    'usage: npm run bench:http -- [--duration S] [--warmup S] [--trials N] [--conns N] [--only NAMES]\n' +
      '                             [--paths /plaintext,/json] [--no-write-docs] [--quiet-wait S]\n' +
      'servers: gevent-native, gevent-portable, node-http, bun',
  );
  const flags = new FlagChecks(kTag);
  const paths = nameList(values.paths) ?? kPaths;
  flags.known('path', paths, kPaths);
  return {
    durationS: flags.positive('duration', values.duration),
    warmupS: flags.positive('warmup', values.warmup, { zero: true }),
    trials: flags.positive('trials', values.trials, { integer: true }),
    conns: flags.positive('conns', values.conns, { integer: true }),
    only: nameList(values.only),
    paths,
    writeDocs: !values['no-write-docs'],
    quietWaitS: flags.positive('quiet-wait', values['quiet-wait'], { zero: true }),
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

/** GETs `path` once and checks the status and body, so that a broken server is not timed. */
function checkResponse(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.once('end', () => {
        const body = Buffer.concat(parts).toString();
        if (res.statusCode === 200 && body === kExpectedBody[path]) resolve();
        else reject(new Error(`GET ${path} answered ${res.statusCode} ${JSON.stringify(body.slice(0, 80))}`));
      });
    });
    req.once('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} timed out`)));
  });
}

/** Runs wrk from the load core for `seconds` (`wrk -t1 -cN -dS URL`). */
function runWrk(root: string, url: string, seconds: number, conns: number): Promise<LoadToolRun> {
  return runLoadTool(root, ['wrk', '-t1', `-c${conns}`, `-d${seconds}s`, url], seconds * 1000 + kWrkSlackMs);
}

function parseWrk(
  output: string,
): Omit<Trial, 'wrkCpuPct' | 'serverCpuPct' | 'serverSysPct' | 'otherLoadPct' | 'quiet'> {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rps) throw new Error(`no Requests/sec in wrk's output: ${output.trim().split('\n').slice(-4).join(' / ')}`);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    rps: Number(rps[1]),
    latency: /Latency\s+(\S+)/.exec(output)?.[1] ?? '',
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
    socketErrors: errors ? errors.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
  };
}

/** One trial: a fresh server on the server core, checked, warmed up, measured, then stopped whatever happens. */
async function runTrial(root: string, server: ProtocolServer, path: string, opts: Options): Promise<Trial> {
  const quiet = await waitQuiet(opts.quietWaitS);
  const port = await freePort();
  const child = await startServer(root, server.argv(port), port);
  try {
    await checkResponse(port, path);
    const url = `http://127.0.0.1:${port}${path}`;
    if (opts.warmupS > 0) await runWrk(root, url, opts.warmupS, opts.conns);
    const cpu = new CpuWindow(child.pid);
    cpu.start();
    const wrk = await runWrk(root, url, opts.durationS, opts.conns);
    const usage = cpu.end();
    return {
      ...parseWrk(wrk.output),
      wrkCpuPct: wrk.cpuPct,
      serverCpuPct: usage.serverPct,
      serverSysPct: usage.serverSysPct,
      otherLoadPct: otherLoadPct(usage, wrk.cpuPct),
      quiet,
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

/** Caveats that the figures themselves show: a saturated wrk, other load, a busy machine. */
function caveats(rows: Row[]): string[] {
  const cells = (pred: (t: Trial) => boolean): string =>
    rows
      .filter((r) => r.trial !== null && pred(r.trial))
      .map((r) => `${r.server} ${r.path}`)
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

function markdown(
  rows: Row[],
  servers: ProtocolServer[],
  m: Machine,
  opts: Options,
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
  caveats(rows).length > 0
    ? `\n## Notes\n\n${caveats(rows)
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

  const all = catalogue(root, findBun(root));
  new FlagChecks(kTag).known(
    'server',
    opts.only,
    all.map((s) => s.name),
  );
  const servers = all.filter((s) => opts.only === null || opts.only.includes(s.name));
  const skipped = new Map<string, string>();
  for (const s of servers) if (s.unavailable !== null) skipped.set(s.name, s.unavailable);

  const rows: Row[] = [];
  for (const path of opts.paths) {
    const trials = new Map<string, Trial[]>(servers.map((s) => [s.name, []]));
    const failed = new Map<string, string>();
    await runRounds({
      rounds: opts.trials,
      servers: servers.filter((s) => !skipped.has(s.name)),
      trial: (server) => runTrial(root, server, path, opts),
      ran: (server, t) => {
        trials.get(server.name)!.push(t);
        console.log(
          `${path.padEnd(10)} ${server.name.padEnd(16)} ${fmt(t.rps).padStart(9)} req/s  latency ${t.latency}  ` +
            `server CPU ${fmt(t.serverCpuPct)}% (${fmt(t.serverSysPct)}% sys)  wrk CPU ${fmt(t.wrkCpuPct)}%` +
            (t.non2xx + t.socketErrors > 0 ? `  ${t.non2xx} non-2xx, ${t.socketErrors} socket errors` : ''),
        );
      },
      stopped: (server, how, message) => {
        const msg = oneLine(message);
        (how === 'skipped' ? skipped : failed).set(server.name, msg);
        console.log(`${path.padEnd(10)} ${server.name.padEnd(16)} ${how === 'skipped' ? 'skipped' : 'FAILED'}: ${msg}`);
      },
    });
    const ref = trials.get(kReference);
    const refRps = ref !== undefined && ref.length > 0 ? medianTrial(ref).rps : null;
    for (const server of servers) {
      const ts = trials.get(server.name)!;
      const skip = skipped.get(server.name);
      const fail = failed.get(server.name);
      if (ts.length === 0 || fail !== undefined) {
        rows.push({
          path,
          server: server.name,
          status: skip !== undefined ? 'skipped' : 'failed',
          note: skip ?? fail ?? '',
          trial: null,
          ratio: null,
          all: [],
        });
        continue;
      }
      const t = medianTrial(ts);
      rows.push({
        path,
        server: server.name,
        status: 'ok',
        note: '',
        trial: t,
        ratio: refRps === null ? null : t.rps / refRps,
        all: ts.map((x) => x.rps),
      });
    }
  }

  console.log('');
  console.log(alignedTable(kHeader, rows.map(rowCells), kNumeric));
  for (const n of targetNotes(rows, opts.paths)) console.log(`target: ${n}`);
  for (const n of caveats(rows)) console.log(`note: ${n}`);
  if (opts.writeDocs) {
    const command = commandLine('bench:http', 'dist/bench/protocols/http.js', argv);
    writeDocs(root, { 'benchmarks-http.md': markdown(rows, servers, machine, opts, command, wrk) });
  }
  const bad = rows.filter(
    (r) => r.status === 'failed' || (r.trial !== null && r.trial.non2xx + r.trial.socketErrors > 0),
  );
  return bad.length > 0 ? 1 : 0;
}

runMain(main);
