/**
 * The servers under test and the workloads they run. Every server is an echo server on one port;
 * `command` gives its argv for TCP or UDP, or null where it has no such variant. A server that
 * cannot run here (no Bun, no native backend) is skipped with a note rather than failing the run.
 * The proxies of the proxy workloads are in proxy.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kProxyWorkloads, type ProxyWorkload } from './proxy.js';

/** A workload of the echo servers. */
export type EchoWorkload = 'tcp-pingpong' | 'tcp-pipeline' | 'udp-pingpong' | 'tcp-held';

/** A workload: one of the echo servers', or one through a proxy (proxy.ts). */
export type Workload = EchoWorkload | ProxyWorkload;

/** Every workload, in the order they run. */
export const kWorkloads: readonly Workload[] = [
  'tcp-pingpong',
  'tcp-pipeline',
  'udp-pingpong',
  'tcp-held',
  ...kProxyWorkloads,
];

/** Whether `workload` runs over UDP. */
export function isUdp(workload: Workload): boolean {
  return workload === 'udp-pingpong';
}

/** What one trial gives a server's command beside its port: set for the proxy workloads. */
export interface TrialContext {
  /** Where the C echo upstream listens (127.0.0.1). */
  upstreamPort?: number;
  /** A folder of the trial's own for files the server reads (removed when the trial ends). */
  dir: string;
}

export interface ServerSpec {
  /** Stable name used by --only and in the tables. */
  name: string;
  /** What it is, for the docs. */
  label: (udp: boolean) => string;
  /** argv for the given port, or null when this server has no variant for the protocol. */
  command: (port: number, udp: boolean, ctx?: TrialContext) => string[] | null;
  /** Why this server cannot run on this machine, or null when it can. */
  unavailable: string | null;
  /** The reference that ratios are taken against. */
  reference: boolean;
}

/** The name of the reference server (the C echo servers). */
export const kReferenceName = 'c';

/** A server under a protocol benchmark (HTTP, Redis): one argv, on TCP only. */
export interface ProtocolServer {
  /** Stable name used by --only and in the tables. */
  name: string;
  /** What it is, for the docs. */
  label: string;
  /** argv to listen on the given port. */
  argv: (port: number) => string[];
  /** Why this server cannot run on this machine, or null when it can. */
  unavailable: string | null;
}

/**
 * The protocol example `examples/<example>` with one loop, on the native and on the portable
 * backend: `gevent-native` and `gevent-portable`, unavailable until dist/ is built.
 */
export function exampleServers(root: string, example: string): ProtocolServer[] {
  const main = join(root, 'dist', 'examples', example, 'main.js');
  const built = existsSync(main) ? null : 'dist/ is not built (npm run build)';
  const gevent = (backend: string) => (port: number) => [
    process.execPath,
    main,
    '--port',
    String(port),
    '--loops',
    '1',
    '--backend',
    backend,
  ];
  return [
    {
      name: 'gevent-native',
      label: `examples/${example}, native backend, 1 loop`,
      argv: gevent('native'),
      unavailable: built,
    },
    {
      name: 'gevent-portable',
      label: `examples/${example}, portable backend (node:net), 1 loop`,
      argv: gevent('portable'),
      unavailable: built,
    },
  ];
}

/** The echo servers under the echo workloads: the C reference, gevent on both backends, Node.js and Bun. */
export function serverCatalogue(root: string, binDir: string, bun: string | null): ServerSpec[] {
  const echoExample = join(root, 'dist', 'examples', 'echo', 'main.js');
  const gevent = (backend: string) => (port: number, udp: boolean) => [
    process.execPath,
    echoExample,
    '--port',
    String(port),
    '--backend',
    backend,
    ...(udp ? ['--udp'] : []),
  ];
  return [
    {
      name: kReferenceName,
      label: (udp) => (udp ? 'C recvmmsg/sendmmsg echo (reference)' : 'C epoll echo (reference)'),
      command: (port, udp) => [join(binDir, udp ? 'udp_echo_mmsg' : 'echo_epoll'), String(port)],
      unavailable: null,
      reference: true,
    },
    {
      name: 'gevent-native',
      label: () => 'gevent, native backend, 1 loop',
      command: gevent('native'),
      unavailable: null,
      reference: false,
    },
    {
      name: 'gevent-portable',
      label: () => 'gevent, portable backend, 1 loop',
      command: gevent('portable'),
      unavailable: null,
      reference: false,
    },
    {
      name: 'node',
      label: (udp) => (udp ? 'node:dgram echo' : 'node:net echo'),
      command: (port, udp) => [
        process.execPath,
        join(root, 'bench', 'servers', udp ? 'node-dgram-echo.mjs' : 'node-net-echo.mjs'),
        String(port),
      ],
      unavailable: null,
      reference: false,
    },
    {
      name: 'bun',
      label: (udp) => (udp ? 'Bun.udpSocket echo' : 'Bun.listen echo'),
      command: (port, udp) =>
        bun === null
          ? null
          : [bun, join(root, 'bench', 'servers', 'bun-echo.ts'), String(port), ...(udp ? ['--udp'] : [])],
      unavailable: bun === null ? 'Bun is not installed (npm install -D @oven/bun-linux-x64)' : null,
      reference: false,
    },
  ];
}
