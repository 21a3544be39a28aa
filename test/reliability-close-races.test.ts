/**
 * Closes racing everything else: in each round a connection is closed (by the client, by a reset,
 * or by the server's Action.Close) while inbound data, send(), write() and wake() are in flight on
 * it, from inside callbacks and from setImmediate/microtasks after them. Every connection that
 * opened gets exactly one `closed`, nothing (data, drained, end, closed) fires for it afterwards,
 * and send()/write() on it return false from then on.
 *
 * Size: 2,000 rounds in CI (50 at a time); GEVENT_STRESS=1 runs 10,000.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { Action, type Conn } from '../src/index.js';
import { backendsUnderTest, openFdCount, sized, startServer, waitFor, within, assertNoFdLeak } from './helpers.js';

const kRounds = sized(2000, 10_000);
const kInFlight = 50;
const kScenarios = 6;

interface Track {
  scenario: number;
  closes: number;
  after: string[];
  lateOk: number;
  /** Scenario 5 arms its idle timeout once (each setIdleTimeout restarts the timer). */
  armed: boolean;
}

/** Client side of round `i`: what it does decides the scenario (its first byte tells the server). */
function clientRound(port: number, i: number): Promise<void> {
  const scenario = i % kScenarios;
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('close', () => resolve());
    s.once('connect', () => {
      const msg = Buffer.alloc(1 + (i % 7) * 1000, 0x30 + scenario);
      switch (scenario) {
        case 0: // write, then destroy at once
          s.write(msg);
          s.destroy();
          break;
        case 1: // write, then reset at once
          s.write(msg);
          s.resetAndDestroy();
          break;
        case 2: // write and FIN together, then destroy when anything comes back
          s.end(msg);
          s.once('data', () => s.destroy());
          break;
        default: // write, and read until the server closes
          s.write(msg);
          s.resume();
          break;
      }
    });
  });
}

for (const backend of await backendsUnderTest()) {
  describe(`close races (${backend})`, () => {
    test(`${kRounds} rounds of close racing inbound data, send, write and wake: exactly one closed each, nothing after it`, async () => {
      const fds = openFdCount();
      const tracks: Track[] = [];
      const onErrors: Error[] = [];
      const t = (c: Conn): Track => c.context as Track;
      const event = (c: Conn, name: string): void => {
        if (t(c).closes > 0) t(c).after.push(name);
      };
      /** Pokes at a connection that is closing or closed; every write must be refused once it is closed. */
      const poke = (c: Conn): void => {
        const wasOpen = c.open;
        const a = c.send('late');
        const b = c.write('late');
        c.wake();
        if (!wasOpen && (a || b)) t(c).lateOk++;
      };
      const run = await startServer(
        {
          opened(c) {
            const track: Track = { scenario: -1, closes: 0, after: [], lateOk: 0, armed: false };
            tracks.push(track);
            c.context = track;
          },
          data(c, input) {
            event(c, 'data');
            const track = t(c);
            if (track.scenario === -1) track.scenario = input.readByte() - 0x30;
            input.retrieveAll();
            switch (track.scenario) {
              case 0:
              case 1:
              case 2:
                setImmediate(() => poke(c));
                queueMicrotask(() => poke(c));
                return Action.Close;
              case 3: // big write, Close, then a wake that must not run data again
                c.write(Buffer.alloc(256 * 1024, 1));
                c.wake();
                setImmediate(() => poke(c));
                return { out: 'bye', action: Action.Close };
              case 4: // Close now, and Close again from a wake (data must not run again)
                c.wake();
                setTimeout(() => poke(c), 1);
                return Action.Close;
              default: // close by a 1 ms idle timeout, with sends and a wake racing it
                if (track.armed) return null;
                track.armed = true;
                setImmediate(() => {
                  c.send('x');
                  c.wake();
                  c.setIdleTimeout(1);
                });
                return 'y';
            }
          },
          drained: (c) => event(c, 'drained'),
          end: (c) => event(c, 'end'),
          closed(c) {
            event(c, 'closed');
            t(c).closes++;
            poke(c);
            setImmediate(() => poke(c));
          },
        },
        { backend, onError: (err) => onErrors.push(err), allowHalfOpen: false },
        'tcp://127.0.0.1:0',
      );
      const port = run.server.addrs[0]!.port;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < kRounds) await clientRound(port, next++);
      };
      try {
        await within(Promise.all(Array.from({ length: kInFlight }, worker)), 60_000, `${kRounds} rounds`);
        await within(
          waitFor(() => tracks.every((x) => x.closes > 0), 'every closed', 10_000),
          10_000,
          'every closed',
        );
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        await within(run.stop(), 5000, 'serve() to settle');
      }
      const wrong: string[] = [];
      for (const [i, x] of tracks.entries()) {
        if (x.closes !== 1) wrong.push(`#${i} (scenario ${x.scenario}): closed fired ${x.closes} times`);
        if (x.after.length > 0) wrong.push(`#${i} (scenario ${x.scenario}): ${x.after.join(', ')} after closed`);
        if (x.lateOk > 0) wrong.push(`#${i} (scenario ${x.scenario}): send/write after closed returned true`);
      }
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} connections misbehaved`);
      assert.deepEqual(onErrors, []);
      assert.ok(tracks.length > kRounds / 2, `only ${tracks.length} of ${kRounds} connections opened`);
      assertNoFdLeak(fds);
    });
  });
}
