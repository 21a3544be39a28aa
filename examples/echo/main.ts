/**
 * The echo server: every byte a client sends comes back. The seed's echo example, with flags:
 *   --port N (default 5007)  --loops N  --udp  --trace  --reuseport  --backend native|portable
 */
import { parseArgs } from 'node:util';
import { serve, type Events } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5007' },
    loops: { type: 'string', default: '1' },
    udp: { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
    reuseport: { type: 'boolean', default: false },
    backend: { type: 'string', default: 'auto' },
  },
});

const port = Number(values.port);
const loops = Number(values.loops);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`echo: --port must be a number from 0 to 65535, got ${values.port}`);
  process.exit(2);
}
if (!Number.isInteger(loops)) {
  console.error(`echo: --loops must be an integer, got ${values.loops}`);
  process.exit(2);
}
const backend = values.backend;
if (backend !== 'native' && backend !== 'portable' && backend !== 'auto') {
  console.error(`echo: --backend must be native, portable or auto, got ${backend}`);
  process.exit(2);
}
const trace = values.trace;

const events: Events = {
  numLoops: loops,
  serving(server) {
    const p = server.addrs[0]!;
    console.log(`echo server started on port ${p.port} (loops: ${server.numLoops})`);
    if (values.reuseport) console.log('reuseport');
    if (values.udp) console.log('udp');
    console.log(`backend: ${server.backend}`);
  },
  data(c, input) {
    const out = input.bytes();
    if (trace) console.log(`${c.remoteAddr}: ${JSON.stringify(Buffer.from(out).toString())}`);
    input.retrieveAll();
    return out;
  },
};

const scheme = values.udp ? 'udp' : 'tcp';
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
await serve(events, { backend, signal: controller.signal }, `${scheme}://:${port}?reuseport=${values.reuseport}`);
