/**
 * A Redis-compatible server on gevent (strings, expiry, RESP2 and inline commands):
 *   --port N (default 6380)  --loops N (one keyspace per loop)  --backend native|portable|auto
 *
 * The library's input cap (maxInputBytes, 64 MiB by default) is raised to the example's own query
 * limit (1 GiB, as Redis's client-query-buffer-limit), so that a command may carry a bulk string
 * of up to 512 MB (proto-max-bulk-len) as in Redis; the library then refuses input past the limit
 * before storing it. With allowHalfOpen a client that pipelines commands and then half-closes
 * (`nc -N`) gets every reply.
 */
import { parseFlags, serveUntilSignal } from '../cli.js';
import { kMaxQueryBytes } from './server.js';

const { port, loops, backend } = parseFlags('redis', 6380);

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);

await serveUntilSignal('redis', events, backend, `tcp://:${port}`, {
  maxInputBytes: kMaxQueryBytes,
  allowHalfOpen: true,
});
