/**
 * What a command is and what it sees: the command table's entry type, the per-connection session,
 * the per-loop state, and the error texts shared by several commands, worded as Redis 7 words them.
 *
 * Arity follows Redis: a positive arity is the exact argument count including the name, a
 * negative one the minimum.
 */
import type { Conn } from '../../src/index.js';
import type { ReplyWriter } from './reply.js';
import type { Args } from './resp.js';
import type { Keyspace } from './store.js';

/** Per-connection state, kept in `Conn.context`. */
export interface Session {
  readonly conn: Conn;
  /** A small number unique within the loop (CLIENT ID). */
  readonly id: number;
  /** CLIENT SETNAME. */
  name: string;
  /** Set by QUIT: write what is queued, then close. */
  closing: boolean;
}

/** What the whole loop shares: its keyspace and counters. */
export interface LoopState {
  readonly keyspace: Keyspace;
  readonly numLoops: number;
  readonly backend: () => string;
  readonly startedMs: number;
  connectedClients: number;
  commandsProcessed: number;
}

/** Everything a command sees; one object per loop, filled in before each command. */
export interface CommandContext {
  args: Args;
  out: ReplyWriter;
  session: Session;
  readonly loop: LoopState;
}

/** One entry of the command table. */
export interface CommandSpec {
  /** Lowercase; `container|sub` for a subcommand, as Redis names them in errors. */
  readonly name: string;
  readonly arity: number;
  /** Flags as COMMAND reports them (`readonly`, `write`, `fast`, ...). */
  readonly flags: readonly string[];
  /** Key positions as COMMAND reports them: first, last (-1 = last argument), step. */
  readonly keys: readonly [first: number, last: number, step: number];
  /** Runs the command; absent for a container that needs a subcommand. */
  readonly run?: (ctx: CommandContext) => void;
  /** Subcommands by lowercase name. */
  readonly subcommands?: ReadonlyMap<string, CommandSpec>;
}

/** Errors used by more than one command, as Redis words them. */
export const Err = {
  syntax: 'ERR syntax error',
  notInteger: 'ERR value is not an integer or out of range',
  overflow: 'ERR increment or decrement would overflow',
  dbIndex: 'ERR DB index is out of range',
  invalidExpire: (cmd: string): string => `ERR invalid expire time in '${cmd}' command`,
  arity: (cmd: string): string => `ERR wrong number of arguments for '${cmd}' command`,
} as const;

/** Builds the HELP subcommand of a container: a list of lines, as simple strings. */
export function helpSubcommand(container: string, lines: readonly string[]): CommandSpec {
  const text = [
    `${container.toUpperCase()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`,
    ...lines,
    'HELP',
    '    Print this help.',
  ];
  return {
    name: `${container}|help`,
    arity: 2,
    flags: ['loading', 'stale'],
    keys: [0, 0, 0],
    run({ out }) {
      out.arrayHeader(text.length);
      for (const line of text) out.simple(line);
    },
  };
}
