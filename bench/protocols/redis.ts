/**
 * The Redis benchmark, run by `npm run bench:redis`: for every server, starts it pinned to core 0,
 * checks that it answers PING, warms it up, then loads it with redis-benchmark pinned to core 1
 * (`taskset -c 1 redis-benchmark -p P -t set,get -n 200000 -c 50 -q`, without and with `-P 16`)
 * and records requests/s for SET and GET, the ratio to redis-server, the server's CPU and
 * redis-benchmark's own CPU (to show whether the load generator was the limit). Then, on the same
 * server, the big-reply trial: one client pipelines 300 GETs of a 1 MiB value while another sends
 * PINGs one at a time; it records the time until all 300 MiB have arrived, the worst PING round
 * trip and the server's peak RSS. Prints the tables and writes docs/benchmarks-redis.md.
 *
 *   npm run bench:redis -- [--requests N] [--clients N] [--trials N] [--retries N]
 *                          [--only gevent-native,...] [--no-write-docs] [--quiet-wait S]
 *
 * Servers: the Redis example with one loop (native and portable backends) and redis-server
 * (`--save '' --appendonly no`), Debian's build, as the anchor. Every process it starts runs in its
 * own process group and is killed when its trial ends, when the run fails, and on SIGINT/SIGTERM
 * (bench/lib/proc.ts).
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CpuWindow, kLoadCore, kServerCore, otherLoadPct, waitQuiet } from '../lib/cpu.js';
import { describeMachine, type Machine } from '../lib/machine.js';
import { commandLine, FlagChecks, findRoot, hasCommand, nameList, parseFlags, runMain } from '../lib/options.js';
import { alignedTable, fmt, machineSection, markdownTable, writeDocs } from '../lib/output.js';
import { freePort, kTicksPerSecond, readRssBytes, stopChild } from '../lib/proc.js';
import { exampleServers, type ProtocolServer } from '../lib/servers.js';
import { endedNote, median, oneLine, runLoadTool, runRounds, startServer, type Cell } from '../lib/trial.js';

const kTag = 'bench:redis';
const kReference = 'redis-server';
const kPipelines = [1, 16] as const;
/** Minimum ratio to redis-server that the issue asks of gevent-native, by pipeline depth. */
const kTargets: Record<number, number> = { 1: 0.9, 16: 0.8 };
const kWarmupRequests = 20_000;
/** Other load (in % of a core) from which a trial counts as disturbed, and is run again. */
const kOtherLoadLimitPct = 10;
const kBenchmarkLimitMs = 180_000;
/** The big-reply trial: GETs pipelined at once, of a value of this size. */
const kBigGets = 300;
const kBigValueBytes = 1024 * 1024;
const kBigRequest = '*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n'.repeat(kBigGets);
/** The big-reply trial gives up after this long (the server before the fix took minutes). */
const kBigLimitMs = 120_000;
/** How often the server's RSS is sampled during the big-reply trial. */
const kRssSampleMs = 20;

interface Options {
  requests: number;
  clients: number;
  trials: number;
  retries: number;
  only: string[] | null;
  writeDocs: boolean;
  quietWaitS: number;
}

/** One redis-benchmark run (SET then GET) against one server at one pipeline depth. */
interface Trial {
  set: number;
  get: number;
  benchCpuPct: number;
  serverCpuPct: number;
  /** Server CPU time per request (SET and GET together), in microseconds. */
  serverUsPerRequest: number;
  otherLoadPct: number;
  quiet: boolean;
}

/** The big-reply trial of one server. */
interface BigTrial {
  /** From sending the GETs until their last byte arrived; NaN when it timed out. */
  seconds: number;
  worstPingMs: number;
  pings: number;
  peakRssBytes: number;
}

/** Everything one trial of one server measured. */
interface ServerTrial {
  depths: Map<number, Trial>;
  big: BigTrial;
}

