/**
 * The one place that loads the native addon. It tries, in order: the file named by the
 * GEVENT_NATIVE_ADDON environment variable (when set), build/Release/gevent.node, then
 * build/Debug/gevent.node (a build from source), then every `*.node` file in
 * prebuilds/<platform>-<arch>/ (the binaries shipped in the package, built by `npm run build:prebuild`;
 * those tagged with this machine's C library first), all relative to the package root. On failure
 * it throws a BackendUnavailableError that lists each path tried and why it failed.
 *
 * Under Bun and Deno nothing is loaded: the addon waits on its epoll fd with libuv's `uv_poll`,
 * which their Node-API does not provide in working order (Bun 1.4 aborts the process with
 * `panic: unsupported uv function: uv_poll_init`; under Deno 2.9 the poll never fires and a server
 * hangs). See foreignRuntime().
 *
 * Each thread (main or worker) loads its own instance; the addon keeps its state per instance.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError } from '../errors.js';
import type { NativeAddon } from './addon-types.js';

const kAddonFile = 'gevent.node';
const kPackageName = 'node-gevent';

let cached: NativeAddon | undefined;
let cachedError: BackendUnavailableError | undefined;

/** The package root: the nearest directory above this module that holds package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
    dir = up;
  }
}

/** This process's C library, as prebuild file names tag it: 'glibc' or 'musl' (asked only when both are shipped: a report is slow). */
function libc(): 'glibc' | 'musl' {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/**
 * The prebuilt binaries for this platform and CPU, best first: those tagged with this C library,
 * then untagged ones, then the rest. When the folder has none, its `*.node` pattern stands in for
 * them, so that the loader's error still says where it looked.
 */
function prebuildCandidates(root: string): string[] {
  const dir = join(root, 'prebuilds', `${process.platform}-${arch()}`);
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.node'));
  } catch {
    files = [];
  }
  if (files.length === 0) return [join(dir, '*.node')];
  const mixed = files.some((f) => f.split('.').includes('musl'));
  const mine = mixed ? libc() : 'glibc';
  const rank = (f: string): number => {
    const tags = f.split('.');
    if (tags.includes(mine)) return 0;
    return tags.includes('glibc') || tags.includes('musl') ? 2 : 1;
  };
  return files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((f) => join(dir, f));
}

/** The paths loadAddon() tries, in order, for the package at `root` (default: this one). */
export function addonCandidates(root: string = packageRoot()): string[] {
  const paths: string[] = [];
  const override = process.env['GEVENT_NATIVE_ADDON'];
  if (override) paths.push(resolve(override));
  paths.push(join(root, 'build', 'Release', kAddonFile), join(root, 'build', 'Debug', kAddonFile));
  paths.push(...prebuildCandidates(root));
  return paths;
}

/** The runtime this is, with its version, when it is not Node.js but runs Node code (Bun, Deno); else null. */
export function foreignRuntime(): string | null {
  const v = process.versions as Record<string, string | undefined>;
  if (v['bun'] !== undefined) return `Bun ${v['bun']}`;
  if (v['deno'] !== undefined) return `Deno ${v['deno']}`;
  return null;
}

/** Loads (once per thread) and returns the addon; throws BackendUnavailableError naming every path tried. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (cachedError) throw cachedError;
  try {
    const runtime = foreignRuntime();
    if (runtime !== null) {
      throw new BackendUnavailableError(
        `the native backend does not run under ${runtime}: its Node-API has no working libuv uv_poll, which the addon waits on epoll with; use the portable backend`,
      );
    }
    if (process.platform !== 'linux') {
      throw new BackendUnavailableError(`the native backend needs Linux (epoll); this is ${process.platform}`);
    }
    cached = loadAddonFrom(addonCandidates());
    return cached;
  } catch (err) {
    cachedError = err as BackendUnavailableError;
    throw err;
  }
}

/** Loads the first of `paths` that loads, without caching; the error lists each path and why it failed. */
export function loadAddonFrom(paths: readonly string[]): NativeAddon {
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  let lastError: unknown;
  for (const path of paths) {
    if (!existsSync(path)) {
      tried.push(`${path} (not found)`);
      continue;
    }
    try {
      return require(path) as NativeAddon;
    } catch (err) {
      lastError = err;
      tried.push(`${path} (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    }
  }
  throw new BackendUnavailableError(
    `native addon not available; tried ${tried.join('; ')}. ` +
      `Build it from source with \`npm rebuild ${kPackageName} --build-from-source\` (needs a C compiler, make and Python 3)`,
    { cause: lastError },
  );
}

/** True when the native addon loads on this machine. */
export function nativeAvailable(): boolean {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}
