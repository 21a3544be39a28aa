/**
 * Several loops on worker threads (native backend): the balancer spreads connections, serving
 * fires once, tick runs on loop 0, Shutdown from any loop stops all of them, and the seed's
 * multi-loop echo runs (5 loops with LeastConnections, N loops with RoundRobin, tcp and unix).
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BroadcastChannel } from 'node:worker_threads';
import type { Socket } from 'node:net';
import { LoadBalance, serve } from '../src/index.js';
import { backendsUnderTest, connectTo, openFdCount, readExactly, assertNoFdLeak } from './helpers.js';

const native = (await backendsUnderTest()).includes('native');
const fixture = new URL('./fixtures/echo-events.js', import.meta.url);
let runs = 0;

interface Report {
  ev: string;
  threadId: number;
  addrs?: { network: string; port: number; path: string }[];
  numLoops?: number;
  contextOk?: boolean;
  err?: string | null;
}

/** Starts serve() on the fixture module with the given query; collects what the loops report. */
async function start(query: Record<string, string>, ...addrs: string[]): Promise<Started> {
  return startWith(query, {}, ...addrs);
}

interface Started {
  serving: Report;
  reports: Report[];
  done: Promise<void>;
  count(ev: string): number;
  stop(): Promise<void>;
}

async function startWith(
  query: Record<string, string>,
  extra: { onError?: (err: Error) => void },
  ...addrs: string[]
): Promise<Started> {
  const name = `gevent-ml-${process.pid}-${runs++}`;
  const url = new URL(fixture);
  for (const [k, v] of Object.entries({ ...query, channel: name })) url.searchParams.set(k, v);
  const reports: Report[] = [];
  const channel = new BroadcastChannel(name);
  let onServing!: (r: Report) => void;
  const serving = new Promise<Report>((r) => (onServing = r));
  channel.onmessage = (e) => {
    const r = (e as MessageEvent).data as Report;
    reports.push(r);
    if (r.ev === 'serving') onServing(r);
  };
  const ac = new AbortController();
  const done = serve(url, { backend: 'native', signal: ac.signal, ...extra }, ...addrs);
  const s = await Promise.race([serving, done.then(() => Promise.reject(new Error('serve() ended before serving')))]);
  return {
    serving: s,
    reports,
    done,
    count: (ev: string) => reports.filter((r) => r.ev === ev).length,
    async stop() {
      ac.abort();
      try {
        await done;
      } finally {
        await new Promise((r) => setTimeout(r, 20));
        channel.close();
      }
    },
  };
}

/** Connects n clients to `addr` one after another, reading each greeting (the loop's tag). */
async function connectTagged(
  addr: { network: string; port: number; path: string },
  n: number,
): Promise<{ socks: Socket[]; loops: string[] }> {
  const socks: Socket[] = [];
  const loops: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connectTo(addr);
    loops.push((await readExactly(s, 10)).toString());
    socks.push(s);
  }
  return { socks, loops };
}

function tally(loops: string[]): number[] {
  const m = new Map<string, number>();
  for (const l of loops) m.set(l, (m.get(l) ?? 0) + 1);
  return [...m.values()];
}

async function closeAll(socks: Socket[]): Promise<void> {
  await Promise.all(
    socks.map(
      (s) =>
        new Promise((r) => {
          s.once('close', r);
          s.destroy();
        }),
    ),
  );
}

