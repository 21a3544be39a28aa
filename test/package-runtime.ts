/**
 * The checks test/package-bun.test.ts and test/package-deno.test.ts run under a JavaScript runtime
 * other than Node (Bun, Deno), whose Node-API has no working libuv uv_poll: the echo example with
 * the default `auto` backend serves byte-exact on the portable backend without a fallback warning,
 * and `backend: 'native'` rejects with BackendUnavailableError naming the runtime instead of
 * crashing (Bun) or hanging (Deno).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connectTo, readExactly } from './helpers.js';

export const kRoot = fileURLToPath(new URL('../..', import.meta.url));
const kEchoMain = join(kRoot, 'dist', 'examples', 'echo', 'main.js');
const kIndex = pathToFileURL(join(kRoot, 'dist', 'src', 'index.js')).href;
const kPayloadBytes = 1 << 20;

/** A runtime to test: its name as error messages give it, its binary, and the arguments that run a script. */
export interface Runtime {
  name: 'Bun' | 'Deno';
  binary: string;
  args(script: string, scriptArgs?: string[]): string[];
}

/** The environment for a child: this one without the sanitizer preload or the addon override of test:asan. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DENO_NO_UPDATE_CHECK: '1' };
  for (const k of ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'GEVENT_NATIVE_ADDON', 'NODE_OPTIONS']) delete env[k];
  return env;
}

interface Child {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  stderr(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function start(rt: Runtime, args: string[], cwd: string): Child {
  const child = spawn(rt.binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err += d));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](), stderr: () => err, exited };
}

/** The next line `c` prints; an error with its stderr when it exits first or stays silent for 30 s. */
async function nextLine(rt: Runtime, c: Child): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${rt.name} printed nothing in 30 s; stderr: ${c.stderr()}`)), 30_000);
  });
  try {
    const r = await Promise.race([c.lines.next(), late]);
    if (r.done) throw new Error(`${rt.name} exited before printing; stderr: ${c.stderr()}`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `kPayloadBytes` random bytes to 127.0.0.1:port and checks they come back unchanged, in order. */
async function checkEcho(port: number): Promise<void> {
  const s = await connectTo({ network: 'tcp', port, path: '' });
  try {
    const payload = randomBytes(kPayloadBytes);
    const back = readExactly(s, payload.length);
    s.write(payload);
    assert.ok((await back).equals(payload), 'the echo is byte-exact');
  } finally {
    s.destroy();
  }
}

/** SIGTERM, then SIGKILL after 10 s; the exit code. */
async function stop(c: Child): Promise<number | null> {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
  const t = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
  const [code] = await c.exited;
  clearTimeout(t);
  return code;
}

/** Registers the suite for `rt`, skipped when its binary is missing. */
export function runtimeSuite(rt: Runtime): void {
  const skip = existsSync(rt.binary) ? false : `no ${rt.name} binary at ${rt.binary}`;

  describe(`package under ${rt.name}`, { skip }, () => {
    test('the echo example with the default (auto) backend serves byte-exact, on the portable backend', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gevent-runtime-'));
      const c = start(rt, rt.args(kEchoMain, ['--port', '0']), dir);
      try {
        const m = /^echo server started on port (\d+)/.exec(await nextLine(rt, c));
        assert.ok(m, `banner; stderr: ${c.stderr()}`);
        await checkEcho(Number(m[1]));
      } finally {
        const code = await stop(c);
        rmSync(dir, { recursive: true, force: true });
        assert.doesNotMatch(c.stderr(), /panic|uv_poll/, 'no native crash');
        assert.doesNotMatch(
          c.stderr(),
          /native backend is unavailable/,
          `no fallback warning: portable is expected under ${rt.name}`,
        );
        assert.equal(code, 0, c.stderr());
      }
    });

    test(`backend 'native' rejects with ERR_GEVENT_BACKEND_UNAVAILABLE naming ${rt.name}; auto serves on portable`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gevent-runtime-'));
      const script = join(dir, 'echo.mjs');
      writeFileSync(
        script,
        `import { listen } from ${JSON.stringify(kIndex)};
const echo = { data(c, input) { const out = input.bytes(); input.retrieveAll(); return out; } };
try {
  const s = await listen(echo, { backend: 'native' }, 'tcp://127.0.0.1:0');
  console.log(JSON.stringify({ ev: 'native', backend: s.backend }));
  await s.shutdown();
} catch (err) {
  console.log(JSON.stringify({ ev: 'native', name: err.name, code: err.code, message: err.message }));
}
const server = await listen(echo, { waitTimeout: 60000 }, 'tcp://127.0.0.1:0');
console.log(JSON.stringify({ ev: 'serving', port: server.addrs[0].port, backend: server.backend }));
process.on('SIGTERM', () => void server.shutdown().then(() => process.exit(0)));
`,
      );
      const c = start(rt, rt.args(script), dir);
      try {
        const native = JSON.parse(await nextLine(rt, c)) as Record<string, string>;
        assert.equal(native['code'], 'ERR_GEVENT_BACKEND_UNAVAILABLE', JSON.stringify(native));
        assert.equal(native['name'], 'BackendUnavailableError');
        assert.match(native['message']!, new RegExp(`^gevent: the native backend does not run under ${rt.name} `));
        const serving = JSON.parse(await nextLine(rt, c)) as { port: number; backend: string };
        assert.equal(serving.backend, 'portable');
        await checkEcho(serving.port);
      } finally {
        const code = await stop(c);
        rmSync(dir, { recursive: true, force: true });
        assert.doesNotMatch(c.stderr(), /panic|uv_poll/, 'no native crash');
        assert.equal(code, 0, c.stderr());
      }
    });
  });
}
