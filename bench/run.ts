/**
 * The benchmark orchestrator, run by `npm run bench`: compiles the C reference servers and the
 * load generator, then for every workload and every server starts the server on core 0, loads it
 * from core 1, records msgs/s, the ratio to the C reference and both sides' CPU, and stops the
 * server. The proxy workloads put a proxy (the proxy example, HAProxy) on core 0 between the load
 * generator and the C echo server, both on core 1, and report the proxy's CPU per message.
 * Prints a table and writes docs/benchmarks.md and docs/benchmarks.svg.
 *
 *   npm run bench -- [--duration S] [--warmup S] [--trials N] [--only c,gevent-portable,...]
 *                    [--workloads tcp-pingpong,...] [--conns N] [--held-conns N] [--no-write-docs]
 *                    [--engine auto|uring|epoll] [--quiet-wait S]
 *
 * A program that prints numbers, not a test: it fails only when it cannot measure or when an echo
 * comes back wrong.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuWindow, kLoadCore, waitQuiet, type CpuUsage } from './lib/cpu.js';
import { describeMachine, findBun, type Machine } from './lib/machine.js';
import {
  haproxyVersion,
  isProxy,
  kProxyReferenceName,
  loadgenMode,
  proxyCatalogue,
  startUpstream,
  usPerMessage,
  type Upstream,
} from './lib/proxy.js';
import { proxyConsoleTable, usText } from './lib/proxy-report.js';
import { commandLine, FlagChecks, findRoot, nameList, parseFlags, runMain } from './lib/options.js';
import { writeDocs } from './lib/output.js';
import { freePort, readRssBytes, startChild, stopChild, waitExit, type Child } from './lib/proc.js';
import { barChartSvg, consoleTable, markdownReport, type Result } from './lib/report.js';
import { isUdp, kReferenceName, kWorkloads, serverCatalogue, type ServerSpec, type Workload } from './lib/servers.js';
import { median, oneLine, runRounds, SkipError, startServer } from './lib/trial.js';

const kTag = 'bench';
const kSettleMs = 300;
const kLoadgenSlackMs = 120_000;
const kCSources = ['echo_epoll', 'udp_echo_mmsg', 'loadgen'] as const;
/** How often the server's RSS is sampled during tcp-held's ping-pong. */
const kRssSampleMs = 200;

interface Options {
  durationS: number;
  warmupS: number;
  trials: number;
  only: string[] | null;
  workloads: Workload[];
  conns: number;
  heldConns: number;
  writeDocs: boolean;
  engine: string;
  quietWaitS: number;
}

/** What one loadgen run printed as its result line. */
interface LoadgenResult {
  mode: string;
  conns: number;
  seconds: number;
  msgs: number;
  msgsPerSec: number;
  bytes: number;
  mbPerSec: number;
  errors: number;
  losses: number;
  stale: number;
  loadgenCpuPct: number;
  loadgenSaturated: boolean;
  engine: string;
  /** Round-trip times of the counted messages in µs (ping-pong modes; null for tcp-pipeline). */
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  maxUs: number | null;
}

