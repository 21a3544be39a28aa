/**
 * Conn.pipe() on every backend, between two connections the server accepted (clients A and B on
 * loopback): bytes go both ways byte-exact without `data` being called, input held before the pipe
 * goes first, the byte counters include what was piped, the destination's queue stays bounded while
 * its reader stops (and everything arrives once it reads), a FIN is passed on (half-close), unpipe()
 * and a closed destination give the input back to `data`, a connection can pipe to itself (an
 * echo), and bad destinations are refused with InvalidArgumentError.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { InvalidArgumentError, type Conn, type Events, type Server, type ServeOptions } from '../src/index.js';
import {
  assertNoFdLeak,
  backendsUnderTest,
  closed,
  connectTo,
  openFdCount,
  readExactly,
  readToEnd,
  sleep,
  startServer,
  waitFor,
  within,
  type Running,
} from './helpers.js';

const kHighWater = 64 * 1024;

/** A server whose first two connections (in `conns`, in accept order) the test drives. */
interface Pair {
  readonly run: Running;
  readonly server: Server;
  readonly conns: Conn[];
  /** `data` calls per connection index. */
  readonly dataCalls: number[];
  /** Bytes `data` saw per connection index (it consumes everything). */
  readonly dataBytes: Buffer[][];
  readonly closedErrors: (Error | null)[];
  /** Connection indexes whose `data` consumes nothing (their input is held). */
  readonly keep: Set<number>;
  a: Socket;
  b: Socket;
}

async function startPair(
  backend: string,
  opts: Partial<ServeOptions> = {},
  events: Partial<Events> = {},
): Promise<Pair> {
  const conns: Conn[] = [];
  const dataCalls: number[] = [];
  const dataBytes: Buffer[][] = [];
  const closedErrors: (Error | null)[] = [];
  const keep = new Set<number>();
  const run = await startServer(
    {
      opened(c) {
        c.context = conns.length;
        conns.push(c);
        dataCalls.push(0);
        dataBytes.push([]);
      },
      data(c, input) {
        const i = c.context as number;
        dataCalls[i]!++;
        if (keep.has(i)) return;
        dataBytes[i]!.push(Buffer.from(input.bytes()));
        input.retrieveAll();
      },
      closed(c, err) {
        closedErrors[c.context as number] = err;
      },
      ...events,
    },
    { backend: backend as ServeOptions['backend'], highWaterMark: kHighWater, ...opts },
    'tcp://127.0.0.1:0',
  );
  const pair: Pair = { run, server: run.server, conns, dataCalls, dataBytes, closedErrors, keep, a: null!, b: null! };
  const client = (): Promise<Socket> => {
    if (opts.allowHalfOpen !== true) return connectTo(run.server.addrs[0]!);
    // Clients that keep writing after the server's FIN, as the half-open server does.
    const s = connect({ port: run.server.addrs[0]!.port, host: '127.0.0.1', allowHalfOpen: true });
    return new Promise((resolve, reject) => s.once('connect', () => resolve(s)).once('error', reject));
  };
  pair.a = await client();
  await waitFor(() => conns.length === 1, 'A to open');
  pair.b = await client();
  await waitFor(() => conns.length === 2, 'B to open');
  return pair;
}

async function stopPair(p: Pair): Promise<void> {
  p.a.destroy();
  p.b.destroy();
  await within(p.run.stop(), 10_000, 'server stop');
  await Promise.all([closed(p.a), closed(p.b)]);
}

