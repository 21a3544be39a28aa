/**
 * A Redis-compatible server on gevent (strings, expiry, RESP2 and inline commands):
 *   --port N (default 6380)  --loops N (one keyspace per loop)  --backend native|portable|auto
 */
import { parseFlags, serveUntilSignal } from '../cli.js';

const { port, loops, backend } = parseFlags('redis', 6380);

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);

await serveUntilSignal('redis', events, backend, `tcp://:${port}`);
