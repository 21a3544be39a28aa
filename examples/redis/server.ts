/**
 * The Redis server as gevent Events: each connection gets a RESP parser in its context, each
 * `data` call runs the complete commands in the input and writes their replies, a protocol error
 * is answered as Redis answers it and closes the connection, and QUIT closes after its +OK.
 *
 * Output is bounded per connection, as redis-server bounds it with its output buffer limits:
 * replies are written as they are built (every kWriteBytes), and once a write returns false (the
 * connection's queued output is past the server's `highWaterMark`) no further command runs; the
 * commands after it stay unconsumed in the input until `drained` fires, which wakes the
 * connection. So a client pipelining large replies waits for its own reader, and other clients
 * are served in between. Input is bounded too: a connection whose unconsumed input and parser
 * state pass `maxQueryBytes` (Redis's client-query-buffer-limit) is closed.
 *
 * Served with `allowHalfOpen`, a client that sends its commands and then FIN still gets every
 * reply: `end` ends our side only once the commands waiting in the input have run. Without it the
 * library closes the connection at the FIN, and commands still waiting are dropped (as Redis drops
 * the replies it has not written when it reads EOF).
 *
 * One RedisServer is one loop's worth of state: a keyspace, an output buffer, counters. With
 * several loops each loop (worker thread) imports events.ts and builds its own, so there is one
 * keyspace per loop. A closed connection leaves nothing behind: its parser drops its buffers.
 */
import { performance } from 'node:perf_hooks';
import { Action, LoadBalance, type Conn, type Events, type RingBuffer } from '../../src/index.js';
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
  /**
   * The most a connection may hold of unconsumed input plus parser state (a partial command,
   * pipelined commands not yet run), in bytes; past it the connection is closed without a reply,
   * as Redis closes a client past client-query-buffer-limit. Default kMaxQueryBytes (1 GiB).
   */
  maxQueryBytes?: number;
}

/** Default maxQueryBytes: Redis's client-query-buffer-limit. */
export const kMaxQueryBytes = 1024 * 1024 * 1024;
/** Replies built past this size are written before the next command runs. */
const kWriteBytes = 64 * 1024;

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
  /** A write returned false: no command runs until `drained` has fired and `data` runs again. */
  waiting = false;
  /** `drained` fired while waiting: the next `data` call (the wake's) runs commands again. */
  drained = false;
  /** The peer sent FIN (with allowHalfOpen): end our side once its last commands have run. */
  peerEnded = false;

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
  const maxQueryBytes = options.maxQueryBytes ?? kMaxQueryBytes;
  let nextId = 0;
  const ctx: CommandContext = { args: null as unknown as Args, out, session: null as unknown as Session, loop };
  /** Runs one command; false stops the read (QUIT, or output past the high-water mark). */
  const run = (args: Args): boolean => {
    ctx.args = args;
    execute(ctx);
    const client = ctx.session as Client;
    if (client.closing) return false;
    if (out.pending >= kWriteBytes && !out.writeTo(client.conn)) client.waiting = true;
    return !client.waiting;
  };
  const overLimit = (client: Client, input: RingBuffer): boolean => {
    const held = input.length + client.parser.heldBytes;
    if (held <= maxQueryBytes) return false;
    log?.(`closing client ${client.id}: ${held} bytes of query buffer, over the ${maxQueryBytes} byte limit`);
    client.parser.reset();
    return true;
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
    closed(c) {
      loop.connectedClients--;
      const client = c.context as Client | undefined;
      client?.parser.reset();
      client?.parser.detach();
      c.context = undefined;
    },
    drained(c) {
      const client = c.context as Client;
      if (!client.waiting) return;
      client.drained = true;
      c.wake();
    },
    end(c) {
      const client = c.context as Client;
      client.peerEnded = true;
      if (!client.waiting) c.end();
    },
    data(c, input) {
      const client = c.context as Client;
      if (overLimit(client, input)) return Action.Close;
      if (client.waiting) {
        if (!client.drained) return null;
        client.waiting = client.drained = false;
      }
      ctx.session = client;
      const result = readCommands(input, client.parser, run);
      if (result === 'error') out.error(`ERR Protocol error: ${client.parser.error}`);
      if (!out.writeTo(c)) client.waiting = true;
      if (result === 'error' || client.closing) return Action.Close;
      if (overLimit(client, input)) return Action.Close;
      if (client.peerEnded && !client.waiting) c.end();
      return null;
    },
  };
  return { events, keyspace, close: () => keyspace.close() };
}
