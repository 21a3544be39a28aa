/**
 * Conn.pause()/resume() through serve(), on every backend: nothing is delivered while paused,
 * what the peer sent meanwhile arrives after resume() in order, and a FIN sent while paused is
 * seen only after resume(), after the data before it (with and without allowHalfOpen, and a FIN
 * with no data before it), over TCP and unix sockets. Writes go on while paused.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Conn, ServeOptions } from '../src/index.js';
import {
  backendsUnderTest,
  closed as socketClosed,
  connectTo,
  openFdCount,
  readEnd,
  sleep,
  socketDir,
  startServer,
  waitFor,
} from './helpers.js';

/** How long the test watches a paused connection for events that must not come. */
const kQuietMs = 300;

interface Log {
  events: string[];
  conn: Conn | null;
}

/** A server that pauses each connection in `opened` and logs data, end and closed. */
async function pausingServer(backend: string, addr: string, opts: Partial<ServeOptions>, greeting?: string) {
  const log: Log = { events: [], conn: null };
  const run = await startServer(
    {
      opened(c) {
        log.conn = c;
        c.pause();
        return greeting === undefined ? undefined : { out: greeting };
      },
      data(_c, input) {
        log.events.push(`data:${Buffer.from(input.bytes()).toString()}`);
        input.retrieveAll();
      },
      end() {
        log.events.push('end');
      },
      closed(_c, err) {
        log.events.push(`closed:${err === null ? 'null' : (err as { code?: string }).code}`);
      },
    },
    { backend: backend as ServeOptions['backend'], ...opts },
    addr,
  );
  return { run, log };
}

const kDir = socketDir('pause');
after(() => rmSync(kDir, { recursive: true, force: true }));
let nextSock = 0;
const kNetworks: [string, () => string][] = [
  ['tcp', () => 'tcp://127.0.0.1:0'],
  ['unix', () => `unix://${join(kDir, `s${nextSock++}.sock`)}`],
];

for (const backend of await backendsUnderTest()) {
  for (const [network, addrOf] of kNetworks)
    describe(`pause and resume over ${network} (${backend})`, () => {
      test('data and FIN sent while paused arrive after resume(), data first; without allowHalfOpen the connection then closes', async () => {
        const fds = openFdCount();
        const { run, log } = await pausingServer(backend, addrOf(), {}, 'hi');
        const s = await connectTo(run.server.addrs[0]!);
        const got = readEnd(s);
        s.end('abc');
        await waitFor(() => log.conn !== null, 'opened');
        await sleep(kQuietMs);
        assert.deepEqual(log.events, [], 'nothing delivered while paused');
        log.conn!.resume();
        await waitFor(() => log.events.some((e) => e.startsWith('closed')), 'closed after resume');
        assert.deepEqual(
          log.events,
          ['data:abc', 'closed:null'],
          'the data, then the close the FIN causes (end fires only with allowHalfOpen)',
        );
        const r = await got;
        assert.equal(r.how, 'eof');
        assert.equal(r.data.toString(), 'hi', 'the greeting written while paused went out');
        await socketClosed(s);
        await run.stop();
        await waitFor(() => openFdCount() <= fds, 'fds back to baseline');
      });

      test('a FIN alone while paused is not seen until resume() (allowHalfOpen), and the handler can still reply', async () => {
        const fds = openFdCount();
        const { run, log } = await pausingServer(backend, addrOf(), { allowHalfOpen: true });
        const s = await connectTo(run.server.addrs[0]!);
        const got = readEnd(s);
        s.end();
        await waitFor(() => log.conn !== null, 'opened');
        await sleep(kQuietMs);
        assert.deepEqual(log.events, [], 'no end and no close while paused');
        const c = log.conn!;
        c.resume();
        await waitFor(() => log.events.includes('end'), 'end after resume');
        assert.deepEqual(log.events, ['end']);
        c.write(Buffer.from('bye'));
        c.end();
        const r = await got;
        assert.equal(r.how, 'eof');
        assert.equal(r.data.toString(), 'bye');
        await waitFor(() => log.events.includes('closed:null'), 'closed after both ends');
        await socketClosed(s);
        await run.stop();
        await waitFor(() => openFdCount() <= fds, 'fds back to baseline');
      });

      test('pause() after resume() holds the FIN again; a second resume() delivers it once', async () => {
        const { run, log } = await pausingServer(backend, addrOf(), { allowHalfOpen: true });
        const s = await connectTo(run.server.addrs[0]!);
        s.resume();
        s.end();
        await waitFor(() => log.conn !== null, 'opened');
        await sleep(kQuietMs);
        const c = log.conn!;
        c.resume();
        c.pause();
        await sleep(kQuietMs);
        assert.deepEqual(log.events, [], 'paused again before the held FIN was delivered');
        c.resume();
        await waitFor(() => log.events.includes('end'), 'end after the second resume');
        await sleep(50);
        assert.deepEqual(log.events, ['end'], 'the FIN is delivered once');
        c.end();
        await waitFor(() => log.events.includes('closed:null'), 'closed');
        await socketClosed(s);
        await run.stop();
      });

      test('a peer that sends and closes its socket while paused: after resume() its data arrives, then closed', async () => {
        const fds = openFdCount();
        const { run, log } = await pausingServer(backend, addrOf(), {});
        const s = await connectTo(run.server.addrs[0]!);
        s.on('error', () => undefined);
        await new Promise<void>((resolve) => s.end('abc', () => resolve()));
        s.destroy();
        await socketClosed(s);
        await waitFor(() => log.conn !== null, 'opened');
        await sleep(kQuietMs);
        assert.deepEqual(log.events, [], 'nothing delivered while paused');
        log.conn!.resume();
        await waitFor(() => log.events.some((e) => e.startsWith('closed')), 'closed after resume');
        assert.deepEqual(log.events, ['data:abc', 'closed:null']);
        await run.stop();
        await waitFor(() => openFdCount() <= fds, 'fds back to baseline');
      });

      test('pause() in data holds a FIN that came in the same read: end arrives only after resume()', async () => {
        const events: string[] = [];
        let conn: Conn | null = null;
        const run = await startServer(
          {
            data(c, input) {
              events.push(`data:${Buffer.from(input.bytes()).toString()}`);
              input.retrieveAll();
              conn = c;
              c.pause();
            },
            end() {
              events.push('end');
            },
            closed() {
              events.push('closed');
            },
          },
          { backend: backend as ServeOptions['backend'], allowHalfOpen: true },
          addrOf(),
        );
        const s = await connectTo(run.server.addrs[0]!);
        s.resume();
        s.end('abc');
        await waitFor(() => conn !== null, 'data');
        await sleep(kQuietMs);
        assert.deepEqual(events, ['data:abc'], 'no end while paused');
        conn!.resume();
        await waitFor(() => events.includes('end'), 'end after resume');
        assert.deepEqual(events, ['data:abc', 'end']);
        conn!.end();
        await waitFor(() => events.includes('closed'), 'closed');
        await socketClosed(s);
        await run.stop();
      });
    });
}
