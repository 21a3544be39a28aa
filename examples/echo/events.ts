/**
 * The echo server's events. Kept in a module of its own so that several loops (worker threads)
 * can each import it; settings arrive in the module URL's query (`?loops=4&trace=1`).
 */
import { LoadBalance, type Events } from '../../src/index.js';

const params = new URL(import.meta.url).searchParams;
const trace = params.get('trace') === '1';

const events: Events = {
  numLoops: Number(params.get('loops') ?? '1'),
  loadBalance: LoadBalance.RoundRobin,
  data(c, input) {
    if (trace) console.log(`${c.remoteAddr}: ${JSON.stringify(Buffer.from(input.bytes()).toString())}`);
    // Zero-copy echo: the views are written before the input buffer is reused, because everything
    // is consumed here (a view of input must not be returned while part of the input is kept).
    const [first, end] = input.peekAll();
    input.retrieveAll();
    if (end.length === 0) return first;
    c.send(first);
    return end;
  },
};
export default events;
