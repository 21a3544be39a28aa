/**
 * Under Deno the native backend cannot run: Deno 2.9 loads the addon, but its uv_poll never fires
 * and a server on the native backend hangs. The default `auto` backend picks portable there, the
 * echo example serves byte-exact, and `backend: 'native'` rejects with BackendUnavailableError
 * naming Deno (test/package-runtime.ts). Uses the Deno binary of the devDependency `deno` (the
 * npm registry's official build).
 */
import { join } from 'node:path';
import { kRoot, runtimeSuite } from './package-runtime.js';

runtimeSuite({
  name: 'Deno',
  binary: join(kRoot, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'),
  args: (script, scriptArgs = []) => ['run', '--allow-all', '--no-prompt', script, ...scriptArgs],
});
