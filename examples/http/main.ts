/**
 * The HTTP/1.1 server: /plaintext, /json and /echo, with keep-alive and pipelining.
 *   --port N (default 8080)  --loops N (default 1)  --backend native|portable|auto
 *   --max-head BYTES (default 8192, else 431)  --max-body BYTES (default 1048576, else 413)
 */
import { fail, parseFlags, serveUntilSignal } from '../cli.js';
import { kDefaultLimits } from './parser.js';

const { port, loops, backend, values } = parseFlags('http', 8080, {
  'max-head': { type: 'string', default: String(kDefaultLimits.maxHeadBytes) },
  'max-body': { type: 'string', default: String(kDefaultLimits.maxBodyBytes) },
});
const maxHead = values['max-head'];
const maxBody = values['max-body'];
if (!/^\d+$/.test(maxHead) || Number(maxHead) < 1) fail('http', `--max-head must be a positive integer, got ${maxHead}`);
if (!/^\d+$/.test(maxBody)) fail('http', `--max-body must be a non-negative integer, got ${maxBody}`);

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);
events.searchParams.set('maxHead', maxHead);
events.searchParams.set('maxBody', maxBody);

await serveUntilSignal('http', events, backend, `tcp://:${port}`);
