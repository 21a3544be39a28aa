/**
 * A throwaway TLS certificate for a benchmark run: an ECDSA P-256 key and a self-signed
 * certificate for `localhost` and 127.0.0.1, valid for two days, made by the `openssl` binary in a
 * temporary folder of its own. The caller removes the folder (remove()) when the run ends.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The openssl command that makes the certificate, without its output paths (for the docs). */
export const kCertCommand = [
  'openssl',
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-subj',
  '/CN=localhost',
  '-addext',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  '-days',
  '2',
];

/** A certificate and its key as PEM files, and the certificate's text (a client's CA). */
export interface TestCert {
  certFile: string;
  keyFile: string;
  certPem: string;
  remove(): void;
}

/** Makes a fresh certificate; throws with openssl's own message when it cannot (`tag` starts it). */
export function makeCert(tag: string): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'gevent-bench-tls-'));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const [cmd, ...args] = kCertCommand;
  const r = spawnSync(cmd!, [...args, '-keyout', keyFile, '-out', certFile], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    remove();
    const why = r.error?.message ?? r.stderr.trim().split('\n').slice(-2).join(' / ');
    throw new Error(`${tag}: openssl could not make a certificate: ${why}`);
  }
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), remove };
}
