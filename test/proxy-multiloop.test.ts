/**
 * PROXY protocol listeners on several native loops: the acceptor hands each connection to a
 * worker with the listener's PROXY flag, and the worker reads the header before `opened`. The HTTP
 * example's events (`GET /ip` answers the peer as the library reports it) on two loops, behind raw
 * clients that send a v1 or v2 header: each answer is the header's source, never the socket's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { listen } from '../src/index.js';
import { encodeProxyHeaderV1, encodeProxyHeaderV2 } from '../src/proxy-header.js';
import { backendsUnderTest, connectTo, readEnd, within } from './helpers.js';

const kEvents = new URL('../examples/http/events.js', import.meta.url);
kEvents.searchParams.set('loops', '2');

const native = (await backendsUnderTest()).includes('native');

describe('PROXY protocol listeners on two native loops', { skip: native ? false : 'no native backend' }, () => {
  test('every handed-off connection reads its header first: GET /ip answers the header source', async () => {
    const server = await listen(kEvents, { backend: 'native' }, 'tcp://127.0.0.1:0?proxy=true');
    try {
      assert.equal(server.numLoops, 2);
      const answers: string[] = [];
      for (let i = 0; i < 8; i++) {
        const port = 41000 + i;
        const header =
          i % 2 === 0
            ? encodeProxyHeaderV1({ host: '192.0.2.1', port }, { host: '198.51.100.1', port: 80 })
            : encodeProxyHeaderV2({
                command: 'proxy',
                transport: 'stream',
                source: { host: '192.0.2.1', port },
                destination: { host: '198.51.100.1', port: 80 },
              });
        const s = await connectTo(server.addrs[0]!);
        s.write(header);
        s.end('GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        const reply = (await within(readEnd(s), 5000, `reply ${i}`)).data.toString();
        answers.push(reply.slice(reply.indexOf('\r\n\r\n') + 4));
      }
      assert.deepEqual(
        answers,
        Array.from({ length: 8 }, (_, i) => `192.0.2.1:${41000 + i}\n`),
      );
      const stats = server.stats();
      assert.equal(stats.proxyRefused, 0);
      assert.ok(
        stats.loops.every((l) => l.accepted > 0),
        `both loops served: ${JSON.stringify(stats.loops)}`,
      );
    } finally {
      await server.shutdown();
    }
  });
});
