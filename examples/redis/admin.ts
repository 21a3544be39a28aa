/**
 * Connection and server commands: PING, ECHO, SELECT (database 0 only), QUIT, HELLO (RESP2 only),
 * CLIENT, INFO and CONFIG GET, with the replies that redis-cli, redis-benchmark and client libraries ask for at
 * connect time. Nothing here is configurable: CONFIG GET reports the fixed settings of this server
 * (no persistence, one database).
 */
import { arch, platform } from 'node:os';
import { performance } from 'node:perf_hooks';
import { globMatch } from './glob.js';
import { Err, helpSubcommand, type CommandContext, type CommandSpec } from './spec.js';

/** The Redis version this server answers like, for clients that check it. */
const kRedisVersion = '7.0.0';

function spec(name: string, arity: number, flags: string[], run: (ctx: CommandContext) => void): CommandSpec {
  return { name, arity, flags, keys: [0, 0, 0], run };
}

function container(name: string, arity: number, subs: CommandSpec[], help: string[]): CommandSpec {
  const subcommands = new Map<string, CommandSpec>(subs.map((s) => [s.name.slice(name.length + 1), s]));
  subcommands.set('help', helpSubcommand(name, help));
  return { name, arity, flags: [], keys: [0, 0, 0], subcommands };
}

function ping({ args, out }: CommandContext): void {
  if (args.argc > 2) out.error(Err.arity('ping'));
  else if (args.argc === 2) out.bulk(args.view(1));
  else out.pong();
}

function select({ args, out }: CommandContext): void {
  const id = args.int(1);
  if (id === null) out.error(Err.notInteger);
  else if (id > 2147483647 || id < -2147483648)
    out.error('ERR value is out of range, value must between -2147483648 and 2147483647');
  else if (id !== 0) out.error(Err.dbIndex);
  else out.ok();
}

/** The settings CONFIG GET reports: name to value, for this connection. */
const kConfig: readonly [string, (ctx: CommandContext) => string][] = [
  ['save', () => ''],
  ['appendonly', () => 'no'],
  ['databases', () => '1'],
  ['port', (ctx) => String(ctx.session.conn.localAddr.port)],
  ['bind', () => ''],
  ['timeout', () => '0'],
  ['maxmemory', () => '0'],
  ['maxclients', () => '10000'],
  ['io-threads', () => '1'],
  ['proto-max-bulk-len', () => '536870912'],
];

function configGet(ctx: CommandContext): void {
  const { args, out } = ctx;
  const patterns: string[] = [];
  for (let i = 2; i < args.argc; i++) patterns.push(args.str(i).toLowerCase());
  const hits = kConfig.filter(([name]) => patterns.some((p) => globMatch(p, name)));
  out.arrayHeader(hits.length * 2);
  for (const [name, value] of hits) {
    out.bulkString(name);
    out.bulkString(value(ctx));
  }
}

/** Redis's check of a client name (validateClientName): printable ASCII without spaces, or empty. */
const kBadClientName = /[^\x21-\x7e]/;
const kBadClientNameError = 'ERR Client names cannot contain spaces, newlines or special characters.';

function clientSetName({ args, out, session }: CommandContext): void {
  const name = args.str(2);
  if (kBadClientName.test(name)) {
    out.error(kBadClientNameError);
    return;
  }
  session.name = name;
  out.ok();
}

/** INFO sections: each a title and its lines, built when asked for. */
function infoSections(ctx: CommandContext): [string, string[]][] {
  const { loop, session } = ctx;
  const uptimeS = Math.floor((performance.now() - loop.startedMs) / 1000);
  const ks = loop.keyspace;
  return [
    [
      'Server',
      [
        `redis_version:${kRedisVersion}`,
        'redis_mode:standalone',
        `os:${platform()} ${arch()}`,
        'arch_bits:64',
        `multiplexing_api:${loop.backend() === 'native' ? 'epoll' : 'node'}`,
        `process_id:${process.pid}`,
        `tcp_port:${session.conn.localAddr.port}`,
        `uptime_in_seconds:${uptimeS}`,
        `uptime_in_days:${Math.floor(uptimeS / 86400)}`,
        `gevent_loops:${loop.numLoops}`,
        `gevent_backend:${loop.backend()}`,
      ],
    ],
    ['Clients', [`connected_clients:${loop.connectedClients}`]],
    ['Persistence', ['loading:0', 'rdb_changes_since_last_save:0', 'aof_enabled:0']],
    ['Stats', [`total_commands_processed:${loop.commandsProcessed}`]],
    ['Keyspace', ks.size > 0 ? [`db0:keys=${ks.size},expires=${ks.expiresCount},avg_ttl=0`] : []],
  ];
}

