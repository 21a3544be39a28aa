/**
 * The TCP proxy's events: each accepted connection dials the upstream on its own loop
 * (`c.loop.dial`), and the two connections hold each other in `context`. Bytes are relayed both
 * ways with backpressure: when a side's output passes the high-water mark, the other side stops
 * being read until it has drained. Settings arrive in the module URL's query
 * (`?upstream=tcp://127.0.0.1:6379&loops=4`).
 */
import { LoadBalance, type Conn, type Events } from '../../src/index.js';

const params = new URL(import.meta.url).searchParams;
const upstream = params.get('upstream') ?? 'tcp://127.0.0.1:6379';
const timeout = Number(params.get('timeout') ?? '5000');

/** What each side of a pair keeps in `context`: the other side, once there is one. */
interface Side {
  peer: Conn | null;
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
        c.resume();
        c.wake(); // input that arrived meanwhile
      },
      (err: Error) => c.destroy(err),
    );
  },
  data(c, input) {
    const peer = peerOf(c);
    if (peer === null) return; // kept until the upstream is open
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
  closed(c) {
    peerOf(c)?.close();
  },
};
export default events;
