/**
 * TLS settings: what a server (ServeOptions.tls) and a dial (DialOptions) may ask for, checked in
 * TS with errors that name the bad field, and the normalized, structured-clonable form a backend
 * receives. The names are node:tls's where they mean the same. Nothing here opens a socket or
 * builds an OpenSSL context: the backend does (and reports a key that does not match its
 * certificate as a TlsConfigError at listen()).
 */
import { InvalidArgumentError } from './errors.js';

/** A PEM-encoded key, certificate or chain: a string or the bytes of one. */
export type Pem = string | Uint8Array;

/** The protocol versions a TLS endpoint may allow: TLS 1.2 is the minimum. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** One certificate a server presents for a name it is asked for by SNI. */
export interface SniCertificate {
  /** PEM private key. */
  key: Pem;
  /** PEM certificate, with its chain after it. */
  cert: Pem;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
}

/** ServeOptions.tls: the server side of every `tls://`, `tls4://` and `tls6://` listener. */
export interface TlsOptions {
  /** PEM private key of the default certificate. */
  key: Pem;
  /** PEM certificate (its chain after it) presented when no `sni` name matches. */
  cert: Pem;
  /** PEM CA certificates that client certificates must chain to (with `requestCert`); default the system's. */
  ca?: Pem | Pem[];
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  /** ALPN protocols the server accepts, in its order of preference (such as `['h2', 'http/1.1']`). */
  alpn?: string[];
  /** Certificates by server name (SNI): an exact name, or `*.example.com` for one label under it. */
  sni?: Record<string, SniCertificate>;
  /** Ask clients for a certificate (default false). */
  requestCert?: boolean;
  /** With `requestCert`: refuse a client without a certificate that `ca` verifies (default true). */
  rejectUnauthorized?: boolean;
  /** The oldest protocol accepted: 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: TlsVersion;
  /** OpenSSL cipher list for TLS 1.2 (and TLS 1.3 suites by name); default Node's. */
  ciphers?: string;
  /** 48 bytes of session ticket keys (shared by servers that resume each other's sessions); default random. */
  ticketKeys?: Uint8Array;
  /** How long a session (ticket or id) may be resumed, in seconds (default 300). */
  sessionTimeout?: number;
  /** How long a new connection has to complete its handshake, in ms (default 10000); then TlsHandshakeError. */
  handshakeTimeout?: number;
}

/** The TLS members of DialOptions, for a `tls://` target. */
export interface DialTlsOptions {
  /** The name sent by SNI and checked against the certificate (default: the target's host when it is a name). */
  servername?: string;
  /** PEM CA certificates the server's certificate must chain to (default: the system's, tls.rootCertificates). */
  ca?: Pem | Pem[];
  /** PEM client certificate, for servers that ask for one. */
  cert?: Pem;
  /** PEM private key of `cert`. */
  key?: Pem;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  /** Refuse a server whose certificate does not verify or does not name `servername` (default true). */
  rejectUnauthorized?: boolean;
  /** ALPN protocols to offer, in order of preference. */
  alpn?: string[];
  /** A session to resume: `c.tls.session` of an earlier connection to the same server. */
  session?: Uint8Array;
  /** The oldest protocol accepted: 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: TlsVersion;
  /** OpenSSL cipher list; default Node's. */
  ciphers?: string;
}

/** TlsOptions, checked: what a backend is given (structured-clonable: strings and byte arrays). */
export interface ServerTlsConfig {
  readonly key: Pem;
  readonly cert: Pem;
  readonly ca: Pem[] | null;
  readonly passphrase: string | null;
  readonly alpn: string[] | null;
  readonly sni: readonly {
    readonly name: string;
    readonly key: Pem;
    readonly cert: Pem;
    readonly passphrase: string | null;
  }[];
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
  readonly minVersion: TlsVersion;
  readonly ciphers: string | null;
  readonly ticketKeys: Uint8Array | null;
  readonly sessionTimeoutS: number | null;
  readonly handshakeTimeoutMs: number;
}

