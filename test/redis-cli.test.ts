/**
 * The Redis example against Redis's own tools, on each backend: redis-cli with commands as
 * arguments, with inline commands on standard input, in --pipe mode (raw RESP), and asking what
 * it asks at start-up (COMMAND DOCS, refused so that it uses its built-in help); redis-benchmark
 * for a short SET/GET run, which first asks CONFIG GET save / appendonly. Skipped, saying why,
 * where Debian's redis-tools is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import type { Conn, Events } from '../src/index.js';
import { createRedisServer } from '../examples/redis/server.js';
import { backendsUnderTest, openFdCount, startServer, assertNoFdLeak } from './helpers.js';

const kToolTimeoutMs = 10_000;

function toolMissing(tool: string): string | false {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0
    ? false
    : `${tool} not found: install Debian's redis-tools to run this test`;
}

const cliMissing = toolMissing('redis-cli');
const benchmarkMissing = toolMissing('redis-benchmark');

/** Runs a tool to completion without blocking the loop that serves it; resolves with its stdout. */
function run(tool: string, args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, args, { encoding: 'utf8', timeout: kToolTimeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${tool} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin!.end(stdin ?? '');
  });
}

/** Serves one keyspace on port 0, runs `body` with the port, then stops and checks callbacks and fds. */
async function withServer(backend: 'native' | 'portable', body: (port: number) => Promise<void>): Promise<void> {
  const fds = openFdCount();
  const redis = createRedisServer({ log: null });
  const counts = { opened: 0, closed: 0 };
  const inner = redis.events;
  const events: Events = {
    ...inner,
    opened(c: Conn) {
      counts.opened++;
      return inner.opened!(c);
    },
    closed(c: Conn, err: Error | null) {
      counts.closed++;
      return inner.closed!(c, err);
    },
  };
  const running = await startServer(events, { backend }, 'tcp://127.0.0.1:0');
  try {
    await body(running.server.addrs[0]!.port);
  } finally {
    await running.stop();
    redis.close();
  }
  assert.ok(counts.opened > 0);
  assert.equal(counts.closed, counts.opened);
  assertNoFdLeak(fds);
}

for (const backend of await backendsUnderTest()) {
  describe(`redis tools against the redis example (${backend})`, () => {
    test(
      'redis-cli: commands as arguments, inline commands on stdin, --pipe, COMMAND DOCS',
      { skip: cliMissing },
      async () => {
        await withServer(backend, async (port) => {
          const cli = (args: string[], stdin?: string): Promise<string> =>
            run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], stdin);
          assert.equal(await cli(['PING']), 'PONG\n');
          assert.equal(await cli(['SET', 'greeting', 'hello world']), 'OK\n');
          assert.equal(await cli(['GET', 'greeting']), 'hello world\n');
          assert.equal(await cli(['--raw', 'INCRBY', 'counter', '5']), '5\n');
          assert.equal(await cli([], 'SET a 1\nINCR a\nGET a\nECHO "two words"\n'), 'OK\n2\n2\ntwo words\n');
          assert.equal(await cli(['FOO']), "ERR unknown command 'FOO', with args beginning with: \n\n");
          const resp = Array.from(
            { length: 100 },
            (_, i) => `*3\r\n$3\r\nSET\r\n$${`k${i}`.length}\r\nk${i}\r\n$1\r\nv\r\n`,
          ).join('');
          const piped = await cli(['--pipe'], resp);
          assert.match(piped, /errors: 0, replies: 100/);
          assert.equal(await cli(['DBSIZE']), '103\n');
          assert.equal(
            await cli(['COMMAND', 'DOCS']),
            "ERR unknown subcommand 'DOCS'. Try COMMAND HELP.\n\n",
            'so that redis-cli uses its built-in help',
          );
          assert.match(await cli(['COMMAND', 'INFO', 'get']), /^get\n2\nreadonly\nfast\n1\n1\n1\n/);
          assert.equal(await cli(['SELECT', '0']), 'OK\n');
          assert.equal(await cli(['QUIT']), 'OK\n');
        });
      },
    );

    test(
      'redis-benchmark: a short SET/GET run completes with every request answered',
      { skip: benchmarkMissing },
      async () => {
        await withServer(backend, async (port) => {
          const out = await run('redis-benchmark', [
            '-h',
            '127.0.0.1',
            '-p',
            String(port),
            '-t',
            'set,get',
            '-n',
            '2000',
            '-c',
            '4',
            '-P',
            '4',
            '--csv',
          ]);
          assert.match(out, /"SET","\d+(\.\d+)?"/);
          assert.match(out, /"GET","\d+(\.\d+)?"/);
        });
      },
    );
  });
}
