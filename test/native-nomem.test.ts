/**
 * Out of memory in the native core never aborts the process.
 *
 * In C (test/c/nomem.c, linked with native/*.c and an allocator that fails on demand): a failed
 * queue copy, dirty-list growth, pending-list growth, table growth, and random failures each close
 * only the connection concerned, with ENOMEM, lose no record and keep the loop serving.
 *
 * In a real server: a child process (this file, run with GEVENT_NOMEM_CHILD=1) serves on the
 * native backend, lowers its own address-space limit (prlimit --as) to a little above what it
 * uses, and sends the same 1 GiB buffer twice to a client that never reads. The 2 GiB the kernel
 * does not take cannot be copied: that connection must close with NoMemoryError
 * (ERR_GEVENT_NO_MEMORY, 'output queue') while another client on the same server is echoed before
 * and after, and the child must exit by itself with status 0. Under test:asan (libasan preloaded),
 * the child's allocator is told to return NULL instead of reporting, its sanitizer log goes to a
 * directory of its own, and this file checks that log holds nothing but that refused allocation.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { nativeAvailable } from '../src/backend/native.js';
import { serve, type Conn } from '../src/index.js';

const kBuildScript = fileURLToPath(new URL('../../test/c/build.sh', import.meta.url));
const kBigBytes = 2 ** 30;
/** Address space the child may add after lowering its limit: room for V8, not for a 2 GiB copy. */
const kHeadroomBytes = 768 * 2 ** 20;

/** The child's report, one JSON line on stdout. */
interface ChildReport {
  code?: string;
  what?: string;
  message?: string;
  echoedBefore: boolean;
  echoedAfter: boolean;
  closedOthers: number;
}

function vmSizeBytes(): number {
  const m = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m![1]) * 1024;
}

function connectPort(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function echo(s: Socket, text: string): Promise<boolean> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) {
        s.off('data', onData);
        resolve(got === text);
      }
    };
    s.on('data', onData);
    s.write(text);
  });
}

/** The child: one server, a client that asks for 2 GiB and never reads, and an echo client. */
async function child(): Promise<void> {
  const big = Buffer.allocUnsafeSlow(kBigBytes);
  const ac = new AbortController();
  const report: ChildReport = { echoedBefore: false, echoedAfter: false, closedOthers: 0 };
  let bigConn: Conn | null = null;
  let onBigClosed!: () => void;
  const bigClosed = new Promise<void>((resolve) => (onBigClosed = resolve));
  let onServing!: (port: number) => void;
  const serving = new Promise<number>((resolve) => (onServing = resolve));
  const done = serve(
    {
      serving: (s) => void onServing(s.addrs[0]!.port),
      data(c, input) {
        const text = Buffer.from(input.bytes()).toString();
        input.retrieveAll();
        if (text !== 'big') return text;
        bigConn = c;
        c.send(big);
        c.send(big);
        return undefined;
      },
      closed(c, err) {
        if (c !== bigConn) {
          report.closedOthers++;
          return;
        }
        const e = err as (Error & { code?: string; what?: string }) | null;
        report.code = e?.code;
        report.what = e?.what;
        report.message = e?.message;
        onBigClosed();
      },
    },
    { backend: 'native', signal: ac.signal },
    'tcp://127.0.0.1:0',
  );
  const port = await serving;
  const limit = vmSizeBytes() + kHeadroomBytes;
  const lowered = spawnSync('prlimit', ['--pid', String(process.pid), `--as=${limit}:${limit}`]);
  if (lowered.status !== 0) throw new Error(`prlimit failed: ${lowered.stderr}`);

  const other = await connectPort(port);
  report.echoedBefore = await echo(other, 'before');
  const hog = await connectPort(port);
  hog.pause();
  hog.on('error', () => undefined);
  hog.write('big');
  await bigClosed;
  report.echoedAfter = await echo(other, 'after');
  hog.destroy();
  other.destroy();
  ac.abort();
  await done;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

if (process.env['GEVENT_NOMEM_CHILD'] === '1') {
  await child();
} else {
  const skipC = spawnSync(process.env['CC'] ?? 'gcc', ['--version']).status === 0 ? false : 'no C compiler';
  const skipChild = !nativeAvailable()
    ? 'native addon not built'
    : spawnSync('prlimit', ['--version']).status !== 0
      ? 'prlimit not available'
      : false;

  describe('native core: allocation failures (test/c/nomem.c)', { skip: skipC }, () => {
    let dir = '';
    let program = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'gevent-nomem-'));
      program = join(dir, 'nomem');
      const built = spawnSync('sh', [kBuildScript, 'nomem', program], { encoding: 'utf8' });
      assert.equal(built.status, 0, `test/c/nomem.c builds against native/ without Node-API:\n${built.stderr}`);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('closes only the connection concerned, with ENOMEM, and loses no record', () => {
      const run = spawnSync(program, { encoding: 'utf8', timeout: 60000 });
      assert.equal(run.signal, null, `killed by ${run.signal}:\n${run.stdout}${run.stderr}`);
      assert.equal(run.status, 0, run.stdout + run.stderr);
      for (const line of [
        /output copy: closed with ENOMEM\/QUEUE/,
        /dirty list: 100 QUEUED reports/,
        /pending list: \d+ reported, \d+ closed with ENOMEM\/REPORT, 100 CLOSE records kept/,
        /new connections: pending reserve refused/,
        /random failures: \d+ allocations failed/,
        /no abort/,
      ]) {
        assert.match(run.stdout, line);
      }
    });
  });

  describe('native backend: a 2 GiB output copy that cannot be allocated', { skip: skipChild }, () => {
    it('closes that connection with ERR_GEVENT_NO_MEMORY, echoes another, and exits normally', async () => {
      const asan = (process.env['LD_PRELOAD'] ?? '').includes('asan');
      const logDir = mkdtempSync(join(tmpdir(), 'gevent-nomem-asan-'));
      const env: NodeJS.ProcessEnv = { ...process.env, GEVENT_NOMEM_CHILD: '1' };
      if (asan) {
        const opts = (process.env['ASAN_OPTIONS'] ?? '')
          .split(':')
          .filter((o) => o !== '' && !o.startsWith('log_path='));
        env['ASAN_OPTIONS'] = [...opts, 'allocator_may_return_null=1', `log_path=${join(logDir, 'asan')}`].join(':');
      }
      try {
        const proc = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        const timer = setTimeout(() => proc.kill('SIGKILL'), 60000);
        const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
          proc.once('exit', (code, sig) => resolve([code, sig])),
        );
        clearTimeout(timer);
        assert.equal(signal, null, `the child was killed by ${signal}:\n${out}${err}`);
        assert.equal(status, 0, `the child exited with ${status}:\n${out}${err}`);
        const report = JSON.parse(out.trim().split('\n').pop()!) as ChildReport;
        assert.equal(report.code, 'ERR_GEVENT_NO_MEMORY', report.message);
        assert.equal(report.what, 'output queue');
        assert.equal(report.echoedBefore, true, 'the other client was echoed before');
        assert.equal(report.echoedAfter, true, 'the other client was echoed after');
        assert.equal(report.closedOthers, 1, 'the other client closed normally');
        for (const f of readdirSync(logDir)) {
          const log = readFileSync(join(logDir, f), 'utf8');
          const lines = log.split('\n').filter((l) => l.trim() !== '' && !/failed to allocate/.test(l));
          assert.deepEqual(lines, [], `the child's sanitizer log holds only the refused allocation:\n${log}`);
        }
      } finally {
        rmSync(logDir, { recursive: true, force: true });
      }
    });
  });
}
