/**
 * The echo server: every byte a client sends comes back. The seed's echo example, with flags:
 *   --port N (default 5007)  --loops N  --udp  --trace  --reuseport  --backend native|portable|auto
 */
import { parseArgs } from 'node:util';
import { serve } from '../../src/index.js';

function fail(message: string): never {
  console.error(`echo: ${message}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '5007' },
      loops: { type: 'string', default: '1' },
      udp: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      reuseport: { type: 'boolean', default: false },
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
if (values.trace) events.searchParams.set('trace', '1');

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
const scheme = values.udp ? 'udp' : 'tcp';
try {
  await serve(events, { backend, signal: controller.signal }, `${scheme}://:${port}?reuseport=${values.reuseport}`);
} catch (err) {
  fail((err as Error).message);
}