describe('several loops (native)', { skip: native ? false : 'the native addon is not built' }, () => {
  for (const loops of [2, 4]) {
    test(`RoundRobin over ${loops} loops spreads 400 connections within one of even`, async () => {
      const srv = await start(
        { loops: String(loops), lb: String(LoadBalance.RoundRobin), tag: '1' },
        'tcp://127.0.0.1:0',
      );
      const { socks, loops: seen } = await connectTagged(srv.serving.addrs![0]!, 400);
      const t = tally(seen);
      assert.equal(t.length, loops, `connections reached ${t.length} loops`);
      assert.ok(Math.max(...t) - Math.min(...t) <= 1, `spread ${t.join(', ')}`);
      await closeAll(socks);
      await srv.stop();
      assert.equal(srv.count('closed'), 400);
    });

    test(`LeastConnections over ${loops} loops keeps them within one of each other, refilling the emptiest`, async () => {
      const srv = await start(
        { loops: String(loops), lb: String(LoadBalance.LeastConnections), tag: '1' },
        'tcp://127.0.0.1:0',
      );
      const addr = srv.serving.addrs![0]!;
      const first = await connectTagged(addr, 200);
      let t = tally(first.loops);
      assert.equal(t.length, loops);
      assert.ok(Math.max(...t) - Math.min(...t) <= 1, `spread ${t.join(', ')}`);
      const victim = first.loops[0]!;
      const keep = first.socks.filter((_, i) => first.loops[i] !== victim);
      const drop = first.socks.filter((_, i) => first.loops[i] === victim);
      await closeAll(drop);
      await waitUntil(() => srv.count('closed') === drop.length);
      const second = await connectTagged(addr, drop.length);
      assert.ok(
        second.loops.every((l) => l === victim),
        'new connections all go to the emptied loop',
      );
      t = tally([...first.loops.filter((l) => l !== victim), ...second.loops]);
      assert.ok(Math.max(...t) - Math.min(...t) <= 1, `spread ${t.join(', ')}`);
      await closeAll([...keep, ...second.socks]);
      await srv.stop();
    });
  }

  test('serving fires once, tick runs on loop 0 only, and numLoops -1 means one loop per CPU', async () => {
    const srv = await start({ loops: '-1', tag: '1' }, 'tcp://127.0.0.1:0');
    assert.equal(srv.serving.numLoops, availableParallelism());
    await new Promise((r) => setTimeout(r, 50));
    await srv.stop();
    assert.equal(srv.count('serving'), 1);
    const tickThreads = new Set(srv.reports.filter((r) => r.ev === 'tick').map((r) => r.threadId));
    assert.equal(tickThreads.size, 1);
    assert.ok(tickThreads.has(srv.serving.threadId), 'tick runs where serving ran (loop 0)');
  });

  test('Shutdown from any loop stops every loop and fires closed for every connection', async () => {
    const fds = openFdCount();
    const srv = await start(
      { loops: '3', lb: String(LoadBalance.RoundRobin), tag: '1', shutdownOn: 'stop!' },
      'tcp://127.0.0.1:0',
    );
    const { socks, loops } = await connectTagged(srv.serving.addrs![0]!, 9);
    assert.equal(new Set(loops).size, 3);
    const ends = socks.map(
      (s) =>
        new Promise<void>((r) => {
          s.on('error', () => r());
          s.on('close', () => r());
          s.resume();
        }),
    );
    socks[4]!.write('stop!');
    await srv.done;
    await Promise.all(ends);
    assert.equal(srv.count('closed'), 9);
    await srv.stop();
    assertNoFdLeak(fds);
  });

  test('an uncaught exception in a loop thread is reported: serve() rejects with it, and every loop stops', async () => {
    const fds = openFdCount();
    const srv = await start(
      { loops: '2', lb: String(LoadBalance.RoundRobin), tag: '1', crashOn: 'crash!' },
      'tcp://127.0.0.1:0',
    );
    const { socks } = await connectTagged(srv.serving.addrs![0]!, 4);
    const ends = socks.map(
      (s) =>
        new Promise<void>((r) => {
          s.on('error', () => r());
          s.on('close', () => r());
          s.resume();
        }),
    );
    socks[1]!.write('crash!');
    await assert.rejects(srv.done, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_GEVENT_WORKER');
      assert.match(err.message, /uncaught in loop thread \d+/);
      return true;
    });
    await Promise.all(ends);
    await srv.stop().catch(() => undefined);
    assertNoFdLeak(fds);
  });

  test('a throwing closed in a loop thread reaches options.onError on the calling thread, and serving goes on', async () => {
    const errors: Error[] = [];
    const srv = await startWith(
      { loops: '2', lb: String(LoadBalance.RoundRobin), tag: '1', closedThrows: '1' },
      { onError: (e) => errors.push(e) },
      'tcp://127.0.0.1:0',
    );
    const addr = srv.serving.addrs![0]!;
    const first = await connectTagged(addr, 2);
    await closeAll(first.socks);
    await waitUntil(() => errors.length === 2);
    const again = await connectTagged(addr, 2);
    await closeAll(again.socks);
    await waitUntil(() => errors.length === 4);
    await srv.stop();
    for (const e of errors) {
      assert.equal((e as Error & { code?: string }).code, 'ERR_GEVENT_HANDLER');
      assert.match(e.message, /closed threw in loop thread/);
    }
  });

  for (const [loops, lb, name] of [
    [5, LoadBalance.LeastConnections, '5 loops with LeastConnections'],
    [availableParallelism(), LoadBalance.RoundRobin, `${availableParallelism()} loops with RoundRobin`],
  ] as const) {
    test(`seed echo, ${name}, over tcp and unix: random 0-1 MB payloads byte for byte`, async () => {
      const path = join(tmpdir(), `gevent-ml-${process.pid}-${loops}.sock`);
      const srv = await start({ loops: String(loops), lb: String(lb) }, 'tcp://127.0.0.1:0', `unix://${path}`);
      const addrs = srv.serving.addrs!;
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const s = await connectTo(addrs[i % 2]!);
          assert.equal((await readExactly(s, 11)).toString(), 'sweetness\r\n');
          for (let r = 0; r < 3; r++) {
            const payload = randomBytes(randomInt(0, 1024 * 1024 + 1));
            s.write(payload);
            assert.ok((await readExactly(s, payload.length)).equals(payload));
          }
          await closeAll([s]);
        }),
      );
      await waitUntil(() => srv.count('closed') === 10);
      await srv.stop();
      assert.ok(srv.reports.filter((r) => r.ev === 'closed').every((r) => r.contextOk && r.err === null));
      assert.equal(existsSync(path), false);
    });
  }
});

async function waitUntil(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