interface Row extends Cell<Trial> {
  pipeline: number;
  setRatio: number | null;
  getRatio: number | null;
  /** Medians over every trial, disturbed or not. */
  medianSet: number;
  medianGet: number;
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(
    argv,
    {
      requests: { type: 'string', default: '200000' },
      clients: { type: 'string', default: '50' },
      trials: { type: 'string', default: '5' },
      retries: { type: 'string', default: '2' },
    },
    'usage: npm run bench:redis -- [--requests N] [--clients N] [--trials N] [--retries N] [--only NAMES]\n' +
      '                              [--no-write-docs] [--quiet-wait S]\n' +
      `servers: gevent-native, gevent-portable, ${kReference}`,
  );
  const flags = new FlagChecks(kTag);
  return {
    requests: flags.positive('requests', values.requests, { integer: true }),
    clients: flags.positive('clients', values.clients, { integer: true }),
    trials: flags.positive('trials', values.trials, { integer: true }),
    retries: flags.positive('retries', values.retries, { integer: true, zero: true }),
    only: nameList(values.only),
    writeDocs: !values['no-write-docs'],
    quietWaitS: flags.positive('quiet-wait', values['quiet-wait'], { integer: true, zero: true }),
  };
}

/** The first line a tool prints for `--version`, or null when it is not installed. */
function toolVersion(tool: string): string | null {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0 ? r.stdout.trim().split('\n')[0]! : null;
}

function catalogue(root: string): ProtocolServer[] {
  return [
    ...exampleServers(root, 'redis'),
    {
      name: kReference,
      label: "redis-server --save '' --appendonly no (Debian's build, io-threads 1)",
      argv: (port) => [
        'redis-server',
        '--port',
        String(port),
        '--save',
        '',
        '--appendonly',
        'no',
        '--bind',
        '127.0.0.1',
      ],
      unavailable:
        toolVersion('redis-server') === null
          ? 'redis-server is not installed (Debian: apt-get install -y redis-server)'
          : null,
    },
  ];
}

/** Sends PING and expects +PONG, so that a broken server is not timed. */
function checkPing(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => s.destroy(new Error('PING timed out')), 5000);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n')) s.end();
    });
    s.once('close', () => {
      clearTimeout(timer);
      if (got === '+PONG\r\n') resolve();
      else reject(new Error(`PING answered ${JSON.stringify(got)}`));
    });
    s.once('error', reject);
    s.write('*1\r\n$4\r\nPING\r\n');
  });
}

/** The redis-benchmark command line for a pipeline depth (without the port's value). */
function benchmarkArgs(port: number | string, requests: number, clients: number, pipeline: number): string[] {
  return [
    'redis-benchmark',
    '-p',
    String(port),
    '-t',
    'set,get',
    '-n',
    String(requests),
    '-c',
    String(clients),
    '-q',
    ...(pipeline > 1 ? ['-P', String(pipeline)] : []),
  ];
}

/** Runs redis-benchmark from the load core; returns SET and GET requests/s and its own CPU in % of one core. */
async function runBenchmark(root: string, args: string[]): Promise<{ set: number; get: number; cpuPct: number }> {
  const { stdout, cpuPct } = await runLoadTool(root, args, kBenchmarkLimitMs);
  const rps = (test: string): number => {
    const m = new RegExp(`${test}: ([\\d.]+) requests per second`).exec(stdout);
    if (!m) throw new Error(`no ${test} figure in redis-benchmark's output: ${stdout.trim().slice(-300)}`);
    return Number(m[1]);
  };
  return { set: rps('SET'), get: rps('GET'), cpuPct };
}

/** Connects to the server on 127.0.0.1:port. */
function connectLocal(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Sends `bytes` on `s` and resolves once `length` bytes have come back (rejects when `s` ends first). */
function exchange(s: net.Socket, bytes: string | Buffer, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got < length) return;
      s.off('data', onData);
      s.off('close', onClose);
      resolve();
    };
    const onClose = (): void => reject(new Error(`connection closed after ${got} of ${length} bytes`));
    s.on('data', onData);
    s.once('close', onClose);
    s.write(bytes);
  });
}

/**
 * The big-reply client, in a worker thread so that reading 300 MiB does not delay the PING client
 * of the main thread: pipelines the GETs, then reports how long all the replies took to arrive.
 */
async function bigClient(port: number): Promise<void> {
  const s = await connectLocal(port);
  const reply = `$${kBigValueBytes}\r\n`.length + kBigValueBytes + 2;
  const start = performance.now();
  await exchange(s, kBigRequest, reply * kBigGets);
  parentPort!.postMessage(performance.now() - start);
  s.destroy();
}

/**
 * The big-reply trial against the server on `port` (process `pid`): sets a 1 MiB value, starts the
 * big client in a worker, and sends PINGs one at a time on another connection until the big
 * client has all of its replies, timing each; the server's RSS is sampled meanwhile.
 */
