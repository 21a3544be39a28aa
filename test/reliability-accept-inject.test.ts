/**
 * accept() failures, injected: the echo server runs in a child process under
 * `strace -f -e inject=accept4:error=E:when=1..3`, so its first three accept4 calls fail with E.
 * For each E of EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED and EINTR, the listener survives:
 * after the three failures (set off by a first client, which may be served or dropped but must
 * not hang) and once the listener is idle again (no accept4 for 300 ms: on EMFILE/ENFILE the
 * reserve-fd trick accepts and closes whatever is queued, and under strace that takes long enough
 * to catch a client connecting meanwhile), a new client is accepted and echoed, and the server
 * exits cleanly. The resource shortages (EMFILE, ENFILE, ENOBUFS, ENOMEM) reach onError as an
 * AcceptError: always on the native backend; on the portable one only where Node's net.Server
 * surfaces them (Node 20's does not: libuv retries or sheds the connection and tells no one).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { backendsUnderTest, netHidesAcceptErrors, readEnd, spawnChildServer, within } from './helpers.js';

const kServer = fileURLToPath(new URL('./fixtures/reliability-emfile-server.js', import.meta.url));
const kErrnos = ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'ECONNABORTED', 'EINTR'] as const;
const kInjected = 3;
const kPollMs = 20;

/** Resolves once `pred()`, called every kPollMs, returns true. */
async function pollUntil(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, kPollMs));
}

/** Why strace cannot be used here, or false when it can (installed, and allowed to trace). */
function straceSkip(): string | false {
  try {
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=accept4', '-e', 'inject=accept4:error=EINTR:when=1', 'true'], {
      stdio: 'ignore',
    });
    return false;
  } catch (err) {
    return `strace is not usable here (${(err as Error).message.split('\n')[0]})`;
  }
}

/** Connects, sends `text`, and resolves with what came back before the server closed or `ms` passed. */
function echoOf(port: number, text: string, ms: number): Promise<{ how: string; data: string }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1', () => s.write(text));
    let data = '';
    const done = (how: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ how, data });
    };
    const timer = setTimeout(() => done('no answer'), ms);
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (data === text) done('echo');
    });
    void readEnd(s).then((r) => done(r.how));
  });
}

interface Outcome {
  first: { how: string; data: string };
  second: { how: string; data: string };
  exit: number | string;
  stderr: string;
  lines: { at: number; msg: Record<string, unknown> }[];
}

/** Runs the server under strace with `errno` injected into its first accept4 calls, and two clients. */
async function scenario(backend: string, errno: string): Promise<Outcome> {
  const server = await spawnChildServer('strace', [
    '-f',
    '-qq',
    '-e',
    'trace=accept4',
    '-e',
    `inject=accept4:error=${errno}:when=1..${kInjected}`,
    process.execPath,
    kServer,
    backend,
  ]);
  let traced = '';
  let stillFor = 0;
  /** The failures happened, and no accept4 has run for 300 ms since: the listener is idle again. */
  const recovered = (): boolean => {
    const trace = server.stderr();
    stillFor = trace === traced ? stillFor + 1 : 0;
    traced = trace;
    return trace.split('(INJECTED)').length - 1 >= kInjected && stillFor * kPollMs >= 300;
  };
  const o: Outcome = {
    first: { how: '', data: '' },
    second: { how: '', data: '' },
    exit: -1,
    stderr: '',
    lines: server.lines,
  };
  try {
    o.first = await echoOf(server.port, 'first', 5000);
    await within(pollUntil(recovered), 5000, `${kInjected} injected failures, then an idle listener`);
    o.second = await echoOf(server.port, 'second', 5000);
  } finally {
    o.exit = await server.stop();
    o.stderr = server.stderr();
  }
  return o;
}

/** Resource shortages, which onError must hear about (EINTR and ECONNABORTED are retried silently). */
const kReported = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

const kSkip = straceSkip();

/**
 * The portable backend reports what net.Server's 'error' event tells it (syscall 'accept'); on a
 * Node whose net.Server keeps accept failures to itself, there is nothing to report, so that test
 * is skipped with the probe's finding.
 */
const kPortableReportSkip = kSkip === false ? netHidesAcceptErrors() : kSkip;

function reportSkip(backend: string): string | false {
  return backend === 'portable' ? kPortableReportSkip : false;
}

for (const backend of await backendsUnderTest()) {
  for (const errno of kErrnos) {
    describe(`${kInjected} injected accept4 failures with ${errno} (${backend})`, { skip: kSkip }, () => {
      let o: Outcome;
      before(async () => {
        o = await scenario(backend, errno);
      });

      test('the listener still accepts and echoes, the client that met them is not left hanging, and the server exits cleanly', () => {
        assert.equal(o.exit, 0, `the server exited with ${o.exit}; stderr: ${o.stderr.slice(-1500)}`);
        assert.notEqual(o.first.how, 'no answer', 'the client that met the failures was left hanging');
        assert.deepEqual(
          o.second,
          { how: 'echo', data: 'second' },
          `after the failures (the first client: ${o.first.how})`,
        );
        for (const l of o.lines.filter((x) => x.msg['ev'] === 'error')) {
          assert.equal(l.msg['code'], 'ERR_GEVENT_ACCEPT', `onError got ${JSON.stringify(l.msg)}`);
        }
      });

      if (kReported.has(errno)) {
        test(`onError hears of it: an AcceptError with errno ${errno}`, { skip: reportSkip(backend) }, () => {
          const reports = o.lines.filter((x) => x.msg['ev'] === 'error' && x.msg['code'] === 'ERR_GEVENT_ACCEPT');
          assert.ok(reports.length >= 1, 'no accept failure reached onError');
          assert.equal(reports[0]!.msg['errno'], errno);
        });
      }
    });
  }
}
