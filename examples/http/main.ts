/**
 * The HTTP/1.1 server: /plaintext, /json and /echo, with keep-alive and pipelining.
 *   --port N (default 8080)  --loops N (default 1)  --backend native|portable|auto
 *   --max-head BYTES (default 8192, else 431)  --max-body BYTES (default 1048576, else 413)
 */
import { parseArgs } from 'node:util';
import { serve } from '../../src/index.js';
import { kDefaultLimits } from './parser.js';

function fail(message: string): never {
  console.error(`http: ${message}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      loops: { type: 'string', default: '1' },
      backend: { type: 'string', default: 'auto' },
      'max-head': { type: 'string', default: String(kDefaultLimits.maxHeadBytes) },
      'max-body': { type: 'string', default: String(kDefaultLimits.maxBodyBytes) },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}

const port = Number(values.port);
if (!/^\d+$/.test(values.port) || port > 65535) fail(`--port must be a number from 0 to 65535, got ${values.port}`);
if (!/^-?\d+$/.test(values.loops)) fail(`--loops must be an integer, got ${values.loops}`);
if (!/^\d+$/.test(values['max-head']) || Number(values['max-head']) < 1) fail(`--max-head must be a positive integer, got ${values['max-head']}`);
if (!/^\d+$/.test(values['max-body'])) fail(`--max-body must be a non-negative integer, got ${values['max-body']}`);
const backend = values.backend;
if (backend !== 'native' && backend !== 'portable' && backend !== 'auto') fail(`--backend must be native, portable or auto, got ${backend}`);

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', values.loops);
events.searchParams.set('maxHead', values['max-head']);
events.searchParams.set('maxBody', values['max-body']);

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
try {
  await serve(events, { backend, signal: controller.signal }, `tcp://:${port}`);
} catch (err) {
  fail((err as Error).message);
}
