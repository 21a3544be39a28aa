/**
 * A TCP proxy: every connection to --port is relayed to --to over a connection the same loop dials.
 * Flags: --port N (default 7000)  --to HOST:PORT or a tcp:// or unix:// address (default
 * 127.0.0.1:6379)  --loops N  --backend native|portable|auto
 */
import { parseFlags, serveUntilSignal } from '../cli.js';

const { port, loops, backend, values } = parseFlags('proxy', 7000, {
  to: { type: 'string', default: '127.0.0.1:6379' },
});
const upstream = values.to.includes('://') ? values.to : `tcp://${values.to}`;

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);
events.searchParams.set('upstream', upstream);

await serveUntilSignal('proxy', events, backend, `tcp://:${port}`, {}, (server) => {
  console.log(
    `proxy on port ${server.addrs[0]!.port} to ${upstream} (${server.backend} backend, loops: ${server.numLoops})`,
  );
});
