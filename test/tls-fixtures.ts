/**
 * Certificates for the TLS tests, made fresh with the `openssl` binary in a temp dir: an ECDSA
 * P-256 CA; a server certificate for DNS:localhost and IP:127.0.0.1; a second server certificate
 * for `other.test` (SNI); a client certificate; and a key that matches none of them. The PEMs are
 * read into memory and the dir is removed at once: nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether the `openssl` binary runs here; tests that need it skip with this message otherwise. */
export const opensslMissing: string | false =
  spawnSync('openssl', ['version']).status === 0 ? false : 'the openssl binary is not installed';

/** Whether `curl` runs here. */
export const curlMissing: string | false =
  spawnSync('curl', ['--version']).status === 0 ? false : 'the curl binary is not installed';

/** The PEMs the TLS tests use. */
export interface TlsFixtures {
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly otherKey: string;
  readonly otherCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  /** A key that matches no certificate here. */
  readonly strayKey: string;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

function key(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
}

/** Issues `name`.crt for `name`.key, signed by the CA, with subject CN `cn` and the given extensions. */
function issue(dir: string, name: string, cn: string, ext: string): void {
  key(dir, name);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

let cached: TlsFixtures | null = null;

/** Makes (once per process) the CA, server, SNI and client certificates. */
export function tlsFixtures(): TlsFixtures {
  if (cached !== null) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'gevent-tls-'));
  try {
    key(dir, 'ca');
    openssl(dir, [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=gevent test CA',
      '-days',
      '2',
      '-sha256',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.crt',
    ]);
    issue(dir, 'server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    issue(dir, 'other', 'other.test', 'subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\n');
    issue(dir, 'client', 'gevent client', 'extendedKeyUsage=clientAuth\n');
    key(dir, 'stray');
    const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
    cached = {
      caCert: read('ca.crt'),
      serverKey: read('server.key'),
      serverCert: read('server.crt'),
      otherKey: read('other.key'),
      otherCert: read('other.crt'),
      clientKey: read('client.key'),
      clientCert: read('client.crt'),
      strayKey: read('stray.key'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes some of the fixtures to files in a new temp dir (for openssl s_client and curl, which
 * read files), returns their paths and a function that removes the dir.
 */
export function fixtureFiles(files: Record<string, string>): { paths: Record<string, string>; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'gevent-tls-files-'));
  const paths: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) {
    paths[name] = join(dir, name);
    writeFileSync(paths[name], text);
  }
  return { paths, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
