/**
 * The HTTP server's events. Kept in a module of its own so that several loops (worker threads)
 * can each import it; settings arrive in the module URL's query:
 *   ?loops=N&maxHead=BYTES&maxBody=BYTES&quiet=1
 * httpEvents() builds the same object from explicit settings, for tests and embedding.
 */
import { LoadBalance, type Events } from '../../src/index.js';
import { refreshDate } from './date.js';
import { HttpSession } from './handler.js';
import { kDefaultLimits, type HttpLimits } from './parser.js';

/** What the server can be told. */
export interface HttpSettings {
  /** Events.numLoops: 1 runs on the calling thread, N > 1 needs the native backend. */
  loops: number;
  limits: HttpLimits;
  /** Print `http server started on port N (loops: L)` from `serving`. */
  log: boolean;
}

/** Reads settings from a module URL's query; throws naming a value that is not a positive integer. */
export function settingsFromQuery(params: URLSearchParams): HttpSettings {
  const int = (key: string, fallback: number, min: number): number => {
    const raw = params.get(key);
    if (raw === null) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || n < min) throw new RangeError(`http: ?${key} must be an integer >= ${min}, got ${raw}`);
    return n;
  };
  return {
    loops: int('loops', 1, -1),
    limits: { maxHeadBytes: int('maxHead', kDefaultLimits.maxHeadBytes, 1), maxBodyBytes: int('maxBody', kDefaultLimits.maxBodyBytes, 0) },
    log: params.get('quiet') !== '1',
  };
}

/** The events of an HTTP server with these settings. */
export function httpEvents(settings: HttpSettings): Events {
  const { limits } = settings;
  return {
    numLoops: settings.loops,
    loadBalance: LoadBalance.RoundRobin,
    serving(server) {
      if (settings.log) console.log(`http server started on port ${server.addrs[0]!.port} (loops: ${server.numLoops})`);
    },
    opened(c) {
      c.context = new HttpSession(limits);
    },
    data(c, input) {
      return (c.context as HttpSession).onData(input);
    },
    tick() {
      return { delay: refreshDate() };
    },
  };
}

const events: Events = httpEvents(settingsFromQuery(new URL(import.meta.url).searchParams));
export default events;
