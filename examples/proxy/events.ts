/**
 * The TCP proxy's events: each accepted connection dials the upstream on its own loop
 * (`c.loop.dial`), and the two connections hold each other in `context`. Bytes are relayed both
 * ways with backpressure: when a side's output passes the high-water mark, the other side stops
 * being read until it has drained. A FIN is relayed as a FIN (the server runs with
 * `allowHalfOpen`), and a pair closes once both sides have ended. With `sendProxy=2` each upstream
 * connection starts with a PROXY v2 header naming the client. Settings arrive in the module URL's
 * query (`?upstream=tcp://127.0.0.1:6379&loops=4&relay=pipe`).
 *
 * relay=pipe (the default): `c.pipe(up)` and `up.pipe(c)` once the upstream is open; the loop
 * moves the bytes (inside the C core on the native backend), and passes each FIN on. relay=js:
 * `data` writes what it reads to the other side and `end` passes the FIN on, the way to go when
 * the handler must look at the bytes.
 */
import { LoadBalance, type Addr, type Conn, type Events } from '../../src/index.js';
import { encodeProxyHeaderV2, type ProxyAddress } from '../../src/proxy-header.js';

const params = new URL(import.meta.url).searchParams;
const upstream = params.get('upstream') ?? 'tcp://127.0.0.1:6379';
const timeout = Number(params.get('timeout') ?? '5000');
const sendProxy = params.get('sendProxy') === '2';
const usePipe = params.get('relay') !== 'js';

/** What each side of a pair keeps in `context`: the other side, once there is one. */
interface Side {
  peer: Conn | null;
}

function proxyAddress(a: Addr): ProxyAddress {
  return a.network === 'unix' ? { path: a.path } : { host: a.host, port: a.port };
}

/**
 * The PROXY v2 header for a client: its address and the one it reached, or LOCAL when they cannot
 * be written as one pair (a unix client relayed to tcp has no port; families differ).
 */
function proxyHeader(c: Conn): Uint8Array {
  const source = proxyAddress(c.remoteAddr);
  const destination = proxyAddress(c.localAddr);
  try {
    return encodeProxyHeaderV2({ command: 'proxy', source, destination });
  } catch {
    return encodeProxyHeaderV2({ command: 'local' });
  }
}

const peerOf = (c: Conn): Conn | null => (c.context as Side | undefined)?.peer ?? null;

const events: Events = {
  numLoops: Number(params.get('loops') ?? '1'),
  loadBalance: LoadBalance.LeastConnections,
  opened(c) {
    if (c.outbound) return; // the upstream side: its context was set by the dial
    const side: Side = { peer: null };
    c.context = side;
    c.pause(); // nothing to relay to until the upstream is open
    c.loop.dial(upstream, { context: { peer: c } satisfies Side, timeout }).then(
      (up) => {
        side.peer = up;
        if (sendProxy) up.write(proxyHeader(c));
        if (usePipe) {
          c.pipe(up); // with what the client sent meanwhile
          up.pipe(c);
        }
        c.resume();
        if (!usePipe) c.wake(); // input that arrived meanwhile
      },
      (err: Error) => c.destroy(err),
    );
  },
  data(c, input) {
    const peer = peerOf(c);
    if (peer === null) return; // kept until the upstream is open
    // relay=js (with pipes, only what is read while a pipe is being set up comes here)
    // The peek views are handed over before the input is reused: everything is consumed here.
    const [first, end] = input.peekAll();
    let more = peer.write(first);
    if (end.length > 0) more = peer.write(end);
    input.retrieveAll();
    if (!more) c.pause();
  },
  drained(c) {
    peerOf(c)?.resume();
  },
  end(c) {
    if (c.pipedTo !== null) return; // the pipe passed the FIN on
    // Half-close: pass the FIN on. Conn.end() on a side whose own peer has already ended closes
    // it, so the pair closes once both directions have ended (and `closed` closes the other).
    peerOf(c)?.end(); // a client is paused until its upstream is open, so its FIN comes after
  },
  closed(c) {
    peerOf(c)?.close();
  },
};
export default events;
