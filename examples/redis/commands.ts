/**
 * The command handler: the command table and its dispatch, with name lookup in any case, container
 * commands with subcommands (`CONFIG GET`), arity checks, and errors worded as Redis 7 words them.
 * The commands themselves live in strings.ts (the keyspace) and admin.ts (connection and server);
 * COMMAND, which describes the table, lives here.
 */
import { adminCommands } from './admin.js';
import type { ReplyWriter } from './reply.js';
import type { Args } from './resp.js';
import { Err, helpSubcommand, type CommandContext, type CommandSpec } from './spec.js';
import { stringCommands } from './strings.js';

/** Longest user text quoted in an error, as Redis's `%.128s`. */
const kQuoteMaxChars = 128;

function buildTable(specs: readonly CommandSpec[]): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const spec of specs) {
    table.set(spec.name, spec);
    table.set(spec.name.toUpperCase(), spec);
  }
  return table;
}

/** Every command, under its lowercase and its uppercase name. */
const kTable = buildTable([...stringCommands, ...adminCommands, commandCommand()]);

/** The command run last: pipelines repeat commands, and comparing bytes is cheaper than a lookup. */
let kLast: CommandSpec | undefined;

/** Every distinct command, in table order. */
export function allCommands(): CommandSpec[] {
  return [...new Set(kTable.values())];
}

/** Looks a command up by name, in any case. */
export function lookupCommand(name: string): CommandSpec | undefined {
  return kTable.get(name) ?? kTable.get(name.toLowerCase());
}

/** Runs the command in `ctx.args` (argc >= 1), writing exactly one reply. */
export function execute(ctx: CommandContext): void {
  const args = ctx.args;
  const argc = args.argc;
  ctx.loop.commandsProcessed++;
  let spec = kLast !== undefined && args.is(0, kLast.name) ? kLast : lookupCommand(args.str(0));
  if (spec === undefined) {
    ctx.out.error(unknownCommand(args.str(0), args));
    return;
  }
  kLast = spec;
  if (spec.subcommands !== undefined && (argc >= 2 || spec.run === undefined)) {
    if (argc < 2) {
      ctx.out.error(Err.arity(spec.name));
      return;
    }
    const subName = args.str(1);
    const sub = spec.subcommands.get(subName.toLowerCase());
    if (sub === undefined) {
      ctx.out.error(
        `ERR unknown subcommand '${subName.slice(0, kQuoteMaxChars)}'. Try ${spec.name.toUpperCase()} HELP.`,
      );
      return;
    }
    spec = sub;
  }
  const arity = spec.arity;
  if ((arity > 0 && argc !== arity) || argc < -arity) {
    ctx.out.error(Err.arity(spec.name));
    return;
  }
  spec.run!(ctx);
}

/** `unknown command 'FOO', with args beginning with: 'a' 'b' `, built as Redis 7 builds it. */
function unknownCommand(name: string, args: Args): string {
  let list = '';
  for (let i = 1; i < args.argc && list.length < kQuoteMaxChars; i++) {
    list += `'${args.str(i).slice(0, kQuoteMaxChars - list.length)}' `;
  }
  return `ERR unknown command '${name.slice(0, kQuoteMaxChars)}', with args beginning with: ${list}`;
}

/** Writes one COMMAND entry: name, arity, flags, key positions, then ACL categories, tips, key specs, subcommands. */
function writeCommandEntry(out: ReplyWriter, spec: CommandSpec): void {
  out.arrayHeader(10);
  out.bulkString(spec.name);
  out.integer(spec.arity);
  out.arrayHeader(spec.flags.length);
  for (const f of spec.flags) out.simple(f);
  out.integer(spec.keys[0]);
  out.integer(spec.keys[1]);
  out.integer(spec.keys[2]);
  out.arrayHeader(0);
  out.arrayHeader(0);
  out.arrayHeader(0);
  const subs = spec.subcommands === undefined ? [] : [...spec.subcommands.values()];
  out.arrayHeader(subs.length);
  for (const sub of subs) writeCommandEntry(out, sub);
}

/**
 * COMMAND, COMMAND COUNT / INFO / LIST / HELP: enough for client libraries. COMMAND DOCS is left
 * out on purpose: on its error, an interactive redis-cli falls back to its built-in help (as with a
 * Redis 6 server) and shows argument hints, which an empty DOCS reply would take away.
 */
function commandCommand(): CommandSpec {
  const sub = (name: string, arity: number, run: (ctx: CommandContext) => void): [string, CommandSpec] => [
    name,
    { name: `command|${name}`, arity, flags: ['loading', 'stale'], keys: [0, 0, 0], run },
  ];
  const subcommands = new Map<string, CommandSpec>([
    sub('count', 2, ({ out }) => out.integer(allCommands().length)),
    sub('list', -2, ({ out }) => {
      const all = allCommands();
      out.arrayHeader(all.length);
      for (const spec of all) out.bulkString(spec.name);
    }),
    sub('info', -2, ({ args, out }) => {
      out.arrayHeader(args.argc - 2);
      for (let i = 2; i < args.argc; i++) {
        const spec = lookupCommand(args.str(i));
        if (spec === undefined) out.nullArray();
        else writeCommandEntry(out, spec);
      }
    }),
    ['help', helpSubcommand('command', ['COUNT', 'INFO [<command-name> ...]', 'LIST'])],
  ]);
  return {
    name: 'command',
    arity: -1,
    flags: ['loading', 'stale'],
    keys: [0, 0, 0],
    subcommands,
    run({ out }) {
      const all = allCommands();
      out.arrayHeader(all.length);
      for (const spec of all) writeCommandEntry(out, spec);
    },
  };
}