const backends = await backendsUnderTest();
for (const backend of backends) {
  describe(`Conn.pipe (${backend})`, () => {
    test('both ways byte-exact, no data calls, held input first, counters include piped bytes', async () => {
      const fds = openFdCount();
      const p = await startPair(backend);
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        // Held before the pipe: A's `data` consumes nothing, so its input stays in the connection.
        p.keep.add(0);
        const early = Buffer.from('before the pipe|');
        p.a.write(early);
        await waitFor(() => p.dataCalls[0]! > 0, 'data to see the early bytes');
        const callsBefore = p.dataCalls[0]!;
        ca.pipe(cb);
        cb.pipe(ca);
        assert.equal(ca.pipedTo, cb);
        assert.equal(cb.pipedTo, ca);
        const ab = randomBytes(3 << 20);
        const ba = randomBytes(2 << 20);
        p.a.write(ab);
        p.b.write(ba);
        const [atB, atA] = await within(
          Promise.all([readExactly(p.b, early.length + ab.length), readExactly(p.a, ba.length)]),
          30_000,
          'both directions',
        );
        assert.ok(atB.equals(Buffer.concat([early, ab])), 'A -> B byte-exact, held input first');
        assert.ok(atA.equals(ba), 'B -> A byte-exact');
        assert.deepEqual(p.dataCalls, [callsBefore, 0], 'data is not called for piped connections');
        await waitFor(() => ca.bytesWritten === ba.length && cb.bytesWritten === early.length + ab.length, 'written');
        assert.equal(ca.bytesRead, early.length + ab.length);
        assert.equal(cb.bytesRead, ba.length);
        p.a.destroy();
        p.b.destroy();
        await waitFor(() => p.server.connections === 0, 'both to close');
        const stats = p.server.stats();
        assert.equal(stats.bytesRead, early.length + ab.length + ba.length, 'server bytesRead counts piped input');
        assert.equal(
          stats.bytesWritten,
          early.length + ab.length + ba.length,
          'server bytesWritten counts piped output',
        );
      } finally {
        await stopPair(p);
      }
      assertNoFdLeak(fds);
    });

    test("the destination's queue stays bounded while its reader stops; all arrives once it reads", async () => {
      const p = await startPair(backend);
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        ca.pipe(cb);
        p.b.pause();
        const total = 32 << 20;
        const payload = randomBytes(total);
        let maxQueued = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            maxQueued = Math.max(maxQueued, cb.queuedBytes);
            await sleep(2);
          }
        })();
        p.a.write(payload);
        // B reads nothing: the relay fills B's socket, then holds A.
        await sleep(500);
        const got = readExactly(p.b, total);
        const back = await within(got, 60_000, '32 MiB at B');
        sampling = false;
        await sampler;
        assert.ok(back.equals(payload), 'byte-exact after the reader resumed');
        // One read past the mark at most (the core reads up to 64 KiB a wake-up; node:net up to 64 KiB a chunk).
        assert.ok(maxQueued <= kHighWater + 128 * 1024, `B's queue reached ${maxQueued} bytes`);
        assert.equal(p.dataCalls[0], 0);
      } finally {
        await stopPair(p);
      }
    });

    test('a FIN is passed on; the other direction goes on (allowHalfOpen); both ends close the pair', async () => {
      const p = await startPair(backend, { allowHalfOpen: true });
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        ca.pipe(cb);
        cb.pipe(ca);
        const bDone = readToEnd(p.b);
        p.a.end('last words');
        const atB = await within(bDone, 10_000, 'B to see the end');
        assert.equal(atB.toString(), 'last words');
        const aDone = readToEnd(p.a);
        p.b.end('a reply after the FIN');
        const atA = await within(aDone, 10_000, 'A to see the reply and the end');
        assert.equal(atA.toString(), 'a reply after the FIN');
        await waitFor(() => p.server.connections === 0, 'the pair to close');
        assert.deepEqual(p.closedErrors, [null, null]);
      } finally {
        await stopPair(p);
      }
    });

    test('unpipe() and a closed destination give the input back to data', async () => {
      const p = await startPair(backend);
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        ca.pipe(cb);
        p.a.write('piped');
        assert.equal((await within(readExactly(p.b, 5), 5000, 'piped bytes')).toString(), 'piped');
        ca.unpipe();
        assert.equal(ca.pipedTo, null);
        p.a.write('to data');
        await waitFor(() => Buffer.concat(p.dataBytes[0]!).toString() === 'to data', 'data to see the bytes');
        ca.pipe(cb);
        p.a.write('piped again');
        assert.equal((await within(readExactly(p.b, 11), 5000, 'piped again')).toString(), 'piped again');
        p.b.destroy();
        await waitFor(() => !cb.open, 'B to close');
        assert.equal(ca.pipedTo, null, 'the pipe ended with its destination');
        p.a.write('after B closed');
        await waitFor(() => Buffer.concat(p.dataBytes[0]!).toString() === 'to dataafter B closed', 'data again');
      } finally {
        await stopPair(p);
      }
    });

    test('piped traffic keeps both sides from the idle timeout; silence closes them with it', async () => {
      const p = await startPair(backend, { waitTimeout: 300 });
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        ca.pipe(cb);
        p.b.resume();
        // One byte every 50 ms for 1.2 s: four idle timeouts' worth, never 300 ms apart.
        for (let i = 0; i < 24; i++) {
          p.a.write('x');
          await sleep(50);
        }
        assert.ok(ca.open && cb.open, 'both still open while bytes flow through the pipe');
        await waitFor(() => !ca.open && !cb.open, 'both to time out once silent', 10_000);
        assert.equal(p.closedErrors[0]?.name, 'IdleTimeoutError');
        assert.equal(p.closedErrors[1]?.name, 'IdleTimeoutError');
      } finally {
        await stopPair(p);
      }
    });

    test("closing a destination whose reader stalled lets the source's input reach data again", async () => {
      const p = await startPair(backend);
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        ca.pipe(cb);
        p.b.pause(); // B never reads: the pipe fills B's socket, then holds A
        p.a.write(randomBytes(32 << 20));
        let last = -1;
        await waitFor(
          () => {
            const now = ca.bytesRead;
            const still = now === last;
            last = now;
            return still && now > 0;
          },
          'A to stop being read',
          30_000,
        );
        assert.equal(p.dataCalls[0], 0);
        cb.close(); // a flushed close that B's stalled reader never lets finish
        assert.equal(ca.pipedTo, null, 'the pipe stopped with the close');
        p.a.write('after the close'); // whatever the kernel buffered of the 32 MiB, more input comes
        await waitFor(() => p.dataCalls[0]! > 0, "A's input to reach data", 10_000);
      } finally {
        await stopPair(p);
      }
    });

    test('a connection piped to itself echoes', async () => {
      const p = await startPair(backend);
      try {
        const [ca] = p.conns as [Conn];
        ca.pipe(ca);
        const payload = randomBytes(1 << 20);
        p.a.write(payload);
        const back = await within(readExactly(p.a, payload.length), 20_000, 'the echo');
        assert.ok(back.equals(payload));
        assert.equal(p.dataCalls[0], 0);
      } finally {
        await stopPair(p);
      }
    });

    test('bad destinations are refused with InvalidArgumentError naming them', async () => {
      const p = await startPair(backend);
      const other = await startPair(backend);
      try {
        const [ca, cb] = p.conns as [Conn, Conn];
        assert.throws(
          () => ca.pipe({} as Conn),
          (e: unknown) => e instanceof InvalidArgumentError && /pipe dest/.test(String(e)),
        );
        assert.throws(() => ca.pipe(other.conns[0]!), InvalidArgumentError, 'a connection of another server');
        cb.pipe(ca);
        assert.throws(() => ca.pipe(ca), InvalidArgumentError, 'a destination another connection pipes into');
        cb.unpipe();
        cb.end();
        assert.throws(() => ca.pipe(cb), /not ended/);
        p.a.write('still served');
        await waitFor(() => Buffer.concat(p.dataBytes[0]!).toString() === 'still served', 'A still served by data');
      } finally {
        await stopPair(p);
        await stopPair(other);
      }
    });
  });
}
