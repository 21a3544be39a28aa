/**
 * Address strings (`scheme://address?options`) and the socket addresses the library reports.
 *
 * Rules, as in go-gevent: schemes tcp (v4+v6), tcp4, tcp6, udp, udp4, udp6 and unix; no scheme means
 * tcp; `tcp://` (empty) binds every interface on a free port; `unix://path` binds a socket file.
 * `tls`, `tls4` and `tls6` are tcp, tcp4 and tcp6 with TLS on every connection (ServeOptions.tls
 * for a listener, DialOptions for a dial); TLS over unix sockets or UDP has no scheme. The
 * options are `reuseport` and `proxy` (tcp and unix only: PROXY protocol headers), each truthy as
 * true/yes/t/y (any case) or a number 1-9..., falsy as false/no/f/n/0 or empty. Anything else is a
 * BadAddressError that names the input.
 */
import { isIP } from 'node:net';
import { BadAddressError } from './errors.js';

export type Network = 'tcp' | 'udp' | 'unix';

/** The longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const kMaxUnixPathBytes = 107;

/** A parsed, validated listen address. `index` is its position in the list given to serve(). */
export interface ListenSpec {
  readonly text: string;
  readonly index: number;
  readonly network: Network;
  /** 4 or 6 for tcp4/udp4 and tcp6/udp6; 0 for dual-stack tcp/udp and for unix. */
  readonly family: 0 | 4 | 6;
  /** The host as written (may be a name such as `localhost`), '' for every interface. */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly reusePort: boolean;
  /**
   * `?proxy=true` (tcp and unix stream listeners): every connection starts with a PROXY protocol
   * v1 or v2 header, which the backend reads and checks before onOpen.
   */
  readonly proxyProtocol: boolean;
  /** `tls://`, `tls4://`, `tls6://`: a tcp listener (network 'tcp') whose connections speak TLS (absent or false: plain). */
  readonly tls?: boolean;
}

/** A bound or peer socket address. `toString()` gives the `scheme://host:port` form. */
export class Addr {
  constructor(
    readonly network: Network,
    readonly host: string,
    readonly port: number,
    readonly path: string = '',
    /** A TLS listener's address (network 'tcp'): toString() says `tls://`. */
    readonly tls: boolean = false,
  ) {}

  /** 'IPv4', 'IPv6' or 'unix'. */
  get family(): 'IPv4' | 'IPv6' | 'unix' {
    if (this.network === 'unix') return 'unix';
    return isIP(this.host) === 6 ? 'IPv6' : 'IPv4';
  }

  toString(): string {
    if (this.network === 'unix') return `unix://${this.path}`;
    const host = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return `${this.tls ? 'tls' : this.network}://${host}:${this.port}`;
  }
}

const kSchemes: Record<string, { network: Network; family: 0 | 4 | 6; tls: boolean }> = {
  tcp: { network: 'tcp', family: 0, tls: false },
  tcp4: { network: 'tcp', family: 4, tls: false },
  tcp6: { network: 'tcp', family: 6, tls: false },
  udp: { network: 'udp', family: 0, tls: false },
  udp4: { network: 'udp', family: 4, tls: false },
  udp6: { network: 'udp', family: 6, tls: false },
  unix: { network: 'unix', family: 0, tls: false },
  tls: { network: 'tcp', family: 0, tls: true },
  tls4: { network: 'tcp', family: 4, tls: true },
  tls6: { network: 'tcp', family: 6, tls: true },
};