/** DialTlsOptions, checked; `servername` is '' when none is sent. */
export interface DialTlsConfig {
  readonly servername: string;
  readonly ca: Pem[] | null;
  readonly cert: Pem | null;
  readonly key: Pem | null;
  readonly passphrase: string | null;
  readonly rejectUnauthorized: boolean;
  readonly alpn: string[] | null;
  readonly session: Uint8Array | null;
  readonly minVersion: TlsVersion;
  readonly ciphers: string | null;
}

/** The members DialOptions has for TLS. */
export const kDialTlsKeys: readonly string[] = [
  'servername',
  'ca',
  'cert',
  'key',
  'passphrase',
  'rejectUnauthorized',
  'alpn',
  'session',
  'minVersion',
  'ciphers',
];

const kServerTlsKeys: ReadonlySet<string> = new Set([
  'key',
  'cert',
  'ca',
  'passphrase',
  'alpn',
  'sni',
  'requestCert',
  'rejectUnauthorized',
  'minVersion',
  'ciphers',
  'ticketKeys',
  'sessionTimeout',
  'handshakeTimeout',
]);

/** The default handshake deadline of a TLS listener. */
const kHandshakeTimeoutMs = 10_000;

/** The longest delay a timer takes (setTimeout's limit). */
const kMaxTimerMs = 2 ** 31 - 1;

/** Checks ServeOptions.tls; throws InvalidArgumentError naming the bad field. */
export function checkServerTls(value: unknown): ServerTlsConfig {
  const where = 'options.tls';
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError(where, value, 'an object such as { key, cert }');
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!kServerTlsKeys.has(k))
      throw new InvalidArgumentError(
        `${where}.${k}`,
        o[k],
        `a known option (${[...kServerTlsKeys].join(', ')}); ${JSON.stringify(k)} is none`,
      );
  }
  const sni: { name: string; key: Pem; cert: Pem; passphrase: string | null }[] = [];
  if (o.sni !== undefined) {
    if (o.sni === null || typeof o.sni !== 'object' || Array.isArray(o.sni))
      throw new InvalidArgumentError(`${where}.sni`, o.sni, 'an object of { key, cert } by server name');
    for (const [name, entry] of Object.entries(o.sni as Record<string, unknown>)) {
      const at = `${where}.sni[${JSON.stringify(name)}]`;
      if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/i.test(name))
        throw new InvalidArgumentError(`${where}.sni name`, name, 'a host name, or *. and a host name');
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
        throw new InvalidArgumentError(at, entry, 'an object such as { key, cert }');
      const e = entry as Record<string, unknown>;
      for (const k of Object.keys(e)) {
        if (k !== 'key' && k !== 'cert' && k !== 'passphrase')
          throw new InvalidArgumentError(
            `${at}.${k}`,
            e[k],
            `one of key, cert, passphrase; ${JSON.stringify(k)} is none`,
          );
      }
      sni.push({
        name: name.toLowerCase(),
        key: pem(`${at}.key`, e.key),
        cert: pem(`${at}.cert`, e.cert),
        passphrase: optString(`${at}.passphrase`, e.passphrase),
      });
    }
  }
  let handshakeTimeoutMs = kHandshakeTimeoutMs;
  if (o.handshakeTimeout !== undefined) {
    const t = o.handshakeTimeout;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > kMaxTimerMs)
      throw new InvalidArgumentError(
        `${where}.handshakeTimeout`,
        t,
        `an integer number of ms from 1 to ${kMaxTimerMs}`,
      );
    handshakeTimeoutMs = t;
  }
  let sessionTimeoutS: number | null = null;
  if (o.sessionTimeout !== undefined) {
    const t = o.sessionTimeout;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 2 ** 31 - 1)
      throw new InvalidArgumentError(`${where}.sessionTimeout`, t, 'an integer number of seconds >= 1');
    sessionTimeoutS = t;
  }
  let ticketKeys: Uint8Array | null = null;
  if (o.ticketKeys !== undefined) {
    if (!(o.ticketKeys instanceof Uint8Array) || o.ticketKeys.length !== 48)
      throw new InvalidArgumentError(`${where}.ticketKeys`, o.ticketKeys, 'a Buffer or Uint8Array of 48 bytes');
    ticketKeys = o.ticketKeys;
  }
  return {
    key: pem(`${where}.key`, o.key),
    cert: pem(`${where}.cert`, o.cert),
    ca: pemList(`${where}.ca`, o.ca),
    passphrase: optString(`${where}.passphrase`, o.passphrase),
    alpn: alpnList(`${where}.alpn`, o.alpn),
    sni,
    requestCert: optBool(`${where}.requestCert`, o.requestCert) ?? false,
    rejectUnauthorized: optBool(`${where}.rejectUnauthorized`, o.rejectUnauthorized) ?? true,
    minVersion: version(`${where}.minVersion`, o.minVersion),
    ciphers: optString(`${where}.ciphers`, o.ciphers),
    ticketKeys,
    sessionTimeoutS,
    handshakeTimeoutMs,
  };
}

