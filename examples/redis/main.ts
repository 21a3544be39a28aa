/**
 * A Redis-compatible server on gevent (strings, expiry, RESP2 and inline commands):
 *   --port N (default 6380)  --loops N (one keyspace per loop)  --backend native|portable|auto
 */
import { parseArgs } from 'node:util';
import { serve } from '../../src/index.js';

function fail(message: string): never {
  console.error(`redis: ${message}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '6380' },
      loops: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'auto' },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}

const port = Number(values.port);
if (!/^\d+$/.test(values.port) || port > 65535) fail(`--port must be a number from 0 to 65535, got ${values.port}`);
if (!/^-?\d+$/.test(values.loops)) fail(`--loops must be an integer, got ${values.loops}`);
const backend = values.backend;
if (backend !== 'native' && backend !== 'portable' && backend !== 'auto') fail(`--backend must be native, portable or auto, got ${backend}`);

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', values.loops);

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
try {
  await serve(events, { backend, signal: controller.signal }, `tcp://:${port}`);
} catch (err) {
  fail((err as Error).message);
}