/** Parses one address string; throws BadAddressError naming it when it is malformed. */
export function parseAddress(text: string, index = 0): ListenSpec {
  if (typeof text !== 'string') throw new BadAddressError(String(text), 'an address must be a string');
  let rest = text;
  let scheme = 'tcp';
  const sep = rest.indexOf('://');
  if (sep >= 0) {
    scheme = rest.slice(0, sep).toLowerCase();
    rest = rest.slice(sep + 3);
  }
  const kind = kSchemes[scheme];
  if (!kind) {
    throw new BadAddressError(
      text,
      `unknown scheme ${JSON.stringify(scheme)} (expected one of ${Object.keys(kSchemes).join(', ')})`,
    );
  }
  let reusePort = false;
  let proxyProtocol = false;
  const q = rest.indexOf('?');
  if (q >= 0) {
    ({ reusePort, proxyProtocol } = parseOptions(text, rest.slice(q + 1)));
    rest = rest.slice(0, q);
  }
  if (proxyProtocol && kind.network === 'udp')
    throw new BadAddressError(text, 'proxy is not supported on udp (PROXY protocol headers are for stream listeners)');
  if (proxyProtocol && kind.tls)
    throw new BadAddressError(text, 'proxy is not supported on tls listeners yet (use tcp:// with ?proxy=true)');
  if (kind.network === 'unix') {
    if (rest === '') throw new BadAddressError(text, 'a unix address needs a path');
    if (rest.includes('\0')) throw new BadAddressError(text, 'a unix path cannot contain NUL');
    const bytes = Buffer.byteLength(rest);
    if (bytes > kMaxUnixPathBytes) {
      throw new BadAddressError(
        text,
        `unix path is ${bytes} bytes, longer than the ${kMaxUnixPathBytes} the system allows`,
      );
    }
    return {
      text,
      index,
      network: 'unix',
      family: 0,
      host: '',
      port: 0,
      path: rest,
      reusePort,
      proxyProtocol,
      tls: false,
    };
  }
  if (rest === '') return { text, index, ...kind, host: '', port: 0, path: '', reusePort, proxyProtocol };
  const colon = rest.lastIndexOf(':');
  if (colon < 0)
    throw new BadAddressError(text, 'missing port (write host:port, :port, or an empty address for any port)');
  let host = rest.slice(0, colon);
  const portText = rest.slice(colon + 1);
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) throw new BadAddressError(text, 'unclosed [ in IPv6 host');
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new BadAddressError(text, `${JSON.stringify(host)} is not an IPv6 address`);
  } else if (host.includes(':')) {
    throw new BadAddressError(text, 'an IPv6 host must be written in brackets, as [::1]:port');
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new BadAddressError(text, `port ${JSON.stringify(portText)} is not a number from 0 to 65535`);
  }
  if (kind.family === 4 && isIP(host) === 6)
    throw new BadAddressError(text, `${scheme} cannot bind the IPv6 host ${host}`);
  if (kind.family === 6 && isIP(host) === 4)
    throw new BadAddressError(text, `${scheme} cannot bind the IPv4 host ${host}`);
  return { text, index, ...kind, host, port: Number(portText), path: '', reusePort, proxyProtocol };
}

const kOptions = ['reuseport', 'proxy'] as const;

function parseOptions(text: string, query: string): { reusePort: boolean; proxyProtocol: boolean } {
  const out = { reusePort: false, proxyProtocol: false };
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = (eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    let value: string;
    try {
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw new BadAddressError(text, `option ${JSON.stringify(pair)} is not valid percent-encoding`);
    }
    if (!(kOptions as readonly string[]).includes(key))
      throw new BadAddressError(text, `unknown option ${JSON.stringify(key)} (the options are ${kOptions.join(', ')})`);
    let on: boolean;
    if (/^(true|yes|t|y|[1-9]\d*)$/i.test(value)) on = true;
    else if (/^(false|no|f|n|0|)$/i.test(value)) on = false;
    else
      throw new BadAddressError(text, `${key}=${JSON.stringify(value)} is neither true/yes/t/y/1-9 nor false/no/f/n/0`);
    if (key === 'reuseport') out.reusePort = on;
    else out.proxyProtocol = on;
  }
  return out;
}

/** The 4 bytes at `at` as dotted IPv4 text. */
export function formatIPv4Bytes(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Whether the 16 bytes at `at` are an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
export function isIPv4MappedBytes(b: Uint8Array, at: number): boolean {
  if (b[at + 10] !== 0xff || b[at + 11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return false;
  return true;
}

/** The 16 bytes at `at` as IPv6 text in hex groups only, per RFC 5952 (the longest run of two or more zero groups as `::`). */
export function formatIPv6Bytes(b: Uint8Array, at: number): string {
  const group = (i: number): number => (b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!;
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && group(j) === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      s += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    s += group(i).toString(16);
    if (i < 7) s += ':';
  }
  return s;
}
