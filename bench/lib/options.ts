/**
 * What the benchmarks share of their command lines: finding the project root, checking flag
 * values and name lists, and the command line recorded in the docs. A bad value throws an Error
 * whose message starts with the benchmark's tag (`bench:http: --trials must be ...`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** The flags every benchmark takes. */
const kCommonOptions = {
  only: { type: 'string' },
  'no-write-docs': { type: 'boolean', default: false },
  'quiet-wait': { type: 'string', default: '10' },
  help: { type: 'boolean', default: false },
} as const;

type Values<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof kCommonOptions & O }>
>['values'];

/**
 * Reads `argv` with the flags every benchmark takes (--only, --no-write-docs, --quiet-wait,
 * --help) and its `own`; on --help prints `usage` and exits.
 */
export function parseFlags<O extends OptionsConfig>(argv: string[], own: O, usage: string): Values<O> {
  const options: typeof kCommonOptions & O = { ...kCommonOptions, ...own };
  const { values } = parseArgs({ args: argv, options });
  if ((values as { help: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

/** How a number flag may be given: `integer` wants a whole number, `zero` lets `0` mean "off". */
export interface NumberRule {
  integer?: boolean;
  zero?: boolean;
}

/** Checks one benchmark's flag values; every message it throws starts with `tag`. */
export class FlagChecks {
  constructor(private readonly tag: string) {}

  /** The value of `--name` as a positive number (or integer), or 0 when the rule allows it. */
  positive(name: string, raw: string, rule: NumberRule = {}): number {
    if (rule.zero && raw === '0') return 0;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || (rule.integer && !Number.isInteger(n))) {
      throw new Error(`${this.tag}: --${name} must be a positive ${rule.integer ? 'integer' : 'number'}, got ${raw}`);
    }
    return n;
  }

  /** Every name given must be one of `known`; `kind` names them in the message (`server`). */
  known(kind: string, given: readonly string[] | null, known: readonly string[]): void {
    for (const n of given ?? []) {
      if (!known.includes(n))
        throw new Error(`${this.tag}: unknown ${kind} ${n}; the ${kind}s are ${known.join(', ')}`);
    }
  }
}

/** A comma-separated flag value as a list of names, or null when the flag was not given. */
export function nameList(raw: string | undefined): string[] | null {
  return raw === undefined
    ? null
    : raw
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
}

/** The project root: the first folder up from this file that holds package.json and `marker`. */
export function findRoot(tag: string, marker: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, marker))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`${tag}: cannot find the project root (package.json beside ${marker})`);
    dir = up;
  }
  return dir;
}

/** Whether `cmd` can be started at all (it is installed and on PATH). */
export function hasCommand(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}

/**
 * Runs a benchmark's `main`: the number it returns becomes the exit code; an error it throws is
 * printed (its message only) and exits with code 1.
 */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}

/**
 * The command that ran this benchmark, for the docs: `npm run <npmScript> -- ARGS` when npm ran
 * that script, else `node <script> ARGS`, with arguments quoted for sh where they need it.
 */
export function commandLine(npmScript: string, script: string, argv: string[]): string {
  const args = argv.map((a) => (/^[\w.,=/:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (process.env.npm_lifecycle_event === npmScript) return `npm run ${npmScript}${args ? ` -- ${args}` : ''}`;
  return `node ${script}${args ? ` ${args}` : ''}`;
}
