/**
 * The HTTP example's command line (examples/http/main.ts): the flags for maxConnections, the body
 * budget and the keep-alive timeout reach a running server, and bad values are refused with a
 * message naming them before anything starts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectTo, readEnd, sleep } from './helpers.js';
import { parseResponses, rawRequests } from './http-harness.js';

const kMain = fileURLToPath(new URL('../examples/http/main.js', import.meta.url));
const kGet = 'GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n';

/** Runs the example with `args` until it exits; its exit code and stderr. */
async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [kMain, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

describe('http CLI (main.ts)', () => {
  test('--max-connections, --body-budget and --keep-alive-timeout reach the server', async () => {
    const args = [
      '--port',
      '0',
      '--backend',
      'portable',
      '--max-connections',
      '1',
      '--body-budget',
      '10',
      '--max-body',
      '100',
      '--keep-alive-timeout',
      '300',
    ];
    const child = spawn(process.execPath, [kMain, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout });
      const [banner] = (await once(lines, 'line')) as [string];
      lines.close();
      const port = Number(/port (\d+)/.exec(banner)?.[1]);
      assert.ok(port > 0, banner);

      const a = await connectTo({ network: 'tcp', port, path: '' });
      assert.equal((await rawRequests(a, kGet, 1))[0]!.status, 200);
      const dropped = await connectTo({ network: 'tcp', port, path: '' });
      const { data } = await readEnd(dropped);
      dropped.destroy();
      assert.equal(data.length, 0, 'a second connection past --max-connections 1 is closed unanswered');

      const aEnded = readEnd(a);
      a.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n');
      const refused = await aEnded;
      a.destroy();
      assert.deepEqual(
        parseResponses(refused.data).responses.map((r) => r.status),
        [503],
        'a 20-byte body is over --body-budget 10',
      );

      let idle = null;
      for (let i = 0; i < 100 && idle === null; i++) {
        const s = await connectTo({ network: 'tcp', port, path: '' });
        const ended = readEnd(s);
        s.write(kGet);
        const { how, data: got } = await ended;
        s.destroy();
        const statuses = parseResponses(got).responses.map((r) => r.status);
        if (statuses.length > 0) idle = { how, statuses };
        else await sleep(20);
      }
      assert.deepEqual(
        idle,
        { how: 'eof', statuses: [200] },
        'once a has gone, a new client is served, then closed when idle past --keep-alive-timeout',
      );
    } finally {
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
    }
  });

  test('--proxy-protocol: GET /ip answers the address in the PROXY header', async () => {
    const args = ['--port', '0', '--backend', 'portable', '--proxy-protocol'];
    const child = spawn(process.execPath, [kMain, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout });
      const [banner] = (await once(lines, 'line')) as [string];
      lines.close();
      const port = Number(/port (\d+)/.exec(banner)?.[1]);
      assert.ok(port > 0, banner);
      const s = await connectTo({ network: 'tcp', port, path: '' });
      const ended = readEnd(s);
      s.write('PROXY TCP4 203.0.113.9 127.0.0.1 4242 80\r\nGET /ip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
      const { data } = await ended;
      s.destroy();
      const [res] = parseResponses(data).responses;
      assert.equal(res?.status, 200);
      assert.equal(res?.body, '203.0.113.9:4242\n');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('bad values are refused with exit code 2, naming the flag and the value', async () => {
    const cases: [string[], string][] = [
      [['--headers-timeout', '-5'], 'http: --headers-timeout must be an integer from 0 to 2147483647, got -5'],
      [['--request-timeout', '1.5'], 'http: --request-timeout must be an integer from 0 to 2147483647, got 1.5'],
      [
        ['--keep-alive-timeout', '4294967296'],
        'http: --keep-alive-timeout must be an integer from 0 to 2147483647, got 4294967296',
      ],
      [['--max-connections', '0'], 'http: --max-connections must be an integer from 1 to 9007199254740991, got 0'],
      [['--body-budget', 'lots'], 'http: --body-budget must be an integer from 0 to 9007199254740991, got lots'],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runToExit(['--port', '0', ...args]);
      assert.equal(code, 2, args.join(' '));
      assert.equal(stderr.trim(), message);
    }
  });
});
