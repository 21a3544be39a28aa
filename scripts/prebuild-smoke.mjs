// Checks one prebuilt addon end to end (scripts/prebuild.sh runs it with the Node of the addon's
// architecture, under qemu for arm64): the package's loader takes the file named by
// GEVENT_NATIVE_ADDON, a server on the native backend echoes 1 MiB of random bytes back unchanged,
// and it shuts down. Prints one line and exits 0, or throws.
//   node scripts/prebuild-smoke.mjs   (dist/ built; GEVENT_NATIVE_ADDON=<the .node file>)
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const { listen } = await import(new URL('../dist/src/index.js', import.meta.url).href);
const server = await listen(
  {
    data(c, input) {
      const out = input.bytes();
      input.retrieveAll();
      return out;
    },
  },
  { backend: 'native' },
  'tcp://127.0.0.1:0',
);
const payload = randomBytes(1 << 20);
const back = await new Promise((resolve, reject) => {
  const s = connect(server.addrs[0].port, '127.0.0.1', () => s.write(payload));
  const parts = [];
  let n = 0;
  s.on('data', (d) => {
    parts.push(d);
    n += d.length;
    if (n >= payload.length) {
      s.destroy();
      resolve(Buffer.concat(parts));
    }
  });
  s.on('error', reject);
  s.on('end', () => reject(new Error(`the server ended the stream after ${n} bytes`)));
});
await server.shutdown();
if (!back.equals(payload)) throw new Error('the echo came back changed');
console.log(
  `prebuild-smoke: ${process.env.GEVENT_NATIVE_ADDON}: native echo of ${payload.length} bytes byte-exact on node ${process.version} ${process.arch}`,
);
