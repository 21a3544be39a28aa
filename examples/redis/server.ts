/**
 * The Redis server as gevent Events: each connection gets a RESP parser in its context, each
 * `data` call runs every complete command in the input and answers them all in one write, a
 * protocol error is answered as Redis answers it and closes the connection, and QUIT closes after
 * its +OK.
 *
 * One RedisServer is one loop's worth of state: a keyspace, an output buffer, counters. With
 * several loops each loop (worker thread) imports events.ts and builds its own, so there is one
 * keyspace per loop.
 */
import { performance } from 'node:perf_hooks';
import { Action, LoadBalance, type Conn, type Events } from '../../src/index.js';
import { execute } from './commands.js';
import { ReplyWriter } from './reply.js';
import { readCommands, RespParser, type Args } from './resp.js';
import type { CommandContext, LoopState, Session } from './spec.js';
import { Keyspace, type KeyspaceOptions } from './store.js';

/** Options of createRedisServer(). */
export interface RedisServerOptions {
  /** Events.numLoops (default 1). */
  numLoops?: number;
  /** Where the start-up banner goes (default console.log); null prints nothing. */
  log?: ((line: string) => void) | null;
  /** Options of this loop's keyspace. */
  keyspace?: KeyspaceOptions;
}

/** One loop's Redis server: its events, its keyspace, and close() to stop the keyspace's timers. */
export interface RedisServer {
  readonly events: Events;
  readonly keyspace: Keyspace;
  close(): void;
}

/** A connection's state: the Session commands see, plus the parser holding any partial command. */
class Client implements Session {
  readonly parser = new RespParser();
  name = '';
  closing = false;

  constructor(
    readonly conn: Conn,
    readonly id: number,
  ) {}
}

/** The start-up line; with several loops it says that each loop has its own keyspace. */
export function bannerLine(port: number, numLoops: number): string {
  return `redis server started on port ${port} (loops: ${numLoops}${numLoops > 1 ? ', one keyspace per loop' : ''})`;
}

/** Builds one loop's Redis server. */
export function createRedisServer(options: RedisServerOptions = {}): RedisServer {
  const numLoops = options.numLoops ?? 1;
  const log = options.log === undefined ? (line: string) => console.log(line) : options.log;
  const keyspace = new Keyspace(options.keyspace);
  let backend = numLoops > 1 ? 'native' : 'unknown';
  const loop: LoopState = {
    keyspace,
    numLoops,
    backend: () => backend,
    startedMs: performance.now(),
    connectedClients: 0,
    commandsProcessed: 0,
  };
  const out = new ReplyWriter();
  let nextId = 0;
  const ctx: CommandContext = { args: null as unknown as Args, out, session: null as unknown as Session, loop };
  const run = (args: Args): boolean => {
    ctx.args = args;
    execute(ctx);
    return !ctx.session.closing;
  };

  const events: Events = {
    numLoops,
    loadBalance: LoadBalance.RoundRobin,
    serving(server) {
      backend = server.backend;
      log?.(bannerLine(server.addrs[0]?.port ?? 0, server.numLoops));
    },
    opened(c) {
      loop.connectedClients++;
      c.context = new Client(c, ++nextId);
    },
    closed() {
      loop.connectedClients--;
    },
    data(c, input) {
      const client = c.context as Client;
      ctx.session = client;
      const result = readCommands(input, client.parser, run);
      if (result === 'error') out.error(`ERR Protocol error: ${client.parser.error}`);
      const bytes = out.take();
      return result === 'drained' ? bytes : { out: bytes, action: Action.Close };
    },
  };
  return { events, keyspace, close: () => keyspace.close() };
}
