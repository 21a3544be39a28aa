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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine, findBun, type Machine } from '../lib/machine.js';
import { freePort, kTicksPerSecond, readCoreBusyTicks, startChild, stopChild, waitReady } from '../lib/proc.js';

const kServerCore = 0;
const kLoadCore = 1;
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

interface Server {
  name: string;
  label: string;
  argv: (port: number) => string[];
  unavailable: string | null;
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

interface Row {
  path: string;
  server: string;
  status: 'ok' | 'skipped' | 'failed';
  note: string;
  trial: Trial | null;
  ratio: number | null;
  /** requests/s of every trial, in the order run. */
  all: number[];
}

const kPaths = ['/plaintext', '/json'];
const kExpectedBody: Record<string, string> = { '/plaintext': 'Hello, World!', '/json': '{"message":"Hello, World!"}' };

class SkipError extends Error {}

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'examples'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench:http: cannot find the project root (package.json beside examples/)');
    dir = up;
  }
  return dir;
}

function positive(name: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`bench:http: --${name} must be a positive ${integer ? 'integer' : 'number'}, got ${raw}`);
  }
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      trials: { type: 'string', default: '1' },
      conns: { type: 'string', default: '100' },
      only: { type: 'string' },
      paths: { type: 'string' },
      'no-write-docs': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '10' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:http -- [--duration S] [--warmup S] [--trials N] [--conns N] [--only NAMES]\n' +
        '                             [--paths /plaintext,/json] [--no-write-docs] [--quiet-wait S]\n' +
        'servers: gevent-native, gevent-portable, node-http, bun',
    );
    process.exit(0);
  }
  const list = (s: string | undefined): string[] | null => (s === undefined ? null : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
  const paths = list(values.paths) ?? kPaths;
  for (const p of paths) if (!kPaths.includes(p)) throw new Error(`bench:http: unknown path ${p}; the paths are ${kPaths.join(', ')}`);
  return {
    durationS: positive('duration', values.duration, false),
    warmupS: values.warmup === '0' ? 0 : positive('warmup', values.warmup, false),
    trials: positive('trials', values.trials, true),
    conns: positive('conns', values.conns, true),
    only: list(values.only),
    paths,
    writeDocs: !values['no-write-docs'],
    quietWaitS: values['quiet-wait'] === '0' ? 0 : positive('quiet-wait', values['quiet-wait'], false),
  };
}

function hasCommand(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}

function catalogue(root: string, bun: string | null): Server[] {
  const example = join(root, 'dist', 'examples', 'http', 'main.js');
  const built = existsSync(example) ? null : 'dist/ is not built (npm run build)';
  const gevent = (backend: string) => (port: number) => [process.execPath, example, '--port', String(port), '--loops', '1', '--backend', backend];
  return [
    { name: 'gevent-native', label: 'examples/http, native backend, 1 loop', argv: gevent('native'), unavailable: built },
    { name: 'gevent-portable', label: 'examples/http, portable backend (node:net), 1 loop', argv: gevent('portable'), unavailable: built },
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

/** The child CPU seconds that bash's `times` prints on its second line ("0m1.5s 0m0.2s"). */
function childCpuSeconds(output: string): number {
  const lines = output.trim().split('\n');
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1]!.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

/** Runs wrk from core 1 for `seconds`; returns its output and its own CPU in % of one core. */
async function runWrk(url: string, seconds: number, conns: number, root: string): Promise<{ output: string; cpuPct: number }> {
  const wrk = `taskset -c ${kLoadCore} wrk -t1 -c${conns} -d${seconds}s ${url}; times`;
  const start = performance.now();
  const child = startChild(['bash', '-c', wrk], { cwd: root });
  const code = await Promise.race([child.exited, sleep(seconds * 1000 + kWrkSlackMs).then(() => 'timeout' as const)]);
  const wallS = (performance.now() - start) / 1000;
  await stopChild(child);
  const output = child.output();
  if (code === 'timeout') throw new Error(`wrk did not finish within ${seconds + kWrkSlackMs / 1000} s`);
  if (code !== 0) throw new Error(`wrk exited with code ${code}: ${output.trim().split('\n').slice(-3).join(' / ')}`);
  return { output, cpuPct: (100 * childCpuSeconds(output)) / wallS };
}

/** User and system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15). */
function readUserSysTicks(pid: number): [user: number, sys: number] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(fields[11]), Number(fields[12])];
  } catch {
    return [Number.NaN, Number.NaN];
  }
}

