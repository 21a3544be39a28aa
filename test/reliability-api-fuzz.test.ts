/**
 * API fuzzing with fast-check: random sequences of calls with odd arguments, against a live server
 * and against serve() itself. Only documented errors may come out (a GeventError whose code is
 * ERR_GEVENT_*), never a TypeError, an abort or a crash; every connection still gets exactly one
 * `closed`, and the server keeps serving.
 * - Conn: write/send of 0 bytes, huge strings, wrong types and foreign views; setIdleTimeout with
 *   2^31, 1e300, NaN, strings; pause/resume/end/wake in any order; callbacks returning odd values
 *   or Action.Close twice (through wake), write after end; pipe() to odd values and to itself,
 *   unpipe(). From inside callbacks and from outside.
 * - serve(): odd options (negative, fractional, 2^31, Infinity, NaN, wrong types; proxyHeaderTimeout
 *   too), PROXY protocol listeners and odd ?proxy values, bad ports, a unix
 *   path over 107 bytes, odd events objects. Valid combinations run with an aborted signal, so they
 *   bind and settle at once.
 *
 * Size: 2,000 connection sequences and 1,000 serve() calls per backend in CI; GEVENT_STRESS=1 runs
 * 10,000 of each.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Action, GeventError, serve, type Conn, type Events } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  sized,
  startServer,
  within,
  assertNoFdLeak,
} from './helpers.js';

const kConnRuns = sized(2000, 10_000);
const kServeRuns = sized(2000, 10_000);

/** Arguments no caller should pass, and some they might. Functions make fresh values per use. */
const kOdd: readonly (() => unknown)[] = [
  () => undefined,
  () => null,
  () => 0,
  () => -1,
  () => 1,
  () => 1.5,
  () => 200,
  () => NaN,
  () => Infinity,
  () => -Infinity,
  () => 2 ** 31,
  () => 2 ** 31 - 1,
  () => -(2 ** 31),
  () => 2 ** 32,
  () => 2 ** 53,
  () => 1e300,
  () => -0,
  () => '',
  () => 'x',
  () => '2',
  () => 'é'.repeat(40_000),
  () => ({}),
  () => [],
  () => [1, 2, 3],
  () => true,
  () => Symbol('odd'),
  () => 10n,
  () => () => 1,
  () => new Uint8Array(0),
  () => new Uint8Array(7),
  () => Buffer.alloc(200_000, 1).subarray(3),
  () => new Uint16Array(4),
  () => new Float64Array(2),
  () => new ArrayBuffer(8),
  () => new DataView(new ArrayBuffer(4)),
  () => new Uint8Array(new SharedArrayBuffer(70_000)),
  () => detached(),
  () => Object.create(null),
  () => new Date(0),
  () => new String('boxed'),
  () => ({ length: 2 ** 31 }),
  () => ({ toString: () => 'x', valueOf: () => 5 }),
  () => Action.Close,
  () => Action.Shutdown,
];

/** A Uint8Array whose buffer has been transferred away (length 0, detached). */
function detached(): Uint8Array {
  const u = new Uint8Array(32);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
}

const odd = fc.integer({ min: 0, max: kOdd.length - 1 });

type Op =
  | 'write'
  | 'send'
  | 'setIdleTimeout'
  | 'pause'
  | 'resume'
  | 'end'
  | 'wake'
  | 'pipe'
  | 'pipeSelf'
  | 'unpipe'
  | 'returnClose'
  | 'returnOdd';
const kOps: readonly Op[] = [
  'pipe',
  'pipeSelf',
  'unpipe',
  'write',
  'send',
  'setIdleTimeout',
  'pause',
  'resume',
  'end',
  'wake',
  'returnClose',
  'returnOdd',
];

interface Cmd {
  op: Op;
  arg: number;
  inside: boolean;
}

const cmdArb = fc.record({ op: fc.constantFrom(...kOps), arg: odd, inside: fc.boolean() });

/**
 * Runs `body` with process warnings kept off stderr: huge idle timeouts make the timing wheel emit
 * a TimeoutOverflowWarning per millisecond (a known bug with its own test in
 * reliability-idle-timeout), which would bury the report.
 */
