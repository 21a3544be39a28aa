/**
 * The HTTP server's events. Kept in a module of its own so that several loops (worker threads)
 * can each import it; settings arrive in the module URL's query:
 *   ?loops=N&maxHead=BYTES&maxBody=BYTES&bodyBudget=BYTES
 *    &headersTimeout=MS&requestTimeout=MS&keepAliveTimeout=MS&quiet=1
 * httpEvents() builds the same object from explicit settings, for tests and embedding.
 */
import { availableParallelism } from 'node:os';
import { LoadBalance, type Events } from '../../src/index.js';
import { BodyBudget } from './budget.js';
import { refreshDate } from './date.js';
import { kDefaultLimits, type HttpLimits } from './parser.js';
import { HttpSession, type HttpLoop } from './session.js';
import { DeadlineWheel, kDefaultTimeouts, type HttpTimeouts } from './timeouts.js';

/** 64 MiB of request bodies held at once, per server. */
export const kDefaultBodyBudgetBytes = 64 * 1024 * 1024;

/** What the server can be told. */
export interface HttpSettings {
  /** Events.numLoops: 1 runs on the calling thread, N > 1 needs the native backend. */
  loops: number;
  limits: HttpLimits;
  /** Default: kDefaultTimeouts (node:http's). */
  timeouts?: HttpTimeouts;
  /**
   * Request-body bytes the server may hold at once, over all its connections, split evenly among
   * its loops (each loop's connections share its part). Default kDefaultBodyBudgetBytes; Infinity
   * for no budget.
   */
  bodyBudgetBytes?: number;
  /** Print `http server started on port N (loops: L)` from `serving`. */
  log: boolean;
}

/** Reads settings from a module URL's query; throws naming a value that is not an integer in range. */
export function settingsFromQuery(params: URLSearchParams): HttpSettings {
  const int = (key: string, fallback: number, min: number): number => {
    const raw = params.get(key);
    if (raw === null) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || n < min || !Number.isSafeInteger(n))
      throw new RangeError(`http: ?${key} must be an integer >= ${min}, got ${raw}`);
    return n;
  };
  return {
    loops: int('loops', 1, -1),
    limits: {
      maxHeadBytes: int('maxHead', kDefaultLimits.maxHeadBytes, 1),
      maxBodyBytes: int('maxBody', kDefaultLimits.maxBodyBytes, 0),
    },
    timeouts: {
      headersMs: int('headersTimeout', kDefaultTimeouts.headersMs, 0),
      requestMs: int('requestTimeout', kDefaultTimeouts.requestMs, 0),
      keepAliveMs: int('keepAliveTimeout', kDefaultTimeouts.keepAliveMs, 0),
    },
    bodyBudgetBytes: int('bodyBudget', kDefaultBodyBudgetBytes, 0),
    log: params.get('quiet') !== '1',
  };
}

/** How many loops serve.ts runs for Events.numLoops `loops`. */
function loopCount(loops: number): number {
  return loops < 0 ? availableParallelism() : Math.max(1, loops);
}

/** The events of an HTTP server with these settings (one loop's share of them). */
export function httpEvents(settings: HttpSettings): Events {
  const timeouts = settings.timeouts ?? kDefaultTimeouts;
  const budgetBytes = settings.bodyBudgetBytes ?? kDefaultBodyBudgetBytes;
  const loop: HttpLoop = {
    limits: settings.limits,
    timeouts,
    budget: budgetBytes === Infinity ? null : new BodyBudget(Math.ceil(budgetBytes / loopCount(settings.loops))),
    wheel: new DeadlineWheel(timeouts),
  };
  return {
    numLoops: settings.loops,
    loadBalance: LoadBalance.RoundRobin,
    serving(server) {
      if (settings.log) console.log(`http server started on port ${server.addrs[0]!.port} (loops: ${server.numLoops})`);
    },
    opened(c) {
      c.context = new HttpSession(c, loop);
    },
    data(c, input) {
      return (c.context as HttpSession).onData(input);
    },
    closed(c) {
      (c.context as HttpSession | undefined)?.dispose();
    },
    tick() {
      return { delay: refreshDate() };
    },
  };
}

const events: Events = httpEvents(settingsFromQuery(new URL(import.meta.url).searchParams));
export default events;
