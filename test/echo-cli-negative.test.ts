/**
 * The examples' shared command line (examples/cli.ts) takes a negative number as an option's value
 * in both spellings, `--loops -1` and `--loops=-1` (util.parseArgs alone refuses the first as
 * ambiguous), and the echo example started with `--port 0` prints the port it really bound.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { joinNegativeValues, parseFlags } from '../examples/cli.js';
import { backendsUnderTest, connectTo, readExactly } from './helpers.js';

const kOptions = {
  port: { type: 'string' },
  loops: { type: 'string', short: 'l' },
  trace: { type: 'boolean' },
} as const;

const kEchoMain = fileURLToPath(new URL('../examples/echo/main.js', import.meta.url));

/** Runs the echo example with `args` until it exits; its exit code and stderr. */
async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [kEchoMain, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

describe('examples/cli.ts: negative option values', () => {
  test('`--opt -N` becomes `--opt=-N` for options that take a value, and nothing else changes', () => {
    assert.deepEqual(joinNegativeValues(['--loops', '-1', '--port', '0'], kOptions), ['--loops=-1', '--port', '0']);
    assert.deepEqual(joinNegativeValues(['-l', '-4'], kOptions), ['--loops=-4']);
    assert.deepEqual(joinNegativeValues(['--loops', '-0.5'], kOptions), ['--loops=-0.5']);
    assert.deepEqual(joinNegativeValues(['--loops=-1'], kOptions), ['--loops=-1']);
    assert.deepEqual(joinNegativeValues(['--trace', '-1'], kOptions), ['--trace', '-1'], 'a boolean takes no value');
    assert.deepEqual(joinNegativeValues(['--unknown', '-1'], kOptions), ['--unknown', '-1']);
    assert.deepEqual(joinNegativeValues(['--loops', '-x'], kOptions), ['--loops', '-x'], 'only numbers');
    assert.deepEqual(
      joinNegativeValues(['--', '--loops', '-1'], kOptions),
      ['--', '--loops', '-1'],
      'positionals after --',
    );
  });

  test('parseFlags reads --loops -1 and --loops=-1 alike', () => {
    assert.equal(parseFlags('echo', 5007, {}, ['--loops', '-1']).loops, '-1');
    assert.equal(parseFlags('echo', 5007, {}, ['--loops=-1']).loops, '-1');
    const flags = parseFlags('echo', 5007, { trace: { type: 'boolean', default: false } }, [
      '--port',
      '0',
      '--loops',
      '-1',
      '--trace',
    ]);
    assert.deepEqual([flags.port, flags.loops, flags.values.trace], [0, '-1', true]);
  });

  test('--port -1 is refused for its range, not as an ambiguous option', async () => {
    const { code, stderr } = await runToExit(['--port', '-1']);
    assert.equal(code, 2);
    assert.equal(stderr.trim(), 'echo: --port must be a number from 0 to 65535, got -1');
  });

  test('the echo example runs with --loops -1 --port 0, prints the port it bound, and echoes on it', async (t) => {
    const native = (await backendsUnderTest()).includes('native');
    if (!native && availableParallelism() > 1)
      return t.skip('one loop per CPU needs the native backend on this machine');
    const child = spawn(process.execPath, [kEchoMain, '--loops', '-1', '--port', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout });
      const [banner] = (await once(lines, 'line')) as [string];
      lines.close();
      const m = /^echo server started on port (\d+) \(loops: (\d+)\)$/.exec(banner);
      assert.ok(m !== null, banner);
      const port = Number(m[1]);
      assert.ok(port > 0, 'the real port, not 0');
      assert.equal(Number(m[2]), availableParallelism(), 'one loop per CPU');
      const s = await connectTo({ network: 'tcp', port, path: '' });
      s.write('ping');
      assert.equal((await readExactly(s, 4)).toString(), 'ping');
      s.destroy();
    } finally {
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
    }
  });
});