async function quietly<T>(body: () => Promise<T>): Promise<T> {
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  const ignore = (): void => undefined;
  process.on('warning', ignore);
  try {
    return await body();
  } finally {
    process.off('warning', ignore);
    for (const l of printers) process.on('warning', l);
  }
}

/** Runs fc.assert, rethrowing a failure with its original error's message (fast-check keeps it only as `cause`). */
async function property<T>(arb: fc.Arbitrary<T>, numRuns: number, body: (v: T) => Promise<void>): Promise<void> {
  try {
    await quietly(() => fc.assert(fc.asyncProperty(arb, body), { numRuns }));
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${(err as Error).message}\ncause: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause: err,
    });
  }
}

/** Whether `err` is one of the library's documented errors. */
function documented(err: unknown): boolean {
  return err instanceof GeventError && /^ERR_GEVENT_[A-Z_]+$/.test(err.code) && err.message.startsWith('gevent: ');
}

function describeArg(i: number): string {
  return kOdd[i]!.toString().replace(/^\(\) => /, '');
}

/** Runs one command on `c`; returns what a data callback should return for it (returnClose/returnOdd), else undefined. */
function apply(c: Conn, cmd: Cmd, violations: string[]): unknown {
  const arg = kOdd[cmd.arg]!();
  try {
    switch (cmd.op) {
      case 'write':
        c.write(arg as Uint8Array);
        break;
      case 'send':
        c.send(arg as Uint8Array);
        break;
      case 'setIdleTimeout':
        c.setIdleTimeout(arg as number);
        break;
      case 'pause':
        c.pause();
        break;
      case 'resume':
        c.resume();
        break;
      case 'end':
        c.end();
        break;
      case 'wake':
        c.wake();
        break;
      case 'pipe':
        c.pipe(arg as Conn, kOdd[(cmd.arg + 1) % kOdd.length]!() as undefined);
        break;
      case 'pipeSelf':
        c.pipe(c);
        break;
      case 'unpipe':
        c.unpipe();
        break;
      case 'returnClose':
        return Action.Close;
      case 'returnOdd':
        return arg === Action.Shutdown ? 3 : arg;
    }
  } catch (err) {
    if (!documented(err)) violations.push(`${cmd.op}(${describeArg(cmd.arg)}) threw ${String(err)}`);
  }
  return undefined;
}

/** Odd values for each serve() option, plus valid ones. */
const kOptionNames = [
  'waitTimeout',
  'backend',
  'signal',
  'tcpNoDelay',
  'onError',
  'highWaterMark',
  'lowWaterMark',
  'maxOutputBytes',
  'maxConnections',
  'allowHalfOpen',
  'grace',
  'linger',
  'proxyHeaderTimeout',
  'bogus',
] as const;
/** A valid value for each option (backend is the one under test). */
const kValidOption = {
  waitTimeout: 60_000,
  backend: undefined,
  signal: undefined,
  tcpNoDelay: false,
  onError: () => undefined,
  highWaterMark: 1024,
  lowWaterMark: 256,
  maxOutputBytes: 1 << 20,
  maxConnections: 10,
  allowHalfOpen: true,
  grace: 100,
  linger: 200,
  proxyHeaderTimeout: 1000,
  bogus: 'ignored',
} as const;
const kBackends: readonly unknown[] = ['native', 'portable', 'auto', 'epoll', '', 5, null];
/** The first kValidAddrs entries are valid. */
const kValidAddrs = 5;
const kAddrs: readonly unknown[] = [
  'tcp://127.0.0.1:0',
  '127.0.0.1:0',
  'tcp4://127.0.0.1:0',
  'udp://127.0.0.1:0',
  'tcp://127.0.0.1:0?proxy=true',
  'tcp://127.0.0.1:0?proxy=maybe',
  'udp://127.0.0.1:0?proxy=true',
  'tcp://127.0.0.1:65536',
  'tcp://127.0.0.1:-1',
  'tcp://127.0.0.1:abc',
  'tcp://127.0.0.1:1e3',
  'tcp://127.0.0.1:0x10',
  'tcp://127.0.0.1:99999999999999999999',
  'tcp://127.0.0.1',
  'tcp://[::1',
  'tcp://127.0.0.1:0?reuseport=maybe',
  'tcp://127.0.0.1:0?bogus=1',
  `unix:///tmp/${'x'.repeat(120)}.sock`,
  `unix:///tmp/${'é'.repeat(60)}`,
  'unix://',
  'unix:///tmp/a\0b',
  'bogus://127.0.0.1:0',
  '',
  12,
  null,
  undefined,
  {},
  Symbol('addr'),
];
const kNumLoops: readonly unknown[] = [undefined, 0, 1, -1, 2, 1.5, NaN, 2 ** 31, '2', null];
const kLoadBalance: readonly unknown[] = [undefined, 0, 1, 2, 3, -1, 'RoundRobin', null];
const kCallbacks: readonly unknown[] = [undefined, () => undefined, 1, 'data', null, {}];

