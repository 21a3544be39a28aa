/**
 * The echo server: every byte a client sends comes back. The seed's echo example, with flags:
 *   --port N (default 5007)  --loops N  --udp  --trace  --reuseport  --backend native|portable|auto
 *   --tls-cert FILE --tls-key FILE (TLS echo on tls://, on the native loop where Node's OpenSSL can run it)
 */
import { fail, kTlsFlags, parseFlags, serveUntilSignal, tlsFromFlags } from '../cli.js';

const { port, loops, backend, values } = parseFlags('echo', 5007, {
  udp: { type: 'boolean', default: false },
  trace: { type: 'boolean', default: false },
  reuseport: { type: 'boolean', default: false },
  ...kTlsFlags,
});
const tls = tlsFromFlags('echo', values['tls-cert'], values['tls-key']);
if (tls && values.udp) fail('echo', '--udp and --tls-cert cannot go together (TLS runs over TCP)');

const events = new URL('./events.js', import.meta.url);
events.searchParams.set('loops', loops);
if (values.trace) events.searchParams.set('trace', '1');

const scheme = values.udp ? 'udp' : tls ? 'tls' : 'tcp';
const options = tls ? { tls } : {};
await serveUntilSignal(
  'echo',
  events,
  backend,
  `${scheme}://:${port}?reuseport=${values.reuseport}`,
  options,
  (server) => {
    const addr = server.addrs[0]!;
    console.log(`echo server started on port ${addr.port} (loops: ${server.numLoops})`);
    console.log(`listening on ${server.addrs.join(', ')} (${server.backend} backend)`);
  },
);