async function runBigTrial(port: number, pid: number): Promise<BigTrial> {
  const setup = await connectLocal(port);
  const value = Buffer.alloc(kBigValueBytes, 0x78);
  await exchange(
    setup,
    Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${kBigValueBytes}\r\n`), value, Buffer.from('\r\n')]),
    5,
  );
  setup.destroy();
  const pinger = await connectLocal(port);
  let peakRss = readRssBytes(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, readRssBytes(pid))), kRssSampleMs);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), kBigLimitMs)));
  const worker = new Worker(new URL(import.meta.url), { workerData: { port } });
  let seconds = Number.NaN;
  let done = false;
  const finished = new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  void finished.then(
    (ms) => {
      seconds = ms / 1000;
      done = true;
    },
    () => (done = true),
  );
  void expired.then(() => (done = true));
  let worstPingMs = 0;
  let pings = 0;
  try {
    while (!done) {
      const sent = performance.now();
      const ping = exchange(pinger, 'PING\r\n', 7);
      ping.catch(() => {});
      if ((await Promise.race([ping, expired])) === 'timeout') break;
      worstPingMs = Math.max(worstPingMs, performance.now() - sent);
      pings++;
    }
  } finally {
    clearTimeout(timer);
    clearInterval(sampler);
    pinger.destroy();
    await worker.terminate();
  }
  return { seconds, worstPingMs, pings, peakRssBytes: peakRss };
}

/** One trial of one server: fresh on the server core, checked, warmed up, measured at each pipeline depth and with big replies, then stopped whatever happens. */
async function runTrial(root: string, server: ProtocolServer, opts: Options): Promise<ServerTrial> {
  const quiet = await waitQuiet(opts.quietWaitS);
  const port = await freePort();
  const child = await startServer(root, server.argv(port), port);
  try {
    await checkPing(port);
    await runBenchmark(root, benchmarkArgs(port, kWarmupRequests, opts.clients, 16));
    const trials = new Map<number, Trial>();
    for (const pipeline of kPipelines) {
      const cpu = new CpuWindow(child.pid);
      cpu.start();
      const r = await runBenchmark(root, benchmarkArgs(port, opts.requests, opts.clients, pipeline));
      const usage = cpu.end();
      trials.set(pipeline, {
        set: r.set,
        get: r.get,
        benchCpuPct: r.cpuPct,
        serverCpuPct: usage.serverPct,
        serverUsPerRequest: (1e6 * usage.serverTicks) / kTicksPerSecond / (2 * opts.requests),
        otherLoadPct: otherLoadPct(usage, r.cpuPct),
        quiet,
      });
    }
    return { depths: trials, big: await runBigTrial(port, child.pid) };
  } finally {
    await stopChild(child);
  }
}

function emptyRow(server: string, status: Row['status'], note: string): Row {
  return {
    pipeline: 0,
    server,
    status,
    note,
    trial: null,
    setRatio: null,
    getRatio: null,
    medianSet: Number.NaN,
    medianGet: Number.NaN,
  };
}

/** Whether other work used a tenth of a core or more during the trial, or before it. */
function disturbed(t: Trial): boolean {
  return !t.quiet || t.otherLoadPct >= kOtherLoadLimitPct;
}

/**
 * The trial to show: the highest SET + GET among the undisturbed trials, or among all when none
 * was. On a shared machine other work can only lower a figure, so the best of several
 * interleaved trials is the one least disturbed, for every server alike.
 */
function best(trials: Trial[]): Trial {
  const clean = trials.filter((t) => !disturbed(t));
  return (clean.length > 0 ? clean : trials).reduce((a, b) => (b.set + b.get > a.set + a.get ? b : a));
}

const kHeader = [
  'pipeline',
  'server',
  'SET req/s',
  'SET ratio',
  'GET req/s',
  'GET ratio',
  'server CPU',
  'server µs/req',
  'redis-benchmark CPU',
  'notes',
];
const kNumeric = new Set([2, 3, 4, 5, 6, 7, 8]);

function rowCells(r: Row): string[] {
  const depth = r.pipeline === 1 ? 'none' : `-P ${r.pipeline}`;
  const t = r.trial;
  if (t === null) return [depth, r.server, '', '', '', '', '', '', '', endedNote(r)];
  const notes = [
    t.otherLoadPct >= 10 ? `other load ${fmt(t.otherLoadPct)}%` : '',
    t.quiet ? '' : 'machine busy at start',
    t.benchCpuPct >= 90 ? 'redis-benchmark saturated' : '',
  ].filter((x) => x !== '');
  const ratio = (x: number | null): string => (x === null ? '' : fmt(x, 2));
  return [
    depth,
    r.server,
    fmt(t.set),
    ratio(r.setRatio),
    fmt(t.get),
    ratio(r.getRatio),
    `${fmt(t.serverCpuPct)}%`,
    fmt(t.serverUsPerRequest, 2),
    `${fmt(t.benchCpuPct)}%`,
    notes.join('; '),
  ];
}

function targetNotes(rows: Row[]): string[] {
  return kPipelines.map((pipeline) => {
    const depth = pipeline === 1 ? 'unpipelined' : `pipelined (-P ${pipeline})`;
    const native = rows.find((r) => r.pipeline === pipeline && r.server === 'gevent-native');
    if (native?.setRatio == null || native.getRatio == null)
      return `${depth}: no ratio for gevent-native (it or ${kReference} did not run).`;
    const target = kTargets[pipeline]!;
    const met = native.setRatio >= target && native.getRatio >= target;
    return `${depth}: gevent-native is ${fmt(native.setRatio, 2)}x (SET) and ${fmt(native.getRatio, 2)}x (GET) ${kReference}; the target of ${target}x is ${met ? 'met' : 'MISSED'}.`;
  });
}

/** Caveats that the figures themselves show: a saturated load generator, other load, a busy machine. */
function caveats(rows: Row[]): string[] {
  const cells = (pred: (t: Trial) => boolean): string =>
    rows
      .filter((r) => r.trial !== null && pred(r.trial))
      .map((r) => `${r.server} ${r.pipeline === 1 ? 'unpipelined' : `-P ${r.pipeline}`}`)
      .join(', ');
  const notes: string[] = [];
  const saturated = cells((t) => t.benchCpuPct >= 90);
  if (saturated !== '') {
    notes.push(
      `redis-benchmark used 90% or more of its core in: ${saturated}. There the figure is as much the load ` +
        "generator's limit as the server's: redis-benchmark is single-threaded, and on loopback each side's " +
        "send also runs the other side's receive processing.",
    );
  }
  const busy = cells((t) => t.otherLoadPct >= 10 || !t.quiet);
  if (busy !== '')
    notes.push(
      `Other processes used 10% or more of a core, or the machine was busy at the start, in: ${busy}. Those figures are less reliable.`,
    );
  return notes;
}

function medianTable(rows: Row[]): string[] {
  const out = ['| pipeline | server | SET median | ratio | GET median | ratio |', '|---|---|---:|---:|---:|---:|'];
  for (const r of rows) {
    if (r.trial === null) continue;
    const ref = rows.find((x) => x.pipeline === r.pipeline && x.server === kReference && x.trial !== null);
    const ratio = (a: number, b: number | undefined): string => (b === undefined ? '' : fmt(a / b, 2));
    out.push(
      `| ${r.pipeline === 1 ? 'none' : `-P ${r.pipeline}`} | ${r.server} | ${fmt(r.medianSet)} | ${ratio(r.medianSet, ref?.medianSet)} | ` +
        `${fmt(r.medianGet)} | ${ratio(r.medianGet, ref?.medianGet)} |`,
    );
  }
  return out;
}

const kBigHeader = ['server', `${kBigGets} x 1 MiB GET`, 'worst PING', 'PINGs answered', 'server peak RSS'];
const kBigNumeric = new Set([1, 2, 3, 4]);

/** The figures of one big-reply trial, as table cells. */
function bigCells(t: BigTrial): string[] {
  const time = Number.isNaN(t.seconds) ? `not done in ${kBigLimitMs / 1000} s` : `${fmt(t.seconds, 2)} s`;
  return [time, `${fmt(t.worstPingMs)} ms`, fmt(t.pings), `${fmt(t.peakRssBytes / 2 ** 20)} MiB`];
}

function bigRowCells([server, t]: [string, BigTrial | null]): string[] {
  return t === null ? [server, '', '', '', ''] : [server, ...bigCells(t)];
}

/** The big-reply trial to show: the one whose worst PING was lowest (other work only raises it). */
function bestBig(trials: BigTrial[]): BigTrial {
  return trials.reduce((a, b) => (b.worstPingMs < a.worstPingMs ? b : a));
}

function markdown(
  rows: Row[],
  bigRows: [string, BigTrial | null][],
  servers: ProtocolServer[],
  m: Machine,
  opts: Options,
  command: string,
  versions: { server: string; benchmark: string },
): string {
  const table = markdownTable(kHeader, rows.map(rowCells), kNumeric);
  const notes = caveats(rows);
  return `# Redis benchmarks

Written by \`npm run bench:redis\` (\`bench/protocols/redis.ts\`); rerun it rather than editing this
file. The figures come from one run on one machine: compare them with each other, not with
figures from another machine.

${machineSection(
  m,
  [
    ['redis-server', versions.server],
    ['load generator', versions.benchmark],
    ['date', new Date().toISOString()],
  ],
  command,
).join('\n')}

## Method

Each server runs alone, pinned to core ${kServerCore} (\`taskset -c ${kServerCore}\`), with one event loop
(redis-server with its default single I/O thread). redis-benchmark runs pinned to core ${kLoadCore}:

\`\`\`sh
taskset -c ${kLoadCore} ${benchmarkArgs('PORT', opts.requests, opts.clients, 1).join(' ')}
taskset -c ${kLoadCore} ${benchmarkArgs('PORT', opts.requests, opts.clients, 16).join(' ')}
\`\`\`

Each server is started fresh for every trial, checked with one PING, warmed up with
${fmt(kWarmupRequests)} pipelined requests, then measured unpipelined and with 16 commands in flight
per connection, on redis-benchmark's default 3-byte value and one key. The servers take turns,
trial by trial (${opts.trials} trial(s) each). A trial during which other processes used ${kOtherLoadLimitPct}% or more of
either core is disturbed, and is run again (up to ${opts.retries} more times). The results table shows each
server's best undisturbed trial (highest SET + GET), or its best trial when none was undisturbed,
since on a shared machine other work can only lower a figure; the medians of all trials follow it.

"server CPU" is the server process's user+system time over the whole redis-benchmark run, in % of
one core, and "server µs/req" is the same time per request (SET and GET together).
"redis-benchmark CPU" is its own (bash \`times\`), in % of one core: well under 100% means it
was not the limit. "other load" is CPU that other processes used on either core meanwhile.
Before each trial the run waits (up to ${opts.quietWaitS} s) until neither core has been more than 10% busy
for a second.

Servers:

${servers.map((s) => `- \`${s.name}\`: ${s.label}`).join('\n')}