interface Trial {
  lg: LoadgenResult;
  serverCpuPct: number;
  /** The C echo upstream's CPU on the load core (proxy workloads; NaN for the others). */
  upstreamCpuPct: number;
  /** Busy time of the server's core and of the load core, from any process or the kernel. */
  serverCorePct: number;
  loadCorePct: number;
  otherLoadPct: number;
  otherLoadgenCorePct: number;
  rssPerConnBytes: number | null;
  /** tcp-held: (the highest server VmRSS sampled during the ping-pong − VmRSS before) / connections. */
  rssActivePerConnBytes: number | null;
  quiet: boolean;
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(
    argv,
    {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      trials: { type: 'string', default: '3' },
      workloads: { type: 'string' },
      conns: { type: 'string', default: '100' },
      'held-conns': { type: 'string', default: '9000' },
      'write-docs': { type: 'boolean', default: true },
      engine: { type: 'string', default: 'auto' },
    },
    'usage: npm run bench -- [--duration S] [--warmup S] [--trials N] [--only NAMES] [--workloads NAMES]\n' +
      '                        [--conns N] [--held-conns N] [--no-write-docs] [--engine auto|uring|epoll]\n' +
      '                        [--quiet-wait S]\n' +
      `servers: ${[kReferenceName, 'gevent-native', 'gevent-portable', 'node', 'bun'].join(', ')}\n` +
      `proxies (proxy-* workloads): gevent-proxy, gevent-proxy-js, ${kProxyReferenceName}\n` +
      `workloads: ${kWorkloads.join(', ')}`,
  );
  const flags = new FlagChecks(kTag);
  const workloads = nameList(values.workloads) ?? [...kWorkloads];
  flags.known('workload', workloads, kWorkloads);
  if (!['auto', 'uring', 'epoll'].includes(values.engine)) {
    throw new Error(`${kTag}: --engine must be auto, uring or epoll, got ${values.engine}`);
  }
  return {
    durationS: flags.positive('duration', values.duration),
    warmupS: flags.positive('warmup', values.warmup, { zero: true }),
    trials: flags.positive('trials', values.trials, { integer: true }),
    only: nameList(values.only),
    workloads: workloads as Workload[],
    conns: flags.positive('conns', values.conns, { integer: true }),
    heldConns: flags.positive('held-conns', values['held-conns'], { integer: true }),
    writeDocs: values['write-docs'] && !values['no-write-docs'],
    engine: values.engine,
    quietWaitS: flags.positive('quiet-wait', values['quiet-wait'], { zero: true }),
  };
}

function compileC(root: string, binDir: string): void {
  mkdirSync(binDir, { recursive: true });
  for (const name of kCSources) {
    const src = join(root, 'bench', 'c', `${name}.c`);
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', join(binDir, name), src], { stdio: 'inherit' });
  }
}

function loadgenArgs(workload: Workload, port: number, opts: Options): string[] {
  const held = workload === 'tcp-held';
  return [
    loadgenMode(workload),
    '--port',
    String(port),
    '--duration',
    String(opts.durationS),
    '--warmup',
    String(opts.warmupS),
    '--conns',
    String(held ? opts.heldConns : opts.conns),
    '--engine',
    opts.engine,
    ...(held ? ['--pause-when-connected'] : []),
  ];
}

/** Runs the load generator against a started server and collects its result line. */
async function runLoadgen(
  root: string,
  binDir: string,
  server: Child,
  workload: Workload,
  port: number,
  opts: Options,
  nofile: number,
  upstream: Upstream | null,
): Promise<Trial> {
  const held = workload === 'tcp-held';
  const rssBefore = held ? readRssBytes(server.pid) : 0;
  let rssAfter = 0;
  let rssPeak = 0;
  let rssTimer: NodeJS.Timeout | undefined;
  const cpu = new CpuWindow(server.pid);
  const upstreamCpu = upstream === null ? null : new CpuWindow(upstream.child.pid);
  let warmupTimer: NodeJS.Timeout | undefined;
  const startCpuWindow = (): void => {
    warmupTimer = setTimeout(() => {
      cpu.start();
      upstreamCpu?.start();
    }, opts.warmupS * 1000);
  };
  const loadgen = startChild(
    [
      'taskset',
      '-c',
      String(kLoadCore),
      'prlimit',
      `--nofile=${nofile}:${nofile}`,
      join(binDir, 'loadgen'),
      ...loadgenArgs(workload, port, opts),
    ],
    { cwd: root, stdin: true },
  );
  if (!held) startCpuWindow();
  let result: LoadgenResult | null = null;
  let upstreamCpuPct = Number.NaN;
  let usage: CpuUsage = {
    serverTicks: Number.NaN,
    serverPct: Number.NaN,
    serverSysPct: Number.NaN,
    serverCorePct: Number.NaN,
    loadCorePct: Number.NaN,
  };
  const lines = createInterface({ input: loadgen.proc.stdout! });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    const msg = JSON.parse(line) as { event?: string } & Partial<LoadgenResult>;
    if (msg.event === 'connected') {
      rssAfter = readRssBytes(server.pid);
      rssPeak = rssAfter;
      loadgen.proc.stdin?.write('go\n');
      startCpuWindow();
      rssTimer = setInterval(() => {
        try {
          rssPeak = Math.max(rssPeak, readRssBytes(server.pid));
        } catch {
          // The server is gone: the trial fails on its own.
        }
      }, kRssSampleMs);
    } else if (msg.mode !== undefined) {
      clearInterval(rssTimer);
      usage = cpu.end();
      if (upstreamCpu !== null) upstreamCpuPct = upstreamCpu.end().serverPct;
      result = msg as LoadgenResult;
    }
  });
  const limitMs = (opts.warmupS + opts.durationS) * 1000 + kLoadgenSlackMs;
  const code = await waitExit(loadgen, limitMs);
  clearTimeout(warmupTimer);
  clearInterval(rssTimer);
  await stopChild(loadgen);
  lines.close();
  const got = result as LoadgenResult | null;
  if (code === 'timeout') throw new Error(`the load generator did not finish within ${limitMs / 1000} s`);
  if (got === null) throw new Error(`the load generator exited with code ${code}: ${loadgen.output().trim()}`);
  return {
    lg: got,
    serverCpuPct: usage.serverPct,
    upstreamCpuPct,
    serverCorePct: usage.serverCorePct,
    loadCorePct: usage.loadCorePct,
    otherLoadPct: Math.max(0, usage.serverCorePct - usage.serverPct),
    otherLoadgenCorePct: Math.max(
      0,
      usage.loadCorePct - got.loadgenCpuPct - (Number.isNaN(upstreamCpuPct) ? 0 : upstreamCpuPct),
    ),
    rssPerConnBytes: held ? (rssAfter - rssBefore) / opts.heldConns : null,
    rssActivePerConnBytes: held ? (rssPeak - rssBefore) / opts.heldConns : null,
    quiet: true,
  };
}

