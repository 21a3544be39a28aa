/**
 * A closed connection's fd is reused by the next accept, and nothing aimed at the old connection
 * may reach the new one. Connection A closes; B is then accepted (on A's fd number in most rounds:
 * the clients run in a child process, so this process holds only server fds); the server keeps
 * calling A.send()/A.write()/A.wake() from timers and from B's own `data`, and B must only ever
 * receive its own reply. Every such call on the closed A returns false.
 *
 * Size: 500 rounds in CI; GEVENT_STRESS=1 runs 5,000.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { Action, type Conn, type RingBuffer } from '../src/index.js';
import { backendsUnderTest, openFdCount, sized, startServer, within, assertNoFdLeak } from './helpers.js';

const kRounds = sized(500, 5000);
const kClient = fileURLToPath(new URL('./fixtures/reliability-fd-reuse-client.js', import.meta.url));

function fdList(): string {
  return readdirSync('/proc/self/fd').sort().join(',');
}

/** Takes one `<word> <n>\n` line from the input, if a whole one has arrived. */
function takeLine(input: RingBuffer): [string, number] | null {
  const text = Buffer.from(input.bytes()).toString('latin1');
  const k = text.indexOf('\n');
  if (k < 0) return null;
  input.retrieve(k + 1);
  const [what, n] = text.slice(0, k).split(' ');
  return [what!, Number(n)];
}

for (const backend of await backendsUnderTest()) {
  describe(`fd reuse (${backend})`, () => {
    test(`${kRounds} rounds: bytes sent to a closed connection never reach the connection accepted on its fd after it`, async () => {
      const fds = openFdCount();
      let control: Conn | null = null;
      const zombies: Conn[] = [];
      const fdsOfA = new Map<number, string>();
      let reused = 0;
      let lateAccepted = 0;
      let closedCount = 0;
      const errors: Error[] = [];
      /** Aims A's tag at closed connection A in every way there is; counts any that claims success. */
      const aimAt = (a: Conn): void => {
        const tag = `A-TAG ${(a.context as { i: number }).i}\n`;
        if (a.send(tag)) lateAccepted++;
        if (a.write(tag)) lateAccepted++;
        a.wake();
      };
      const run = await startServer(
        {
          data(c, input) {
            for (let line = takeLine(input); line !== null; line = takeLine(input)) {
              const [what, i] = line;
              if (what === 'C') {
                control = c;
              } else if (what === 'A') {
                c.context = { kind: 'A', i };
                fdsOfA.set(i, fdList());
                c.write('k');
              } else if (what === 'B') {
                c.context = { kind: 'B', i };
                if (fdsOfA.get(i) === fdList()) reused++;
                fdsOfA.delete(i);
                for (const a of zombies.splice(0)) aimAt(a);
                return { out: `B ${i} only\n`, action: Action.Close };
              }
            }
            return null;
          },
          closed(c, err) {
            closedCount++;
            if (err) errors.push(err);
            const ctx = c.context as { kind: string; i: number } | undefined;
            if (ctx?.kind !== 'A') return;
            zombies.push(c);
            aimAt(c);
            setTimeout(() => aimAt(c), 0);
            setTimeout(() => aimAt(c), 3);
            control!.send(`closed ${ctx.i}\n`);
          },
        },
        { backend, onError: (err) => errors.push(err) },
        'tcp://127.0.0.1:0',
      );
      const child = spawn(process.execPath, [kClient, String(run.server.addrs[0]!.port), String(kRounds)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => (out += d));
      try {
        const code = await within(
          new Promise<number | null>((r) => child.once('exit', r)),
          60_000,
          'the client process',
        );
        assert.equal(code, 0, 'the client process failed');
      } finally {
        child.kill();
        await within(run.stop(), 5000, 'serve() to settle');
      }
      const result = JSON.parse(out) as { rounds: number; bad: string[] };
      assert.equal(result.rounds, kRounds);
      assert.deepEqual(result.bad.slice(0, 10), [], `${result.bad.length} rounds saw foreign bytes`);
      assert.equal(lateAccepted, 0, 'send()/write() on a closed connection returned true');
      assert.deepEqual(errors, []);
      assert.equal(closedCount, 2 * kRounds + 1);
      assert.ok(
        reused >= kRounds / 2,
        `B reused A's fd in only ${reused} of ${kRounds} rounds: the test did not exercise fd reuse`,
      );
      assertNoFdLeak(fds);
    });
  });
}
