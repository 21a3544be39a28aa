/**
 * The command line the examples share: --port, --loops and --backend beside each example's own
 * flags, checked before anything starts, and serving until SIGINT or SIGTERM. A bad flag, or a
 * server that cannot start, prints `<example>: <message>` on stderr and exits with code 2.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { listen, type BackendKind, type Server, type ServeOptions, type TlsOptions } from '../src/index.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

function commonOptions(defaultPort: number) {
  return {
    port: { type: 'string', default: String(defaultPort) },
    loops: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'auto' },
  } as const;
}

type Values<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ options: ReturnType<typeof commonOptions> & O }>
>['values'];

/** The flags every example takes, checked, and all flags as parseArgs read them. */
export interface Flags<O extends OptionsConfig> {
  port: number;
  /** --loops as given: the events module reads it from its URL's query. */
  loops: string;
  backend: BackendKind;
  values: Values<O>;
}

/** The TLS flags of the examples that serve TLS: a PEM certificate file and its key file. */
export const kTlsFlags = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

/**
 * ServeOptions.tls from --tls-cert and --tls-key (both or neither), with `alpn` when given; undefined
 * without them. A missing partner or an unreadable file ends the process naming the flag.
 */
export function tlsFromFlags(
  example: string,
  cert: string | undefined,
  key: string | undefined,
  alpn?: string[],
): TlsOptions | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined)
    fail(example, `--tls-cert and --tls-key go together (got only --tls-${cert === undefined ? 'key' : 'cert'})`);
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      fail(example, `--${flag}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return { cert: read('tls-cert', cert), key: read('tls-key', key), ...(alpn ? { alpn } : {}) };
}

/** Prints `<example>: <message>` on stderr and exits with code 2. */
export function fail(example: string, message: string): never {
  console.error(`${example}: ${message}`);
  process.exit(2);
}

/**
 * `args` with every `--name -N` (or `-n -N`) joined into `--name=-N` when the option takes a value
 * and -N is a negative number, so that the number reaches the option: util.parseArgs reads `-1`
 * as an option and refuses `--loops -1` as ambiguous. Arguments after `--` are left alone.
 */
export function joinNegativeValues(args: readonly string[], options: OptionsConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = valueOptionName(arg, options);
    const next = args[i + 1];
    if (name !== null && next !== undefined && /^-\.?\d/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** The long name of the value-taking option that `arg` (`--name` or `-n`, without `=`) names, else null. */
function valueOptionName(arg: string, options: OptionsConfig): string | null {
  if (arg.startsWith('--')) {
    const name = arg.slice(2);
    return Object.hasOwn(options, name) && options[name]!.type === 'string' ? name : null;
  }
  if (arg.length !== 2 || arg[0] !== '-') return null;
  for (const [name, o] of Object.entries(options)) if (o.short === arg[1] && o.type === 'string') return name;
  return null;
}

/**
 * Reads the flags in `args` (default: the process's): --port (default `defaultPort`; 0 picks a
 * free one), --loops (default 1), --backend (native, portable or auto; default auto), and the
 * example's `own`. An option's value may be a negative number given as `--opt -N` or `--opt=-N`.
 */
export function parseFlags<O extends OptionsConfig = Record<never, never>>(
  example: string,
  defaultPort: number,
  own?: O,
  args: readonly string[] = process.argv.slice(2),
): Flags<O> {
  const options: ReturnType<typeof commonOptions> & O = { ...commonOptions(defaultPort), ...(own as O) };
  let values: Values<O>;
  try {
    ({ values } = parseArgs({ options, args: joinNegativeValues(args, options) }));
  } catch (err) {
    fail(example, (err as Error).message);
  }
  const common = values as { port: string; loops: string; backend: string };
  const port = Number(common.port);
  if (!/^\d+$/.test(common.port) || port > 65535)
    fail(example, `--port must be a number from 0 to 65535, got ${common.port}`);
  if (!/^-?\d+$/.test(common.loops)) fail(example, `--loops must be an integer, got ${common.loops}`);
  const backend = common.backend;
  if (backend !== 'native' && backend !== 'portable' && backend !== 'auto')
    fail(example, `--backend must be native, portable or auto, got ${backend}`);
  return { port, loops: common.loops, backend, values };
}

/**
 * Serves the events module at `events` on `address` until SIGINT or SIGTERM, and returns once the
 * server has shut down. `options` are further ServeOptions (the backend and signal are set here);
 * `onListening` gets the running server's handle once it serves.
 * A server that cannot start ends the process as a bad flag does.
 */
export async function serveUntilSignal(
  example: string,
  events: URL,
  backend: BackendKind,
  address: string,
  options: Omit<ServeOptions, 'backend' | 'signal'> = {},
  onListening?: (server: Server) => void,
): Promise<void> {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  try {
    const server = await listen(events, { ...options, backend, signal: controller.signal }, address);
    onListening?.(server);
    await server.closed;
  } catch (err) {
    fail(example, (err as Error).message);
  }
}
