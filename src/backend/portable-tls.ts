/**
 * TLS for the portable backend, on node:tls: the server of a `tls://` listener, the options of a
 * `tls://` dial, and the TlsInfo of a connection whose handshake is done. The portable backend
 * treats a TLSSocket as any other socket once it is secure; everything TLS-specific is here.
 *
 * Policy on every endpoint: TLS 1.2 at least, renegotiation refused (SSL_OP_NO_RENEGOTIATION: a
 * TLS 1.2 peer asking for one gets a no_renegotiation alert; TLS 1.3 has none).
 */
import { constants as cryptoConstants, type X509Certificate } from 'node:crypto';
import {
  connect as tlsConnect,
  createSecureContext,
  createServer as createTlsServer,
  type ConnectionOptions,
  type SecureContext,
  type SecureContextOptions,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import type { TcpNetConnectOpts } from 'node:net';
import { TlsConfigError } from '../errors.js';
import type { Pem, ServerTlsConfig } from '../tls-options.js';
import type { DialSpec, TlsInfo } from './backend.js';

const kSecureOptions = cryptoConstants.SSL_OP_NO_RENEGOTIATION ?? 0;

/**
 * A node:tls server for the TLS listeners of one backend: its default certificate, its SNI
 * certificates and its client-certificate policy from `cfg`. Throws TlsConfigError naming the
 * option when a PEM does not parse, a passphrase is wrong or a key does not match its certificate.
 */
export function createPortableTlsServer(
  cfg: ServerTlsConfig,
  net: { readonly allowHalfOpen: boolean; readonly noDelay: boolean },
): TlsServer {
  const common = commonContextOptions(cfg);
  const main = checkedContext('options.tls', cfg.key, cfg.cert, cfg.passphrase, common);
  const byName = new Map<string, SecureContext>();
  for (const e of cfg.sni)
    byName.set(
      e.name,
      checkedContext(`options.tls.sni[${JSON.stringify(e.name)}]`, e.key, e.cert, e.passphrase, common).context,
    );
  return createTlsServer({
    ...main.options,
    ...net,
    requestCert: cfg.requestCert,
    rejectUnauthorized: cfg.rejectUnauthorized,
    handshakeTimeout: cfg.handshakeTimeoutMs,
    ...(cfg.alpn !== null ? { ALPNProtocols: cfg.alpn } : {}),
    ...(byName.size > 0
      ? {
          SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
            cb(null, pick(byName, name)),
        }
      : {}),
  });
}

/** The context options every certificate of a server shares (SNI ones too: the same tickets resume them). */
function commonContextOptions(cfg: ServerTlsConfig): SecureContextOptions {
  return {
    minVersion: cfg.minVersion,
    secureOptions: kSecureOptions,
    ...(cfg.sessionTimeoutS !== null ? { sessionTimeout: cfg.sessionTimeoutS } : {}),
    ...(cfg.ticketKeys !== null ? { ticketKeys: Buffer.from(cfg.ticketKeys) } : {}),
    ...(cfg.ca !== null ? { ca: cfg.ca.map(pemArg) } : {}),
    ...(cfg.ciphers !== null ? { ciphers: cfg.ciphers } : {}),
  };
}

/**
 * Builds the context of one key and certificate, first each on its own so that an error names the
 * right one, then together (a key that does not match its certificate).
 */
function checkedContext(
  where: string,
  key: Pem,
  cert: Pem,
  passphrase: string | null,
  common: SecureContextOptions,
): { options: SecureContextOptions; context: SecureContext } {
  const k = { key: pemArg(key), ...(passphrase !== null ? { passphrase } : {}) };
  const c = { cert: pemArg(cert) };
  tryContext(`${where}.cert`, 'is not a PEM certificate OpenSSL can read', c);
  tryContext(`${where}.key`, 'is not a PEM private key OpenSSL can read (or its passphrase is wrong)', k);
  if (common.ciphers !== undefined) tryContext('options.tls.ciphers', 'names no cipher OpenSSL knows', common);
  if (common.ca !== undefined) tryContext('options.tls.ca', 'is not a PEM certificate list OpenSSL can read', common);
  const options = { ...common, ...k, ...c };
  const context = tryContext(`${where}.key`, `does not match ${where}.cert`, options);
  return { options, context };
}

function tryContext(field: string, what: string, o: SecureContextOptions): SecureContext {
  try {
    return createSecureContext(o);
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    throw new TlsConfigError(field, typeof e.code === 'string' ? e.code : '', `${what}: ${String(e.message)}`, {
      cause: err,
    });
  }
}

/** The SNI context for `name`: an exact entry, else `*.` and the name minus its first label, else the default. */
function pick(byName: ReadonlyMap<string, SecureContext>, name: string): SecureContext | undefined {
  const n = name.toLowerCase();
  const exact = byName.get(n);
  if (exact !== undefined) return exact;
  const dot = n.indexOf('.');
  return dot > 0 ? byName.get(`*${n.slice(dot)}`) : undefined;
}

function pemArg(p: Pem): string | Buffer {
  return typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/** Starts a TLS dial over a new TCP connection for `spec` (whose `tls` is set). */
export function connectTls(spec: DialSpec, noDelay: boolean): TLSSocket {
  const t = spec.tls!;
  const o: ConnectionOptions & Omit<TcpNetConnectOpts, keyof ConnectionOptions> = {
    host: spec.host,
    port: spec.port,
    family: spec.family,
    noDelay,
    allowHalfOpen: true,
    rejectUnauthorized: t.rejectUnauthorized,
    minVersion: t.minVersion,
    secureOptions: kSecureOptions,
  };
  if (spec.localHost) o.localAddress = spec.localHost;
  if (spec.localPort) o.localPort = spec.localPort;
  if (t.servername !== '') o.servername = t.servername;
  if (t.ca !== null) o.ca = t.ca.map(pemArg);
  if (t.cert !== null) o.cert = pemArg(t.cert);
  if (t.key !== null) o.key = pemArg(t.key);
  if (t.passphrase !== null) o.passphrase = t.passphrase;
  if (t.alpn !== null) o.ALPNProtocols = t.alpn;
  if (t.session !== null) o.session = pemArg(t.session) as Buffer;
  if (t.ciphers !== null) o.ciphers = t.ciphers;
  return tlsConnect(o);
}

/**
 * The TlsInfo of `sock`, whose handshake is done. The peer certificate is read on first use and
 * kept; `session` follows the sessions the server sends (a dial's), as they come.
 */
export function tlsInfo(sock: TLSSocket, dialServername: string | null): TlsInfo {
  let session: Uint8Array | null = null;
  if (dialServername !== null) {
    session = sock.getSession() ?? null;
    sock.on('session', (s: Buffer) => (session = s));
  }
  const cipher = sock.getCipher();
  const servername = dialServername ?? (sock as TLSSocket & { servername?: string | false }).servername;
  let cert: X509Certificate | null | undefined;
  return Object.freeze({
    protocol: sock.getProtocol() ?? '',
    cipher: cipher?.name ?? '',
    alpnProtocol: typeof sock.alpnProtocol === 'string' ? sock.alpnProtocol : null,
    servername: typeof servername === 'string' && servername !== '' ? servername : null,
    resumed: sock.isSessionReused(),
    authorized: sock.authorized,
    authorizationError: sock.authorizationError ? String(sock.authorizationError) : null,
    get peerCertificate(): X509Certificate | null {
      if (cert === undefined) cert = sock.destroyed ? undefined : (sock.getPeerX509Certificate() ?? null);
      return cert ?? null;
    },
    get session(): Uint8Array | null {
      return session;
    },
  });
}

/** OpenSSL's or Node's code for a TLS failure (ERR_SSL_..., ERR_TLS_..., ECONNRESET), or 'ERR_TLS'. */
export function tlsReason(err: unknown): string {
  const e = err as { code?: unknown } | null;
  return e !== null && typeof e === 'object' && typeof e.code === 'string' && e.code !== '' ? e.code : 'ERR_TLS';
}