/**
 * One trial: a fresh server on core 0, loaded from core 1, then stopped whatever happens. For a
 * proxy workload the server is a proxy, and a fresh C echo upstream runs on core 1 beside the load
 * generator for the trial.
 */
async function runTrial(
  root: string,
  binDir: string,
  spec: ServerSpec,
  workload: Workload,
  opts: Options,
  nofile: number,
): Promise<Trial> {
  const udp = isUdp(workload);
  const quiet = await waitQuiet(opts.quietWaitS);
  const upstream = isProxy(workload) ? await startUpstream(root, binDir, await freePort(), nofile) : null;
  try {
    const port = await freePort();
    const argv = spec.command(
      port,
      udp,
      upstream === null ? undefined : { upstreamPort: upstream.port, dir: upstream.dir },
    );
    if (argv === null) throw new SkipError(`no ${udp ? 'UDP' : 'TCP'} variant`);
    const server = await startServer(root, argv, port, { udp, nofile });
    try {
      await sleep(kSettleMs);
      return { ...(await runLoadgen(root, binDir, server, workload, port, opts, nofile, upstream)), quiet };
    } finally {
      await stopChild(server);
    }
  } finally {
    await upstream?.stop();
  }
}

function emptyResult(workload: Workload, spec: ServerSpec, status: Result['status'], note: string): Result {
  return {
    workload,
    server: spec.name,
    label: spec.label(isUdp(workload)),
    status,
    note,
    msgsPerSec: 0,
    mbPerSec: 0,
    ratio: null,
    loadgenCpuPct: Number.NaN,
    loadgenSaturated: false,
    p50Us: null,
    p99Us: null,
    p999Us: null,
    maxUs: null,
    p99Ratio: null,
    serverCpuPct: Number.NaN,
    serverUsPerMsg: Number.NaN,
    upstreamCpuPct: Number.NaN,
    serverCorePct: Number.NaN,
    loadCorePct: Number.NaN,
    otherLoadPct: 0,
    engine: '',
    notQuiet: false,
    errors: 0,
    losses: 0,
    rssPerConnBytes: null,
    rssActivePerConnBytes: null,
    conns: 0,
    trials: [],
  };
}

/** The fastest trial stands for the cell (other work on the machine only ever slows a trial). */
function bestTrial(trials: Trial[]): Trial {
  return trials.reduce((best, t) => (t.lg.msgsPerSec > best.lg.msgsPerSec ? t : best));
}

