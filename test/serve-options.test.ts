/**
 * serve()'s argument checks: each bad value rejects with ERR_GEVENT_INVALID_ARGUMENT and a
 * message that names it, before anything is bound; numLoops 0 and 1 both mean one loop; several
 * loops on the portable backend are refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Action,
  BackendUnavailableError,
  IdleTimeoutError,
  InvalidArgumentError,
  serve,
  type Events,
  type ServeOptions,
} from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectOutcome,
  connectTo,
  freePort,
  openFdCount,
  startServer,
  assertNoFdLeak,
} from './helpers.js';

type Call = [label: string, events: unknown, opts: unknown, mentions: string];

function invalid(mentions: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_GEVENT_INVALID_ARGUMENT');
    assert.ok(err.message.startsWith('gevent: '), err.message);
    assert.ok(err.message.includes(mentions), `message ${JSON.stringify(err.message)} does not name ${mentions}`);
    return true;
  };
}

for (const backend of await backendsUnderTest()) {
  describe(`serve() options (${backend})`, () => {
    const calls: Call[] = [
      ['events null', null, { backend }, 'null'],
      ['events a boolean', true, { backend }, 'true'],
      ['events a number', 42, { backend }, '42'],
      ['waitTimeout -1', {}, -1, '-1'],
      ['waitTimeout NaN', {}, Number.NaN, 'NaN'],
      ['waitTimeout Infinity', {}, Number.POSITIVE_INFINITY, 'Infinity'],
      ["waitTimeout 'x'", {}, 'x', '"x"'],
      ["options.waitTimeout 'x'", {}, { backend, waitTimeout: 'x' }, '"x"'],
      ['options.waitTimeout -1', {}, { backend, waitTimeout: -1 }, '-1'],
      ["backend 'bogus'", {}, { backend: 'bogus' }, '"bogus"'],
      ['numLoops 1.5', { numLoops: 1.5 }, { backend }, '1.5'],
      ["numLoops '2'", { numLoops: '2' }, { backend }, '"2"'],
      ['numLoops 1e6 (no workers spawned)', { numLoops: 1e6 }, { backend }, 'at most'],
      ['numLoops 1025, past the hard cap', { numLoops: 1025 }, { backend }, '1025'],
      ['maxInputBytes 0', {}, { backend, maxInputBytes: 0 }, 'options.maxInputBytes'],
      ['loadBalance 99', { loadBalance: 99 }, { backend }, '99'],
      ['events.data not a function', { data: 'nope' }, { backend }, 'events.data'],
      ['events.opened not a function', { opened: 7 }, { backend }, 'events.opened'],
      ['events.tick not a function', { tick: {} }, { backend }, 'events.tick'],
      ['tcpNoDelay not a boolean', {}, { backend, tcpNoDelay: 'yes' }, '"yes"'],
      ['proxyHeaderTimeout 0', {}, { backend, proxyHeaderTimeout: 0 }, 'options.proxyHeaderTimeout'],
      ['proxyHeaderTimeout 1.5', {}, { backend, proxyHeaderTimeout: 1.5 }, '1.5'],
      ['proxyHeaderTimeout past the timer limit', {}, { backend, proxyHeaderTimeout: 2 ** 31 }, '2147483647'],
      ["proxyHeaderTimeout '5s'", {}, { backend, proxyHeaderTimeout: '5s' }, '"5s"'],
      ['onError not a function', {}, { backend, onError: 'log' }, '"log"'],
      ['signal not an AbortSignal', {}, { backend, signal: {} }, 'signal'],
    ];
    for (const [label, events, opts, mentions] of calls) {
      test(`${label} rejects with ERR_GEVENT_INVALID_ARGUMENT naming it; nothing is bound`, async () => {
        const fds = openFdCount();
        const port = await freePort();
        // A signal, where the options can carry one, so a value that is wrongly accepted ends the
        // server (and fails the test) instead of serving forever.
        const o =
          opts !== null && typeof opts === 'object' && !('signal' in opts)
            ? { ...opts, signal: AbortSignal.timeout(2000) }
            : opts;
        await assert.rejects(serve(events as Events, o as ServeOptions, `tcp://127.0.0.1:${port}`), invalid(mentions));
        assert.equal(await connectOutcome(port), 'ECONNREFUSED');
        assertNoFdLeak(fds);
      });
    }

    for (const numLoops of [0, 1, undefined]) {
      test(`numLoops ${String(numLoops)} runs one loop: server.numLoops is 1`, async () => {
        const fds = openFdCount();
        const events: Events = numLoops === undefined ? {} : { numLoops };
        const run = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
        assert.equal(run.server.numLoops, 1);
        assert.equal(run.server.backend, backend);
        await run.stop();
        assertNoFdLeak(fds);
      });
    }

    if (backend === 'portable') {
      test('numLoops 2 with the portable backend rejects with ERR_GEVENT_BACKEND_UNAVAILABLE', async () => {
        const fds = openFdCount();
        let serving = 0;
        await assert.rejects(
          serve({ numLoops: 2, serving: () => void serving++ }, { backend }, 'tcp://127.0.0.1:0'),
          (err: unknown) => {
            assert.ok(err instanceof BackendUnavailableError, String(err));
            assert.equal(err.code, 'ERR_GEVENT_BACKEND_UNAVAILABLE');
            assert.ok(err.message.includes('2'), err.message);
            return true;
          },
        );
        assert.equal(serving, 0);
        assertNoFdLeak(fds);
      });
    }
  });
}

describe('serve() options: the short form', () => {
  test('a bare number as the second argument is the waitTimeout (default backend)', async () => {
    const fds = openFdCount();
    const errs: (Error | null)[] = [];
    let onServing!: (port: number) => void;
    const serving = new Promise<number>((r) => (onServing = r));
    const done = serve(
      {
        serving: (s) => onServing(s.addrs[0]!.port),
        closed(_c, err) {
          errs.push(err);
          return Action.Shutdown;
        },
      },
      250,
      'tcp://127.0.0.1:0',
    );
    const client = await connectTo({ network: 'tcp', port: await serving, path: '' });
    client.resume();
    await done;
    assert.equal(errs.length, 1);
    assert.ok(errs[0] instanceof IdleTimeoutError, String(errs[0]));
    assert.equal(errs[0].timeoutMs, 250);
    client.destroy();
    await socketClosed(client);
    assertNoFdLeak(fds);
  });
});