function parseWrk(output: string): Omit<Trial, 'wrkCpuPct' | 'serverCpuPct' | 'serverSysPct' | 'otherLoadPct' | 'quiet'> {
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

/**
 * Waits until neither core is busier than 10% over a second, for at most `maxS` seconds, so that
 * other work on a shared machine is not measured as a server's slowness. Returns whether it was.
 */
async function waitQuiet(maxS: number): Promise<boolean> {
  const deadline = Date.now() + maxS * 1000;
  do {
    const a = [readCoreBusyTicks(kServerCore), readCoreBusyTicks(kLoadCore)];
    await sleep(1000);
    const busy = [readCoreBusyTicks(kServerCore) - a[0]!, readCoreBusyTicks(kLoadCore) - a[1]!].map((t) => (100 * t) / kTicksPerSecond);
    if (busy.every((pct) => pct < 10)) return true;
  } while (Date.now() < deadline);
  return false;
}

/** One trial: a fresh server on core 0, checked, warmed up, measured, then stopped whatever happens. */
async function runTrial(root: string, server: Server, path: string, opts: Options): Promise<Trial> {
  const quiet = opts.quietWaitS === 0 || (await waitQuiet(opts.quietWaitS));
  const port = await freePort();
  const child = startChild(['taskset', '-c', String(kServerCore), ...server.argv(port)], { cwd: root });
  try {
    try {
      await waitReady(child, port, false);
    } catch (err) {
      const out = child.output();
      const why = /gevent: [^\n]*/.exec(out)?.[0] ?? out.trim().split('\n').slice(-2).join(' / ');
      if (/ERR_GEVENT_BACKEND_UNAVAILABLE|BackendUnavailableError|native addon not available/.test(out)) throw new SkipError(why);
      throw new Error(`${(err as Error).message}${why ? `: ${why}` : ''}`);
    }
    await checkResponse(port, path);
    const url = `http://127.0.0.1:${port}${path}`;
    if (opts.warmupS > 0) await runWrk(url, opts.warmupS, opts.conns, root);
    const server0 = readUserSysTicks(child.pid);
    const cores0 = [readCoreBusyTicks(kServerCore), readCoreBusyTicks(kLoadCore)];
    const t0 = performance.now();
    const wrk = await runWrk(url, opts.durationS, opts.conns, root);
    const seconds = (performance.now() - t0) / 1000;
    const pct = (ticks: number): number => (100 * ticks) / kTicksPerSecond / seconds;
    const server1 = readUserSysTicks(child.pid);
    const serverSysPct = pct(server1[1] - server0[1]);
    const serverCpuPct = pct(server1[0] - server0[0]) + serverSysPct;
    const core0 = pct(readCoreBusyTicks(kServerCore) - cores0[0]!);
    const core1 = pct(readCoreBusyTicks(kLoadCore) - cores0[1]!);
    return {
      ...parseWrk(wrk.output),
      wrkCpuPct: wrk.cpuPct,
      serverCpuPct,
      serverSysPct,
      otherLoadPct: Math.max(0, core0 - serverCpuPct, core1 - wrk.cpuPct),
      quiet,
    };
  } finally {
    await stopChild(child);
  }
}

function median(trials: Trial[]): Trial {
  const sorted = [...trials].sort((a, b) => a.rps - b.rps);
  return sorted[sorted.length >> 1]!;
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '?';
}

function rowCells(r: Row): string[] {
  const t = r.trial;
  if (t === null) return [r.path, r.server, '', '', '', '', '', '', r.status === 'skipped' ? `skipped: ${r.note}` : `FAILED: ${r.note}`];
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

const kHeader = ['path', 'server', 'requests/s', 'ratio to node:http', 'requests per CPU-second', 'avg latency', 'server CPU', 'wrk CPU', 'notes'];
/** Columns right-aligned in the tables (the numeric ones). */
const kNumeric = new Set([2, 3, 4, 5, 6, 7]);

function consoleTable(rows: Row[]): string {
  const cells = [kHeader, ...rows.map(rowCells)];
  const widths = kHeader.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells.map((c) => c.map((x, i) => (kNumeric.has(i) ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function targetNotes(rows: Row[], paths: string[]): string[] {
  return paths.map((path) => {
    const native = rows.find((r) => r.path === path && r.server === 'gevent-native');
    if (native?.ratio === null || native?.ratio === undefined) return `${path}: no ratio for gevent-native (it or node:http did not run).`;
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
    rows.filter((r) => r.trial !== null && pred(r.trial)).map((r) => `${r.server} ${r.path}`).join(', ');
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
  if (busy !== '') notes.push(`Other processes used 10% or more of a core, or the machine was busy at the start, in: ${busy}. Those figures are less reliable.`);
  return notes;
}

function markdown(rows: Row[], servers: Server[], m: Machine, opts: Options, command: string, wrk: string): string {
  const header = [...kHeader, 'all trials (requests/s)'];
  const table = [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (kNumeric.has(i) ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${[...rowCells(r), r.all.map((x) => fmt(x)).join(' / ')].join(' | ')} |`),
  ];
  return `# HTTP benchmarks

Written by \`npm run bench:http\` (\`bench/protocols/http.ts\`); rerun it rather than editing this
file. The figures come from one run on one machine: compare them with each other, not with
figures from another machine.

## Machine

| | |
|---|---|
| CPU | ${m.cpuModel} |
| cores | ${m.cores} |
| kernel | ${m.kernel} |
| Node.js | ${m.node} |
| Bun | ${m.bun ?? '(not installed)'} |
| load generator | ${wrk} |
| date | ${new Date().toISOString()} |

Command:

\`\`\`sh
${command}
\`\`\`

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

${targetNotes(rows, opts.paths).map((n) => `- ${n}`).join('\n')}
${caveats(rows).length > 0 ? `\n## Notes\n\n${caveats(rows).map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}

/** `wrk <version>` from `wrk -v` (which exits 1 after printing it); null when wrk is missing. */
function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (r.error !== undefined) return null;
  return /^wrk \S+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? 'wrk';
}

function commandLine(argv: string[]): string {
  const args = argv.map((a) => (/^[\w.,=/:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench:http') return `npm run bench:http${args ? ` -- ${args}` : ''}`;
  return `node dist/bench/protocols/http.js${args ? ` ${args}` : ''}`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  const wrk = wrkVersion();
  if (wrk === null) throw new Error('bench:http: wrk is not installed (Debian: apt-get install -y wrk)');
  if (!hasCommand('taskset', ['-V'])) throw new Error('bench:http: taskset is not installed (Debian: util-linux)');
  const root = findRoot();
  const machine = describeMachine(root);
  console.log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}; node ${machine.node}, bun ${machine.bun ?? '(not installed)'}`);
  if (machine.cores < 2) console.log('note: fewer than 2 cores, so the server and wrk share one');

  const all = catalogue(root, findBun(root));
  if (opts.only !== null) {
    for (const n of opts.only) if (!all.some((s) => s.name === n)) throw new Error(`bench:http: unknown server ${n}; the servers are ${all.map((s) => s.name).join(', ')}`);
  }
  const servers = all.filter((s) => opts.only === null || opts.only.includes(s.name));
  const skipped = new Map<string, string>();
  for (const s of servers) if (s.unavailable !== null) skipped.set(s.name, s.unavailable);

  const rows: Row[] = [];
  for (const path of opts.paths) {
    const trials = new Map<string, Trial[]>(servers.map((s) => [s.name, []]));
    const failed = new Map<string, string>();
    for (let round = 0; round < opts.trials; round++) {
      for (const server of servers) {
        if (skipped.has(server.name) || failed.has(server.name)) continue;
        try {
          const t = await runTrial(root, server, path, opts);
          trials.get(server.name)!.push(t);
          console.log(
            `${path.padEnd(10)} ${server.name.padEnd(16)} ${fmt(t.rps).padStart(9)} req/s  latency ${t.latency}  ` +
              `server CPU ${fmt(t.serverCpuPct)}% (${fmt(t.serverSysPct)}% sys)  wrk CPU ${fmt(t.wrkCpuPct)}%` +
              (t.non2xx + t.socketErrors > 0 ? `  ${t.non2xx} non-2xx, ${t.socketErrors} socket errors` : ''),
          );
        } catch (err) {
          const msg = (err as Error).message.replace(/\s+/g, ' ').slice(0, 300);
          if (err instanceof SkipError) skipped.set(server.name, msg);
          else failed.set(server.name, msg);
          console.log(`${path.padEnd(10)} ${server.name.padEnd(16)} ${err instanceof SkipError ? 'skipped' : 'FAILED'}: ${msg}`);
        }
      }
    }
    const ref = trials.get(kReference);
    const refRps = ref !== undefined && ref.length > 0 ? median(ref).rps : null;
    for (const server of servers) {
      const ts = trials.get(server.name)!;
      const skip = skipped.get(server.name);
      const fail = failed.get(server.name);
      if (ts.length === 0 || fail !== undefined) {
        rows.push({ path, server: server.name, status: skip !== undefined ? 'skipped' : 'failed', note: skip ?? fail ?? '', trial: null, ratio: null, all: [] });
        continue;
      }
      const t = median(ts);
      rows.push({ path, server: server.name, status: 'ok', note: '', trial: t, ratio: refRps === null ? null : t.rps / refRps, all: ts.map((x) => x.rps) });
    }
  }

  console.log('');
  console.log(consoleTable(rows));
  for (const n of targetNotes(rows, opts.paths)) console.log(`target: ${n}`);
  for (const n of caveats(rows)) console.log(`note: ${n}`);
  if (opts.writeDocs) {
    const docs = join(root, 'docs');
    mkdirSync(docs, { recursive: true });
    writeFileSync(join(docs, 'benchmarks-http.md'), markdown(rows, servers, machine, opts, commandLine(argv), wrk));
    console.log('wrote docs/benchmarks-http.md');
  }
  const bad = rows.filter((r) => r.status === 'failed' || (r.trial !== null && r.trial.non2xx + r.trial.socketErrors > 0));
  return bad.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
