/**
 * TLS for the native backend (native/tls.c, over the OpenSSL inside the node binary): which
 * ServeOptions.tls it runs, the key and certificate checked in TS so that an error names the
 * option, the TlsInfo of a connection whose handshake is done, and the reason of one that failed.
 *
 * The native layer runs a server with a key and a certificate (its chain after it), TLS 1.2 at
 * least, no renegotiation, session tickets with keys of its own, `alpn` (the server's preference
 * first, a client with no protocol in common refused, as node:tls does) and `handshakeTimeout`.
 * Every other option (`sni`, `ca` with `requestCert`, `passphrase`, `minVersion` 'TLSv1.3',
 * `ciphers`, `ticketKeys`, `sessionTimeout`) runs on the portable backend (node:tls).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { TlsConfigError } from '../errors.js';
import type { Pem, ServerTlsConfig } from '../tls-options.js';
import type { TlsInfo } from './backend.js';

const kETIMEDOUT = osConstants.errno.ETIMEDOUT;

/** The first option of `cfg` the native layer does not run (`options.tls.sni`, ...), or null. */
export function nativeTlsUnsupported(cfg: ServerTlsConfig): string | null {
  const o = 'options.tls.';
  if (cfg.sni.length > 0) return `${o}sni`;
  if (cfg.requestCert) return `${o}requestCert`;
  if (cfg.ca !== null) return `${o}ca`;
  if (cfg.passphrase !== null) return `${o}passphrase`;
  if (cfg.minVersion !== 'TLSv1.2') return `${o}minVersion`;
  if (cfg.ciphers !== null) return `${o}ciphers`;
  if (cfg.ticketKeys !== null) return `${o}ticketKeys`;
  if (cfg.sessionTimeoutS !== null) return `${o}sessionTimeout`;
  return null;
}

/**
 * The key and certificate of `cfg` as bytes for the addon, after checking each parses and that they
 * match; throws TlsConfigError naming the option otherwise (as the portable backend does).
 */
export function checkedNativePem(cfg: ServerTlsConfig): { key: Uint8Array; cert: Uint8Array } {
  const key = pemBytes(cfg.key);
  const cert = pemBytes(cfg.cert);
  let x509: X509Certificate;
  let pkey: KeyObject;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw configError('options.tls.cert', 'is not a PEM certificate OpenSSL can read', err);
  }
  try {
    pkey = createPrivateKey({ key: Buffer.from(key), format: 'pem' });
  } catch (err) {
    throw configError('options.tls.key', 'is not a PEM private key OpenSSL can read (or its passphrase is wrong)', err);
  }
  if (!x509.checkPrivateKey(pkey))
    throw new TlsConfigError('options.tls.key', 'ERR_OSSL_X509_KEY_VALUES_MISMATCH', 'does not match options.tls.cert');
  return { key, cert };
}

function configError(field: string, what: string, err: unknown): TlsConfigError {
  const e = err as { code?: unknown; message?: unknown };
  return new TlsConfigError(field, typeof e.code === 'string' ? e.code : '', `${what}: ${String(e.message)}`, {
    cause: err,
  });
}

function pemBytes(p: Pem): Uint8Array {
  return typeof p === 'string' ? Buffer.from(p) : p;
}

/** `options.tls.alpn` (names checked by tls-options.ts) in ALPN's wire format; empty for none. */
export function alpnWire(alpn: readonly string[] | null): Uint8Array {
  if (alpn === null) return new Uint8Array(0);
  return Buffer.concat(
    alpn.map((p) => {
      const name = Buffer.from(p);
      return Buffer.concat([Uint8Array.of(name.length), name]);
    }),
  );
}

/** The TlsInfo of a native connection from connTlsInfo's answer. */
export function nativeTlsInfo(
  protocol: string,
  cipher: string,
  servername: string,
  resumed: boolean,
  alpnProtocol: string,
): TlsInfo {
  return Object.freeze({
    protocol,
    cipher,
    alpnProtocol: alpnProtocol !== '' ? alpnProtocol : null,
    servername: servername !== '' ? servername : null,
    resumed,
    authorized: false,
    authorizationError: null,
    peerCertificate: null,
    session: null,
  });
}

/**
 * The reason and message of a TlsRefused record: Node's code for OpenSSL's error (`wrong version
 * number` becomes ERR_SSL_WRONG_VERSION_NUMBER, as node:tls names it), else the errno's name
 * (ECONNABORTED, ECONNRESET: the peer left mid-handshake), or ERR_TLS_HANDSHAKE_TIMEOUT as node:tls.
 */
export function nativeTlsRefusal(errno: number, sslText: string | null): { reason: string; detail: string } {
  if (sslText !== null && sslText !== '')
    return {
      reason: `ERR_SSL_${sslText.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`,
      detail: `the handshake failed: ${sslText}`,
    };
  if (errno === kETIMEDOUT)
    return { reason: 'ERR_TLS_HANDSHAKE_TIMEOUT', detail: 'no handshake within options.tls.handshakeTimeout' };
  let name: string;
  try {
    name = getSystemErrorName(-Math.abs(errno));
  } catch {
    name = `E${Math.abs(errno)}`;
  }
  const left = name === 'ECONNABORTED' || name === 'ECONNRESET';
  return { reason: name, detail: left ? 'the peer left mid-handshake' : `the handshake failed: ${name}` };
}