/** What a cell's ratios divide by: the reference's msgs/s and p99 round trip (µs), from its fastest trial. */
interface Reference {
  msgsPerSec: number;
  p99Us: number | null;
}

function summarize(workload: Workload, spec: ServerSpec, trials: Trial[], ref: Reference | null): Result {
  const best = bestTrial(trials);
  const refMsgsPerSec = ref === null ? null : ref.msgsPerSec;
  const p99Us = best.lg.p99Us ?? null;
  const refP99Us = ref === null ? null : ref.p99Us;
  const rss = trials.map((t) => t.rssPerConnBytes).filter((x): x is number => x !== null);
  const rssActive = trials.map((t) => t.rssActivePerConnBytes).filter((x): x is number => x !== null);
  return {
    ...emptyResult(workload, spec, 'ok', ''),
    msgsPerSec: best.lg.msgsPerSec,
    mbPerSec: best.lg.mbPerSec,
    ratio: refMsgsPerSec !== null && refMsgsPerSec > 0 ? best.lg.msgsPerSec / refMsgsPerSec : null,
    loadgenCpuPct: best.lg.loadgenCpuPct,
    loadgenSaturated: best.lg.loadgenSaturated,
    p50Us: best.lg.p50Us ?? null,
    p99Us,
    p999Us: best.lg.p999Us ?? null,
    maxUs: best.lg.maxUs ?? null,
    p99Ratio: p99Us !== null && refP99Us !== null && refP99Us > 0 ? p99Us / refP99Us : null,
    serverCpuPct: best.serverCpuPct,
    serverUsPerMsg: usPerMessage(best.serverCpuPct, best.lg.msgsPerSec),
    upstreamCpuPct: best.upstreamCpuPct,
    serverCorePct: best.serverCorePct,
    loadCorePct: best.loadCorePct,
    otherLoadPct: Math.max(best.otherLoadPct, best.otherLoadgenCorePct),
    engine: best.lg.engine,
    notQuiet: !best.quiet,
    errors: trials.reduce((n, t) => n + t.lg.errors, 0),
    losses: trials.reduce((n, t) => n + t.lg.losses, 0),
    rssPerConnBytes: rss.length > 0 ? median(rss) : null,
    rssActivePerConnBytes: rssActive.length > 0 ? median(rssActive) : null,
    conns: best.lg.conns,
    trials: trials.map((t) => t.lg.msgsPerSec),
  };
}

function logTrial(workload: Workload, server: string, t: Trial): void {
  const rss =
    t.rssPerConnBytes === null
      ? ''
      : `  RSS/conn ${(t.rssPerConnBytes / 1024).toFixed(2)} KiB idle, ${((t.rssActivePerConnBytes ?? 0) / 1024).toFixed(2)} KiB active`;
  const proxy = Number.isNaN(t.upstreamCpuPct)
    ? ''
    : ` (${usText(usPerMessage(t.serverCpuPct, t.lg.msgsPerSec))} µs/msg)  upstream CPU ${t.upstreamCpuPct.toFixed(0)}%` +
      `  core 0 busy ${t.serverCorePct.toFixed(0)}% (${usText(usPerMessage(t.serverCorePct, t.lg.msgsPerSec))} µs/msg)` +
      `  core 1 busy ${t.loadCorePct.toFixed(0)}%`;
  console.log(
    `${workload.padEnd(14)} ${server.padEnd(16)} ${Math.round(t.lg.msgsPerSec).toLocaleString('en-US').padStart(13)} msgs/s` +
      `  loadgen CPU ${t.lg.loadgenCpuPct.toFixed(0)}%  server CPU ${t.serverCpuPct.toFixed(0)}%${proxy}${rss}` +
      (t.lg.p50Us == null
        ? ''
        : `  p50/p99/p99.9 ${t.lg.p50Us}/${t.lg.p99Us}/${t.lg.p999Us} µs  max ${t.lg.maxUs} µs`) +
      `  other load ${t.otherLoadPct.toFixed(0)}%/${t.otherLoadgenCorePct.toFixed(0)}%` +
      (t.lg.errors > 0 ? `  ${t.lg.errors} ERRORS` : '') +
      (t.lg.losses > 0 ? `  ${t.lg.losses} lost` : ''),
  );
}