const serveArb = fc.record({
  options: fc.dictionary(
    fc.constantFrom(...kOptionNames),
    fc.oneof({ arbitrary: odd, weight: 1 }, { arbitrary: fc.constantFrom(-1, -2), weight: 3 }),
    { maxKeys: 6 },
  ),
  backendValue: fc.integer({ min: 0, max: kBackends.length - 1 }),
  second: fc.constantFrom('options', 'options', 'odd'),
  oddSecond: odd,
  addrs: fc.array(
    fc.oneof(
      { arbitrary: fc.integer({ min: 0, max: kAddrs.length - 1 }), weight: 1 },
      { arbitrary: fc.integer({ min: 0, max: kValidAddrs - 1 }), weight: 3 },
    ),
    { maxLength: 3 },
  ),
  numLoops: fc.oneof(fc.integer({ min: 0, max: kNumLoops.length - 1 }), fc.constant(0)),
  loadBalance: fc.oneof(fc.integer({ min: 0, max: kLoadBalance.length - 1 }), fc.constant(0)),
  callbacks: fc.dictionary(
    fc.constantFrom('opened', 'data', 'closed', 'end', 'drained', 'dropped', 'tick'),
    fc.oneof(fc.integer({ min: 0, max: kCallbacks.length - 1 }), fc.constant(1)),
    { maxKeys: 3 },
  ),
  eventsKind: fc.constantFrom('object', 'object', 'object', 'null', 'number', 'missing-module'),
});

