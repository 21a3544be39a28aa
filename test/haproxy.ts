/**
 * Runs Debian's HAProxy in front of a test's server. HAProxy cannot bind port 0, so a small python3
 * launcher binds each frontend's socket on 127.0.0.1:0, reports the ports, and execs HAProxy with
 * the listening sockets inherited (`bind fd@N`): no fixed ports and no race for a free one.
 * `haproxySkip` is the reason to skip when HAProxy or python3 is missing (CI installs HAProxy).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const haproxySkip: string | false =
  spawnSync('haproxy', ['-v']).status !== 0
    ? 'haproxy is not installed (apt-get install haproxy)'
    : spawnSync('python3', ['--version']).status !== 0
      ? 'python3 is not installed'
      : false;

const kLauncher = `
import os, socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    s.listen(128)
    os.set_inheritable(s.fileno(), True)
    socks.append(s)
print(' '.join('%d:%d' % (s.fileno(), s.getsockname()[1]) for s in socks), flush=True)
cfg = sys.stdin.readline().strip()
os.execvp('haproxy', ['haproxy', '-f', cfg, '-db'])
`;

/** One HAProxy frontend: the `server` line options of its backend (e.g. 'send-proxy-v2'). */
export interface HaproxyFrontend {
  /** The target the frontend relays to. */
  readonly target: { host: string; port: number };
  /** Options after the server address, e.g. `send-proxy`, `send-proxy-v2 check check-send-proxy`. */
  readonly server: string;
}

export interface Haproxy {
  /** The port each frontend listens on (127.0.0.1), in the order given. */
  readonly ports: number[];
  /** What HAProxy printed so far (for failure messages). */
  output(): string;
  /** Stops HAProxy and removes its config. */
  stop(): Promise<void>;
}

/** Starts HAProxy in tcp mode with one frontend per entry, each relaying to its target. */
export async function startHaproxy(frontends: readonly HaproxyFrontend[]): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'gevent-haproxy-'));
  const child: ChildProcess = spawn('python3', ['-c', kLauncher, String(frontends.length)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`haproxy launcher exited (${code}): ${log}`)));
  });
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  const socks = first.split(' ').map((pair) => pair.split(':').map(Number) as [number, number]);
  const cfg = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 30s',
    '  timeout server 30s',
    ...frontends.flatMap((f, i) => [
      `frontend f${i}`,
      `  bind fd@${socks[i]![0]}`,
      `  default_backend b${i}`,
      `backend b${i}`,
      `  server s${i} ${f.target.host}:${f.target.port} ${f.server}`,
    ]),
    '',
  ].join('\n');
  const cfgPath = join(dir, 'haproxy.cfg');
  writeFileSync(cfgPath, cfg);
  child.stdin!.end(cfgPath + '\n');
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  return {
    ports: socks.map(([, port]) => port),
    output: () => log,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
