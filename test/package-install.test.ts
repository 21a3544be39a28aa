/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball>` into a fresh app with no
 * working C compiler (CC=/bin/false). The app must get the native backend from the shipped
 * prebuild, under the name node-gevent, by `import` and by `require`; the tarball must hold the
 * LICENSE, the docs the README links and the sources the source maps name; a source build that
 * fails must leave a warning and the install still succeeding; and `npm rebuild node-gevent
 * --build-from-source` must build from source where a compiler exists.
 *
 * node-gyp-build, a dependency, comes from the npm registry (or npm's cache).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { connectTo, readExactly } from './helpers.js';

const run = promisify(execFile);
const kRoot = fileURLToPath(new URL('../..', import.meta.url));
const kPrebuildDir = join(kRoot, 'prebuilds', `${process.platform}-${arch()}`);
const kName = 'node-gevent';
const skip =
  process.platform !== 'linux'
    ? 'the native backend is Linux only'
    : !existsSync(kPrebuildDir) || !readdirSync(kPrebuildDir).some((f) => f.endsWith('.node'))
      ? `no prebuild in ${kPrebuildDir}`
      : false;

/**
 * The environment for npm and the app: this one without what `npm test` or test:asan put in it
 * (npm_* settings, the sanitizer preload, an addon override), with this Node first on PATH.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      /^npm_/i.test(k) ||
      ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'GEVENT_NATIVE_ADDON', 'NODE_OPTIONS', 'INIT_CWD'].includes(k)
    )
      continue;
    env[k] = v;
  }
  env['PATH'] = `${join(process.execPath, '..')}:${env['PATH'] ?? ''}`;
  return { ...env, ...extra };
}

async function npm(cwd: string, args: string[], extra: Record<string, string> = {}): Promise<string> {
  const { stdout, stderr } = await run('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd,
    env: cleanEnv(extra),
    maxBuffer: 64 << 20,
    timeout: 300_000,
  });
  return `${stdout}\n${stderr}`;
}

/** Runs `script` (ES module text) in the app with this Node; its stdout. */
async function node(app: string, file: string, script: string): Promise<string> {
  writeFileSync(join(app, file), script);
  const { stdout } = await run(process.execPath, [file], { cwd: app, env: cleanEnv(), timeout: 60_000 });
  return stdout.trim();
}

/** Starts an echo server in the app (`import 'node-gevent'`, auto backend); checks 256 KiB come back unchanged; its backend. */
async function echoBackend(app: string): Promise<string> {
  writeFileSync(
    join(app, 'echo.mjs'),
    `import { listen } from '${kName}';
const server = await listen({ data(c, input) { const out = input.bytes(); input.retrieveAll(); return out; } }, {}, 'tcp://127.0.0.1:0');
console.log(JSON.stringify({ port: server.addrs[0].port, backend: server.backend }));
process.on('SIGTERM', () => void server.shutdown().then(() => process.exit(0)));
`,
  );
  const child = spawn(process.execPath, ['echo.mjs'], { cwd: app, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'exit');
  try {
    const lines = createInterface({ input: child.stdout });
    const [line] = (await Promise.race([once(lines, 'line'), exited.then(() => [`exited: ${stderr}`])])) as [string];
    lines.close();
    const { port, backend } = JSON.parse(line) as { port: number; backend: string };
    const s = await connectTo({ network: 'tcp', port, path: '' });
    const payload = randomBytes(256 << 10);
    const back = readExactly(s, payload.length);
    s.write(payload);
    assert.ok((await back).equals(payload), 'byte-exact echo');
    s.destroy();
    return backend;
  } finally {
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, stderr);
  }
}

describe('package: npm pack, then npm install in a fresh app', { skip }, () => {
  let dir = '';
  let app = '';
  let files: string[] = [];
  let tarball = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gevent-pack-'));
    app = join(dir, 'app');
    // dist/ is already built (npm test compiles first), so skip `prepare`.
    const out = await npm(kRoot, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
    const [info] = JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1)) as [
      { filename: string; files: { path: string }[] },
    ];
    tarball = join(dir, info.filename);
    files = info.files.map((f) => f.path);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the tarball is node-gevent with LICENSE, linked docs, sources for the maps and the prebuild; no tests', () => {
    assert.match(tarball, /node-gevent-\d+\.\d+\.\d+\.tgz$/);
    for (const f of [
      'LICENSE',
      'README.md',
      'scripts/install-fallback.cjs',
      'package.json',
      'binding.gyp',
      'docs/api.md',
      'docs/architecture.md',
      'docs/benchmarks.md',
      'src/index.ts',
      'dist/src/index.js',
      'dist/src/index.js.map',
      'native/addon.c',
    ]) {
      assert.ok(files.includes(f), `${f} in the tarball`);
    }
    assert.ok(
      files.some((f) => /^prebuilds\/linux-x64\/.*\.node$/.test(f)),
      'a linux-x64 prebuild',
    );
    assert.ok(
      files.some((f) => /^prebuilds\/linux-arm64\/.*\.node$/.test(f)),
      'a linux-arm64 prebuild',
    );
    assert.deepEqual(
      files.filter(
        (f) =>
          /^(test|dist\/test|bench|dist\/bench|examples|build)\//.test(f) ||
          (f.startsWith('scripts/') && f !== 'scripts/install-fallback.cjs'),
      ),
      [],
    );
  });

  test('with CC=/bin/false the install compiles nothing and the app gets the native backend from the prebuild', async () => {
    mkdirApp(app);
    const out = await npm(app, ['install', '--foreground-scripts', '--prefer-offline', tarball], {
      CC: '/bin/false',
      CXX: '/bin/false',
    });
    assert.doesNotMatch(out, /^node-gevent: /m, out);
    const pkg = join(app, 'node_modules', kName);
    assert.ok(!existsSync(join(pkg, 'build')), 'nothing was built');
    assert.equal(await echoBackend(app), 'native');
  });

  test('require() of the package gives the same API (require of an ES module)', async () => {
    const out = await node(
      app,
      'req.cjs',
      `const m = require('${kName}'); console.log(typeof m.listen, typeof m.serve, m.Action !== undefined);`,
    );
    assert.equal(out.split('\n').pop(), 'function function true');
  });

  test('a source build that fails (--build-from-source, CC=/bin/false) warns and succeeds, naming npm rebuild node-gevent', async () => {
    const out = await npm(app, ['rebuild', kName, '--build-from-source', '--foreground-scripts'], {
      CC: '/bin/false',
      CXX: '/bin/false',
    });
    assert.match(
      out,
      /^node-gevent: .*portable backend will be used.*npm rebuild node-gevent --build-from-source$/m,
      out,
    );
  });

  test('npm rebuild node-gevent --build-from-source builds build/Release from native/, which the loader then takes', async () => {
    await npm(app, ['rebuild', kName, '--build-from-source', '--foreground-scripts']);
    const built = join(app, 'node_modules', kName, 'build', 'Release', 'gevent.node');
    assert.ok(existsSync(built), 'built from source');
    const loader = pathToFileURL(join(app, 'node_modules', kName, 'dist', 'src', 'backend', 'addon.js')).href;
    const first = await node(
      app,
      'first.mjs',
      `import { existsSync } from 'node:fs'; import { addonCandidates } from '${loader}'; console.log(addonCandidates().find((p) => existsSync(p)));`,
    );
    assert.equal(first, built);
    assert.equal(await echoBackend(app), 'native');
  });
});

/** A fresh app folder with a package.json and nothing installed. */
function mkdirApp(app: string): void {
  rmSync(app, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }),
  );
}