## Results

${table.join('\n')}

Medians of all trials (requests/s), and their ratio to ${kReference}'s medians:

${medianTable(rows).join('\n')}

## Pipelined big replies

After the redis-benchmark runs, on the same server: one client sets a 1 MiB value, then pipelines
${kBigGets} \`GET\`s of it at once (a ${fmt(kBigRequest.length / 1024, 1)} KiB request, ${fmt((kBigGets * kBigValueBytes) / 2 ** 20)} MiB of replies) and reads
them as fast as it can, in a worker thread; meanwhile a second client, on the main thread, sends
one PING at a time. The table shows the time until the last reply byte arrived, the slowest PING
round trip, how many PINGs were answered meanwhile, and the server's peak RSS (sampled every
${kRssSampleMs} ms), for the trial with the lowest worst PING. The trial gives up after ${kBigLimitMs / 1000} s.

${markdownTable(kBigHeader, bigRows.map(bigRowCells), kBigNumeric).join('\n')}

## Targets

One loop on one core: pipelined at least ${kTargets[16]}x redis-server, unpipelined at least ${kTargets[1]}x.

${targetNotes(rows)
  .map((n) => `- ${n}`)
  .join('\n')}
${notes.length > 0 ? `\n## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  const benchmark = toolVersion('redis-benchmark');
  if (benchmark === null)
    throw new Error(`${kTag}: redis-benchmark is not installed (Debian: apt-get install -y redis-tools)`);
  if (!hasCommand('taskset', ['-V'])) throw new Error(`${kTag}: taskset is not installed (Debian: util-linux)`);
  const root = findRoot(kTag, 'examples/');
  const machine = describeMachine(root);
  console.log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}; node ${machine.node}`);
  if (machine.cores < 2) console.log('note: fewer than 2 cores, so the server and redis-benchmark share one');

  const all = catalogue(root);
  new FlagChecks(kTag).known(
    'server',
    opts.only,
    all.map((s) => s.name),
  );
  const servers = all.filter((s) => opts.only === null || opts.only.includes(s.name));
  const ended = new Map<string, Row>();
  for (const s of servers) if (s.unavailable !== null) ended.set(s.name, emptyRow(s.name, 'skipped', s.unavailable));

  const trials = new Map<string, Map<number, Trial[]>>(
    servers.map((s) => [s.name, new Map(kPipelines.map((p) => [p, []]))]),
  );
  const bigTrials = new Map<string, BigTrial[]>(servers.map((s) => [s.name, []]));
  const record = (server: ProtocolServer, got: ServerTrial): void => {
    for (const [pipeline, t] of got.depths) trials.get(server.name)!.get(pipeline)!.push(t);
    bigTrials.get(server.name)!.push(got.big);
  };
  await runRounds({
    rounds: opts.trials,
    servers: servers.filter((s) => !ended.has(s.name)),
    trial: async (server) => {
      let got = await runTrial(root, server, opts);
      for (let retry = 0; retry < opts.retries && [...got.depths.values()].some(disturbed); retry++) {
        record(server, got);
        console.log(`${server.name.padEnd(16)} disturbed by other work; running the trial again`);
        got = await runTrial(root, server, opts);
      }
      return got;
    },
    ran: (server, got) => {
      record(server, got);
      for (const [pipeline, t] of got.depths) {
        console.log(
          `${server.name.padEnd(16)} ${(pipeline === 1 ? 'unpipelined' : `-P ${pipeline}`).padEnd(12)} SET ${fmt(t.set).padStart(10)}  GET ${fmt(t.get).padStart(10)} req/s` +
            `  server CPU ${fmt(t.serverCpuPct)}% (${fmt(t.serverUsPerRequest, 2)} µs/req)  redis-benchmark CPU ${fmt(t.benchCpuPct)}%  other load ${fmt(t.otherLoadPct)}%`,
        );
      }
      console.log(`${server.name.padEnd(16)} ${'big replies'.padEnd(12)} ${bigCells(got.big).join('  ')}`);
    },
    stopped: (server, how, message) => {
      const msg = oneLine(message);
      console.log(`${server.name.padEnd(16)} ${how === 'skipped' ? 'skipped' : 'FAILED'}: ${msg}`);
      ended.set(server.name, emptyRow(server.name, how, msg));
    },
  });

  const rows: Row[] = [];
  for (const pipeline of kPipelines) {
    const refTrials = trials.get(kReference)?.get(pipeline) ?? [];
    const ref = ended.has(kReference) || refTrials.length === 0 ? null : best(refTrials);
    for (const server of servers) {
      const stop = ended.get(server.name);
      const ts = trials.get(server.name)!.get(pipeline)!;
      if (stop !== undefined && ts.length === 0) {
        rows.push({ ...stop, pipeline });
        continue;
      }
      const t = best(ts);
      rows.push({
        pipeline,
        server: server.name,
        status: 'ok',
        note: '',
        trial: t,
        setRatio: ref === null ? null : t.set / ref.set,
        getRatio: ref === null ? null : t.get / ref.get,
        medianSet: median(ts.map((x) => x.set)),
        medianGet: median(ts.map((x) => x.get)),
      });
    }
  }

  const bigRows = servers.map((server): [string, BigTrial | null] => {
    const ts = bigTrials.get(server.name)!;
    return [server.name, ts.length === 0 ? null : bestBig(ts)];
  });

  console.log('');
  console.log(alignedTable(kHeader, rows.map(rowCells), kNumeric));
  console.log('');
  console.log(alignedTable(kBigHeader, bigRows.map(bigRowCells), kBigNumeric));
  for (const n of [...targetNotes(rows), ...caveats(rows)]) console.log(`note: ${n}`);
  if (opts.writeDocs) {
    const versions = { server: toolVersion('redis-server') ?? '(not installed)', benchmark: benchmark };
    const command = commandLine('bench:redis', 'dist/bench/protocols/redis.js', argv);
    writeDocs(root, { 'benchmarks-redis.md': markdown(rows, bigRows, servers, machine, opts, command, versions) });
  }
  return rows.some((r) => r.status === 'failed') ? 1 : 0;
}

if (isMainThread) runMain(main);
else void bigClient((workerData as { port: number }).port);