function info(ctx: CommandContext): void {
  const { args, out } = ctx;
  const wanted = new Set<string>();
  for (let i = 1; i < args.argc; i++) wanted.add(args.str(i).toLowerCase());
  const all = wanted.size === 0 || wanted.has('all') || wanted.has('everything') || wanted.has('default');
  const parts: string[] = [];
  for (const [title, lines] of infoSections(ctx)) {
    if (all || wanted.has(title.toLowerCase())) parts.push(`# ${title}\r\n${lines.map((l) => `${l}\r\n`).join('')}`);
  }
  out.bulkString(parts.join('\r\n'));
}

/**
 * HELLO [protover [AUTH username password] [SETNAME name]], in Redis 7.0's order: the version
 * first (not an integer, or not 2 or 3: NOPROTO), then each option as it comes. SETNAME refuses a
 * name as CLIENT SETNAME does, and sets it at once, so that an error in a later option leaves it
 * set, as in Redis. RESP2 only: protocol 3 then gets Redis's NOPROTO error, so that a client can
 * fall back. There are no users: AUTH is accepted as by a Redis whose default user has no password.
 */
function hello(ctx: CommandContext): void {
  const { args, out, session } = ctx;
  if (args.argc >= 2) {
    const ver = args.int(1);
    if (ver === null) {
      out.error('ERR Protocol version is not an integer or out of range');
      return;
    }
    if (ver !== 2 && ver !== 3) {
      out.error('NOPROTO unsupported protocol version');
      return;
    }
    for (let j = 2; j < args.argc; j++) {
      const more = args.argc - j - 1;
      if (args.is(j, 'auth') && more >= 2) j += 2;
      else if (args.is(j, 'setname') && more >= 1) {
        const name = args.str(++j);
        if (kBadClientName.test(name)) {
          out.error(kBadClientNameError);
          return;
        }
        session.name = name;
      } else {
        out.error(`ERR Syntax error in HELLO option '${args.str(j)}'`);
        return;
      }
    }
    if (ver === 3) {
      out.error('NOPROTO unsupported protocol version');
      return;
    }
  }
  const fields: [string, string | number][] = [
    ['server', 'redis'],
    ['version', kRedisVersion],
    ['proto', 2],
    ['id', session.id],
    ['mode', 'standalone'],
    ['role', 'master'],
  ];
  out.arrayHeader(fields.length * 2 + 2);
  for (const [k, v] of fields) {
    out.bulkString(k);
    if (typeof v === 'number') out.integer(v);
    else out.bulkString(v);
  }
  out.bulkString('modules');
  out.arrayHeader(0);
}

/** The connection and server commands, for the command table. */
export const adminCommands: readonly CommandSpec[] = [
  spec('ping', -1, ['fast', 'stale'], ping),
  spec('echo', 2, ['fast'], ({ args, out }) => out.bulk(args.view(1))),
  spec('select', 2, ['loading', 'stale', 'fast'], select),
  spec('quit', -1, ['loading', 'stale', 'fast'], ({ out, session }) => {
    out.ok();
    session.closing = true;
  }),
  spec('info', -1, ['loading', 'stale'], info),
  spec('hello', -1, ['noscript', 'loading', 'stale', 'fast'], hello),
  container(
    'config',
    -2,
    [
      spec('config|get', -3, ['loading', 'stale'], configGet),
      spec('config|resetstat', 2, ['loading', 'stale'], ({ out }) => out.ok()),
    ],
    [
      'GET <pattern>',
      '    Return parameters matching the glob-like <pattern> and their values.',
      'RESETSTAT',
      '    Reset statistics.',
    ],
  ),
  container(
    'client',
    -2,
    [
      spec('client|id', 2, ['loading', 'stale'], ({ out, session }) => out.integer(session.id)),
      spec('client|getname', 2, ['loading', 'stale'], ({ out, session }) => {
        if (session.name === '') out.nullBulk();
        else out.bulkString(session.name);
      }),
      spec('client|setname', 3, ['loading', 'stale'], clientSetName),
      spec('client|setinfo', 4, ['loading', 'stale'], ({ out }) => out.ok()),
    ],
    [
      'ID',
      '    Return the ID of the current connection.',
      'GETNAME',
      '    Return the name of the current connection.',
      'SETNAME <name>',
      '    Assign the name <name> to the current connection.',
      'SETINFO <option> <value>',
      '    Accepted and ignored (lib-name, lib-ver).',
    ],
  ),
];
