/**
 * accept() failures, injected: the echo server runs in a child process under
 * `strace -f -e inject=accept4:error=E:when=1..3`, so its first three accept4 calls fail with E.
 * For each E of EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED and EINTR, the listener survives:
 * after the three failures (set off by a first client, which may be served or dropped but must
 * not hang) and once the listener is idle again (no accept4 for 300 ms: on EMFILE/ENFILE the
 * reserve-fd trick accepts and closes whatever is queued, and under strace that takes long enough
 * to catch a client connecting meanwhile), a new client is accepted and echoed, and the server
 * exits cleanly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { backendsUnderTest, readEnd, spawnChildServer, within } from './helpers.js';

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
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=accept4', '-e', 'inject=accept4:error=EINTR:when=1', 'true'], { stdio: 'ignore' });
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

const kSkip = straceSkip();

for (const backend of await backendsUnderTest()) {
  describe(`injected accept4 failures (${backend})`, { skip: kSkip }, () => {
    for (const errno of kErrnos) {
      test(`after ${kInjected} accept4 failures with ${errno}, the listener still accepts and echoes`, async () => {
        const server = await spawnChildServer('strace', [
          '-f', '-qq', '-e', 'trace=accept4', '-e', `inject=accept4:error=${errno}:when=1..${kInjected}`,
          process.execPath, kServer, backend,
        ]);
        /** The three failures happened, and no accept4 has run for 300 ms since: the listener is idle again. */
        let traced = '';
        let stillFor = 0;
        const recovered = (): boolean => {
          const trace = server.stderr();
          stillFor = trace === traced ? stillFor + 1 : 0;
          traced = trace;
          return trace.split('(INJECTED)').length - 1 >= kInjected && stillFor * kPollMs >= 300;
        };
        let first = { how: '', data: '' };
        let second = { how: '', data: '' };
        try {
          first = await echoOf(server.port, 'first', 5000);
          await within(pollUntil(recovered), 5000, `${kInjected} injected failures, then an idle listener`);
          second = await echoOf(server.port, 'second', 5000);
        } finally {
          const how = await server.stop();
          assert.equal(how, 0, `the server exited with ${how}; stderr: ${server.stderr().slice(-1500)}`);
        }
        assert.notEqual(first.how, 'no answer', 'the client that met the failures was left hanging');
        assert.deepEqual(second, { how: 'echo', data: 'second' }, `after the failures (the first client: ${first.how})`);
        for (const l of server.lines.filter((x) => x.msg['ev'] === 'error')) {
          assert.equal(l.msg['code'], 'ERR_GEVENT_ACCEPT', `onError got ${JSON.stringify(l.msg)}`);
        }
      });
    }
  });
}
