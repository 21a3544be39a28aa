/**
 * The `tick` callback: it fires right after serving, then after each returned delay (never
 * early); a missing delay keeps the previous one; Shutdown from it stops the server; a throwing
 * tick or a bad delay rejects serve().
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { Action, HandlerError, InvalidArgumentError, serve, type Events, type Server } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  assertNoFdLeak,
} from './helpers.js';

for (const backend of await backendsUnderTest()) {
  describe(`tick (${backend})`, () => {
    test('25 ticks of 10 ms then Shutdown: exactly 25 calls, never early, serve() resolves', async () => {
      const fds = openFdCount();
      let ticks = 0;
      let afterShutdown = 0;
      let resolved = false;
      const start = performance.now();
      await serve(
        {
          tick() {
            if (resolved) afterShutdown++;
            ticks++;
            return { delay: 10, action: ticks === 25 ? Action.Shutdown : Action.None };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      resolved = true;
      const elapsed = performance.now() - start;
      assert.equal(ticks, 25);
      assert.ok(elapsed >= 240, `24 delays of 10 ms took only ${elapsed.toFixed(1)} ms`);
      assert.ok(elapsed < 5000, `took ${elapsed.toFixed(1)} ms`);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(afterShutdown, 0, 'no tick after serve() resolved');
      assert.equal(ticks, 25);
      assertNoFdLeak(fds);
    });

    test('the first tick fires right after serving, before any delay', async () => {
      const fds = openFdCount();
      const order: string[] = [];
      await serve(
        {
          serving() {
            order.push('serving');
            setTimeout(() => order.push('200ms'), 200);
          },
          tick() {
            order.push('tick');
            return order.filter((e) => e === 'tick').length === 2 ? Action.Shutdown : { delay: 300 };
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      assert.deepEqual(order, ['serving', 'tick', '200ms', 'tick']);
      assertNoFdLeak(fds);
    });

    test('a tick that returns nothing, null or Action.None keeps the previous delay', async () => {
      const fds = openFdCount();
      const at: number[] = [];
      const replies = [{ delay: 25 }, undefined, null, Action.None, undefined, Action.Shutdown];
      await serve(
        {
          tick() {
            at.push(performance.now());
            return replies[at.length - 1];
          },
        },
        { backend },
        'tcp://127.0.0.1:0',
      );
      assert.equal(at.length, replies.length);
      for (let i = 1; i < at.length; i++) {
        const gap = at[i]! - at[i - 1]!;
        // 24 rather than 25: Node's timer clock has whole-millisecond granularity.
        assert.ok(gap >= 24, `gap ${i} was ${gap.toFixed(1)} ms, shorter than the 25 ms delay`);
        assert.ok(gap < 900, `gap ${i} was ${gap.toFixed(1)} ms: the 25 ms delay was not kept (default is 1 s)`);
      }
      assertNoFdLeak(fds);
    });

    test('a throwing tick rejects serve() with HandlerError and closes open connections', async () => {
      const fds = openFdCount();
      const boom = new Error('tick boom');
      let server!: Server;
      let closed = 0;
      let ticks = 0;
      let armed = false;
      const events: Events = {
        serving: (s) => void (server = s),
        closed: () => void closed++,
        tick() {
          ticks++;
          if (armed) throw boom;
          return { delay: 10 };
        },
      };
      const done = serve(events, { backend }, 'tcp://127.0.0.1:0');
      const rejected = assert.rejects(done, (err: unknown) => {
        assert.ok(err instanceof HandlerError, String(err));
        assert.equal(err.code, 'ERR_GEVENT_HANDLER');
        assert.equal(err.handler, 'tick');
        assert.equal(err.cause, boom);
        assert.ok(err.message.includes('tick boom'), err.message);
        return true;
      });
      while (server === undefined) await new Promise((r) => setTimeout(r, 5));
      const client = await connectTo(server.addrs[0]!);
      const end = readEnd(client);
      armed = true;
      await rejected;
      const how = (await end).how;
      assert.ok(how === 'eof' || how === 'ECONNRESET', `client read ended with ${how}`);
      client.destroy();
      await socketClosed(client);
      assert.equal(closed, 1);
      const ticksAtReject = ticks;
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(ticks, ticksAtReject, 'no tick after the failure');
      assertNoFdLeak(fds);
    });

    test('a bad delay (-1, NaN, a string) rejects serve() with ERR_GEVENT_INVALID_ARGUMENT', async () => {
      const fds = openFdCount();
      for (const delay of [-1, Number.NaN, '10'] as unknown[]) {
        let ticks = 0;
        await assert.rejects(
          serve(
            {
              tick() {
                ticks++;
                return { delay } as { delay: number };
              },
            },
            { backend },
            'tcp://127.0.0.1:0',
          ),
          (err: unknown) => {
            assert.ok(err instanceof InvalidArgumentError, String(err));
            assert.equal(err.code, 'ERR_GEVENT_INVALID_ARGUMENT');
            assert.ok(err.message.includes(String(delay)), `${err.message} does not name ${String(delay)}`);
            return true;
          },
        );
        assert.equal(ticks, 1, `delay ${String(delay)}`);
      }
      assertNoFdLeak(fds);
    });
  });
}
