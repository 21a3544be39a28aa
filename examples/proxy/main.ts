/**
 * A TCP proxy: every connection to --port is relayed to --to over a connection the same loop dials.
 * Flags: --port N (default 7000)  --to HOST:PORT or a tcp:// or unix:// address (default
 * 127.0.0.1:6379)  --loops N  --backend native|portable|auto
 *   --send-proxy-v2: start every upstream connection with a PROXY protocol v2 header naming the
 *   client (its address as source, this proxy's as destination), for an upstream behind `?proxy=true`
 *   --relay pipe|js: how bytes are moved: Conn.pipe() (default; inside the native core, no
 *   JavaScript per message) or a `data` handler that writes each read to the other side
 * A client's FIN is passed on (half-close), and so is the upstream's.
 */
import { parseFlags, serveUntilSignal } from '../cli.js';

const { port, loops, backend, values } = parseFlags('proxy', 7000, {
  to: { type: 'string', default: '127.0.0.1:6379' },
  'send-proxy-v2': { type: 'boolean', default: false },
  relay: { type: 'string', default: 'pipe' },
});
if (values.relay !== 'pipe' && values.relay !== 'js') {
  console.error(`proxy: --relay must be 'pipe' or 'js', got '${values.relay}'`);
  process.exit(2);
}
const upstream = values.to.includes('://') ? values.to : `tcp://${values.to}`;

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);
events.searchParams.set('upstream', upstream);
if (values['send-proxy-v2']) events.searchParams.set('sendProxy', '2');
events.searchParams.set('relay', values.relay);

await serveUntilSignal('proxy', events, backend, `tcp://:${port}`, { allowHalfOpen: true }, (server) => {
  console.log(
    `proxy on port ${server.addrs[0]!.port} to ${upstream} (${server.backend} backend, loops: ${server.numLoops}, relay: ${values.relay})`,
  );
});