/**
 * Every server on one workload, in rounds: trial i of each server runs before trial i+1 of any,
 * so a slow drift of the machine touches all servers alike. A server that cannot start is skipped
 * (and stays skipped for later workloads when the reason is its own, like a missing backend).
 */
async function runWorkload(
  root: string,
  binDir: string,
  workload: Workload,
  specs: ServerSpec[],
  skipped: Map<string, string>,
  opts: Options,
  nofile: number,
): Promise<Result[]> {
  const trials = new Map<string, Trial[]>(specs.map((s) => [s.name, []]));
  const ended = new Map<string, Result>();
  for (const spec of specs) {
    const skip = skipped.get(spec.name);
    if (skip === undefined) continue;
    console.log(`${workload.padEnd(14)} ${spec.name.padEnd(16)} skipped: ${skip}`);
    ended.set(spec.name, emptyResult(workload, spec, 'skipped', skip));
  }
  await runRounds({
    rounds: opts.trials,
    servers: specs.filter((s) => !ended.has(s.name)),
    trial: (spec) => runTrial(root, binDir, spec, workload, opts, nofile),
    ran: (spec, t) => {
      trials.get(spec.name)!.push(t);
      logTrial(workload, spec.name, t);
    },
    stopped: (spec, how, msg) => {
      if (how === 'skipped') {
        skipped.set(spec.name, msg);
        console.log(`${workload.padEnd(14)} ${spec.name.padEnd(16)} skipped: ${msg}`);
        ended.set(spec.name, emptyResult(workload, spec, 'skipped', msg));
      } else {
        console.log(`${workload.padEnd(14)} ${spec.name.padEnd(16)} FAILED: ${msg}`);
        ended.set(spec.name, emptyResult(workload, spec, 'failed', oneLine(msg)));
      }
    },
  });
  const ref = specs.find((s) => s.reference && !ended.has(s.name));
  const refTrials = ref === undefined ? [] : trials.get(ref.name)!;
  const refBest = refTrials.length > 0 ? bestTrial(refTrials) : null;
  const refCell: Reference | null =
    refBest === null ? null : { msgsPerSec: refBest.lg.msgsPerSec, p99Us: refBest.lg.p99Us ?? null };
  return specs.map((spec) => ended.get(spec.name) ?? summarize(workload, spec, trials.get(spec.name)!, refCell));
}

