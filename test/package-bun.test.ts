/**
 * Under Bun the native backend cannot run: Bun 1.4's Node-API has no uv_poll, and loading the addon
 * used to abort the process with `panic: unsupported uv function: uv_poll_init`. The default `auto`
 * backend picks portable there, the echo example serves byte-exact, and `backend: 'native'` rejects
 * with BackendUnavailableError naming Bun (test/package-runtime.ts). Uses the Bun binary of the
 * devDependency @oven/bun-linux-x64 (the benchmarks' Bun).
 */
import { join } from 'node:path';
import { kRoot, runtimeSuite } from './package-runtime.js';

runtimeSuite({
  name: 'Bun',
  binary: join(kRoot, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'),
  args: (script, scriptArgs = []) => [script, ...scriptArgs],
});