for (const backend of await backendsUnderTest()) {
  describe(`API fuzzing (${backend})`, () => {
    test(`${kConnRuns} random call sequences with odd arguments on live connections: only documented errors, one closed each, the server keeps serving`, async () => {
      const fds = openFdCount();
      const violations: string[] = [];
      const inside = new Map<Conn, Cmd[]>();
      const waiting: ((c: Conn) => void)[] = [];
      const closes = new Map<Conn, number>();
      const onClosed = new Map<Conn, () => void>();
      let opened = 0;
      const check = (where: string, err: unknown): void => {
        if (err !== null && !documented(err)) violations.push(`${where} got ${String(err)}`);
      };
      const run = await startServer(
        {
          opened(c) {
            opened++;
            closes.set(c, 0);
            waiting.shift()?.(c);
          },
          data(c, input) {
            input.retrieveAll();
            let reply: unknown;
            for (const cmd of inside.get(c)?.splice(0) ?? []) {
              const r = apply(c, cmd, violations);
              if (r !== undefined) reply = r;
            }
            return reply as Action;
          },
          drained: () => undefined,
          end: () => undefined,
          closed(c, err) {
            closes.set(c, (closes.get(c) ?? 0) + 1);
            check('closed', err);
            onClosed.get(c)?.();
          },
        },
        { backend, allowHalfOpen: false, onError: (err) => check('onError', err) },
        'tcp://127.0.0.1:0',
      );
      const addr = run.server.addrs[0]!;
      try {
        await property(fc.array(cmdArb, { maxLength: 12 }), kConnRuns, async (cmds) => {
          const gotConn = new Promise<Conn>((r) => waiting.push(r));
          const s = await connectTo(addr);
          s.on('error', () => undefined);
          s.resume();
          const c = await within(gotConn, 5000, 'opened');
          const queue: Cmd[] = [];
          inside.set(c, queue);
          const closedNow = new Promise<void>((r) => onClosed.set(c, r));
          for (const cmd of cmds) {
            if (cmd.inside) {
              queue.push(cmd);
              c.wake();
            } else {
              apply(c, cmd, violations);
            }
            await new Promise((r) => setImmediate(r));
          }
          // A paused connection reads nothing, FIN included (on the native backend), so it would not see the client leave.
          if (c.open) c.resume();
          s.destroy();
          await socketClosed(s);
          await within(closedNow, 5000, 'closed');
          inside.delete(c);
          onClosed.delete(c);
          assert.deepEqual(violations, []);
        });
        const stillServing = new Promise<Conn>((r) => waiting.push(r));
        const s = await connectTo(addr);
        await within(stillServing, 5000, 'a connection opened after the fuzzing');
        s.destroy();
        await socketClosed(s);
      } finally {
        await within(run.stop(), 5000, 'serve() to settle');
      }
      assert.deepEqual(violations, []);
      assert.equal(opened, closes.size);
      assert.ok(
        [...closes.values()].every((n) => n === 1),
        'one closed per connection',
      );
      assertNoFdLeak(fds);
    });

    test(`${kServeRuns} serve() calls with odd options, addresses and events: each settles or rejects with a documented error, never throws or hangs`, async () => {
      const fds = openFdCount();
      const aborted = AbortSignal.abort();
      const outcomes = new Map<string, number>();
      await property(serveArb, kServeRuns, async (a) => {
        const opts: Record<string, unknown> = { backend };
        for (const [k, v] of Object.entries(a.options)) {
          if (k === 'backend') opts[k] = v === -2 ? backend : kBackends[a.backendValue];
          else opts[k] = v === -1 ? undefined : v === -2 ? kValidOption[k as keyof typeof kValidOption] : kOdd[v]!();
        }
        if (opts['signal'] === undefined) opts['signal'] = aborted;
        const events: Record<string, unknown> = {
          numLoops: kNumLoops[a.numLoops],
          loadBalance: kLoadBalance[a.loadBalance],
        };
        for (const [k, v] of Object.entries(a.callbacks)) events[k] = kCallbacks[v];
        const ev: unknown =
          a.eventsKind === 'object'
            ? events
            : a.eventsKind === 'null'
              ? null
              : a.eventsKind === 'number'
                ? 42
                : '/nonexistent/gevent-events.js';
        const second: unknown = a.second === 'options' ? opts : kOdd[a.oddSecond]!();
        // An odd second argument that is valid (a timeout, or an object read as options) would
        // serve forever without a signal: only the invalid ones are tried.
        if (
          a.second === 'odd' &&
          (second === null ||
            second === undefined ||
            typeof second === 'object' ||
            (typeof second === 'number' && second >= 0 && Number.isFinite(second)))
        )
          return;
        const addrs = a.addrs.map((i) => kAddrs[i]) as string[];
        let p: Promise<void>;
        try {
          p = serve(ev as Events, second as number, ...addrs);
        } catch (err) {
          assert.fail(`serve() threw synchronously: ${String(err)}`);
        }
        try {
          await within(p, 10_000, 'serve() to settle');
          outcomes.set('settled', (outcomes.get('settled') ?? 0) + 1);
        } catch (err) {
          assert.ok(
            documented(err),
            `serve() rejected with ${String(err)} (${(err as Error)?.stack?.split('\n')[1]?.trim() ?? ''})`,
          );
          const code = (err as GeventError).code;
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        }
      });
      assert.ok(
        (outcomes.get('settled') ?? 0) > 0,
        `no valid combination ran: ${JSON.stringify(Object.fromEntries(outcomes))}`,
      );
      assert.ok((outcomes.get('ERR_GEVENT_INVALID_ARGUMENT') ?? 0) > 0);
      assert.ok((outcomes.get('ERR_GEVENT_BAD_ADDRESS') ?? 0) > 0);
      assertNoFdLeak(fds);
    });
  });
}