function printMachine(m: Machine): void {
  console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.kernel}`);
  console.log(`node ${m.node}, bun ${m.bun ?? '(not installed)'}, ${m.gcc}, open-file limit ${m.nofile}`);
}

/** The servers a workload runs: the proxies for a proxy workload, else the echo servers. */
function specsFor(workload: Workload, echo: ServerSpec[], proxies: ServerSpec[]): ServerSpec[] {
  return isProxy(workload) ? proxies : echo;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opts = parseOptions(argv);
  const root = findRoot(kTag, 'bench/c');
  const binDir = join(root, 'bench', 'bin');
  compileC(root, binDir);
  const machine = describeMachine(root);
  printMachine(machine);

  const haproxy = haproxyVersion();
  console.log(`haproxy ${haproxy ?? '(not installed)'}`);
  const catalogue = serverCatalogue(root, binDir, findBun(root));
  const proxyCat = proxyCatalogue(root, haproxy);
  new FlagChecks(kTag).known(
    'server',
    opts.only,
    [...catalogue, ...proxyCat].map((s) => s.name),
  );
  const chosen = (s: ServerSpec): boolean => opts.only === null || opts.only.includes(s.name);
  const echoSpecs = catalogue.filter(chosen);
  const proxySpecs = proxyCat.filter(chosen);
  const specs = [
    ...(opts.workloads.some((w) => !isProxy(w)) ? echoSpecs : []),
    ...(opts.workloads.some(isProxy) ? proxySpecs : []),
  ];
  const notes: string[] = [];
  const skipped = new Map<string, string>();
  for (const s of specs) if (s.unavailable !== null) skipped.set(s.name, s.unavailable);
  if (!existsSync(join(root, 'dist', 'examples', 'echo', 'main.js'))) {
    for (const s of specs) if (s.name.startsWith('gevent')) skipped.set(s.name, 'dist/ is not built (npm run build)');
  }
  if (opts.workloads.some((w) => !isProxy(w)) && !echoSpecs.some((s) => s.reference)) {
    notes.push('The C reference was not run (--only), so there are no ratios.');
  }
  if (opts.workloads.some(isProxy) && !proxySpecs.some((s) => s.reference && !skipped.has(s.name))) {
    notes.push('HAProxy was not run, so the proxy workloads have no ratios.');
  }

  const results: Result[] = [];
  for (const workload of opts.workloads) {
    if (workload === 'tcp-held' && machine.nofile < opts.heldConns + 64) {
      notes.push(`tcp-held skipped: the open-file limit ${machine.nofile} is below ${opts.heldConns} connections.`);
      continue;
    }
    const forWorkload = specsFor(workload, echoSpecs, proxySpecs);
    results.push(...(await runWorkload(root, binDir, workload, forWorkload, skipped, opts, machine.nofile)));
  }
  const failures = results.filter((r) => r.status === 'failed' || r.errors > 0).length;

  for (const [name, why] of skipped) notes.push(`\`${name}\` was skipped: ${why}`);
  const cells = (rs: Result[]): string => rs.map((r) => `${r.server}/${r.workload}`).join(', ');
  const saturated = results.filter((r) => r.loadgenSaturated);
  const both = saturated.filter((r) => r.serverCpuPct >= 90);
  const lgOnly = saturated.filter((r) => r.serverCpuPct < 90);
  if (both.length > 0) {
    notes.push(
      `Both the load generator and the server used 90% or more of their cores in: ${cells(both)}. On loopback ` +
        "each side's send also runs the other side's receive processing, so a server as cheap per message as the " +
        'load generator needs as much CPU as it does: these figures are what this two-core machine allows, shared ' +
        'by both sides, and the true limit of such a server is somewhat higher.',
    );
  }
  if (lgOnly.length > 0) {
    notes.push(
      `The load generator used 90% or more of its core, and the server less, in: ${cells(lgOnly)}; ` +
        "those figures are the load generator's limit rather than the server's.",
    );
  }
  const coreOne = results.filter((r) => r.status === 'ok' && isProxy(r.workload) && r.loadCorePct >= 90);
  if (coreOne.length > 0) {
    notes.push(
      `Core 1 (the load generator, the C echo upstream and the kernel's work for them) was 90% or more busy in: ` +
        `${cells(coreOne)}; those figures may be limited by core 1 rather than by the proxy.`,
    );
  }
  const busy = results.filter((r) => r.status === 'ok' && !isProxy(r.workload) && r.otherLoadPct >= 10);
  if (busy.length > 0) {
    notes.push(
      `Other work (other processes, or kernel threads such as ksoftirqd) used 10% or more of a core during: ${cells(busy)}.`,
    );
  }

  const echoResults = results.filter((r) => !isProxy(r.workload));
  const proxyResults = results.filter((r) => isProxy(r.workload));
  if (echoResults.length > 0) console.log(`\n${consoleTable(echoResults)}`);
  if (proxyResults.length > 0)
    console.log(`\nTCP proxy (ratio to ${kProxyReferenceName}):\n${proxyConsoleTable(proxyResults)}`);
  for (const n of notes) console.log(`note: ${n.replace(/`/g, '')}`);

  if (opts.writeDocs) {
    const info = {
      machine,
      date: new Date().toISOString(),
      command: commandLine('bench', 'dist/bench/run.js', argv),
      durationS: opts.durationS,
      warmupS: opts.warmupS,
      trials: opts.trials,
      engines: [...new Set(results.map((r) => r.engine).filter((e) => e !== ''))],
      haproxy,
      quietWaitS: opts.quietWaitS,
      notes,
    };
    writeDocs(root, {
      'benchmarks.md': markdownReport(results, info, 'benchmarks.svg'),
      'benchmarks.svg': barChartSvg(echoResults, 'gevent echo: msgs/s as a ratio to the C reference'),
    });
  }
  return failures > 0 ? 1 : 0;
}

runMain(main);