/**
 * Checks the TLS members of DialOptions `o` for a dial to `host`; throws InvalidArgumentError
 * naming the bad option. SNI defaults to `host` when it is a name (never an IP address).
 */
export function checkDialTls(o: Record<string, unknown>, host: string, hostIsIp: boolean): DialTlsConfig {
  const at = (k: string): string => `dial option ${k}`;
  const servername = optString(at('servername'), o.servername) ?? (hostIsIp ? '' : host);
  const cert = o.cert === undefined ? null : pem(at('cert'), o.cert);
  const key = o.key === undefined ? null : pem(at('key'), o.key);
  if ((cert === null) !== (key === null))
    throw new InvalidArgumentError(at(cert === null ? 'cert' : 'key'), undefined, 'given with its pair (cert and key)');
  let session: Uint8Array | null = null;
  if (o.session !== undefined) {
    if (!(o.session instanceof Uint8Array) || o.session.length === 0)
      throw new InvalidArgumentError(at('session'), o.session, 'the bytes of a session (c.tls.session)');
    session = o.session;
  }
  return {
    servername,
    ca: pemList(at('ca'), o.ca),
    cert,
    key,
    passphrase: optString(at('passphrase'), o.passphrase),
    rejectUnauthorized: optBool(at('rejectUnauthorized'), o.rejectUnauthorized) ?? true,
    alpn: alpnList(at('alpn'), o.alpn),
    session,
    minVersion: version(at('minVersion'), o.minVersion),
    ciphers: optString(at('ciphers'), o.ciphers),
  };
}

function pem(what: string, v: unknown): Pem {
  if (typeof v === 'string' ? v.length === 0 : !(v instanceof Uint8Array) || v.length === 0)
    throw new InvalidArgumentError(what, v, 'a PEM string or Buffer (not empty)');
  return v as Pem;
}

function pemList(what: string, v: unknown): Pem[] | null {
  if (v === undefined) return null;
  if (Array.isArray(v)) {
    if (v.length === 0) throw new InvalidArgumentError(what, v, 'a PEM string or Buffer, or a non-empty array of them');
    return v.map((x, i) => pem(`${what}[${i}]`, x));
  }
  return [pem(what, v)];
}

function optString(what: string, v: unknown): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(what, v, 'a non-empty string');
  return v;
}

function optBool(what: string, v: unknown): boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgumentError(what, v, 'a boolean');
  return v;
}

function version(what: string, v: unknown): TlsVersion {
  if (v === undefined) return 'TLSv1.2';
  if (v !== 'TLSv1.2' && v !== 'TLSv1.3')
    throw new InvalidArgumentError(what, v, "'TLSv1.2' or 'TLSv1.3' (TLS 1.2 is the minimum)");
  return v;
}

function alpnList(what: string, v: unknown): string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length === 0)
    throw new InvalidArgumentError(what, v, "a non-empty array of protocol names such as ['http/1.1']");
  v.forEach((p: unknown, i) => {
    if (typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255)
      throw new InvalidArgumentError(`${what}[${i}]`, p, 'a protocol name of 1 to 255 bytes');
  });
  return [...(v as string[])];
}
