/**
 * The one place that loads the native addon. It tries, in order: the file named by the
 * GEVENT_NATIVE_ADDON environment variable (when set), build/Release/gevent.node, then
 * build/Debug/gevent.node, relative to the package root. On failure it throws a
 * BackendUnavailableError that lists each path tried and why it failed.
 *
 * Each thread (main or worker) loads its own instance; the addon keeps its state per instance.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError } from '../errors.js';
import type { NativeAddon } from './addon-types.js';

const kAddonFile = 'gevent.node';

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

/** The paths loadAddon() tries, in order. */
export function addonCandidates(): string[] {
  const root = packageRoot();
  const paths: string[] = [];
  const override = process.env['GEVENT_NATIVE_ADDON'];
  if (override) paths.push(resolve(override));
  paths.push(join(root, 'build', 'Release', kAddonFile), join(root, 'build', 'Debug', kAddonFile));
  return paths;
}

/** Loads (once per thread) and returns the addon; throws BackendUnavailableError naming every path tried. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (cachedError) throw cachedError;
  try {
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
    `native addon not available; tried ${tried.join('; ')}. Build it with \`npx node-gyp rebuild\` (needs a C compiler and Node headers)`,
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
