/**
 * The TLS schemes of parseAddress(): tls, tls4 and tls6 are tcp, tcp4 and tcp6 with `tls` set; the
 * other schemes leave it false; `?proxy=true` is refused on them for now; a TLS Addr prints tls://.
 * Pure parsing: no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Addr, BadAddressError, parseAddress } from '../src/index.js';

test('tls, tls4 and tls6 are tcp, tcp4 and tcp6 with tls set', () => {
  for (const [scheme, family] of [
    ['tls', 0],
    ['tls4', 4],
    ['tls6', 6],
    ['TLS', 0],
  ] as const) {
    const a = parseAddress(`${scheme}://:8443`);
    assert.equal(a.network, 'tcp', scheme);
    assert.equal(a.family, family, scheme);
    assert.equal(a.port, 8443, scheme);
    assert.equal(a.tls, true, scheme);
  }
  assert.equal(parseAddress('tls://127.0.0.1:443?reuseport=1').reusePort, true);
  for (const plain of ['tcp://:1', ':1', 'udp://:1', 'unix:///tmp/x.sock'])
    assert.equal(parseAddress(plain).tls, false);
});

test('tls4 refuses an IPv6 host, tls6 an IPv4 one, and proxy is refused on tls', () => {
  assert.throws(() => parseAddress('tls4://[::1]:1'), BadAddressError);
  assert.throws(() => parseAddress('tls6://127.0.0.1:1'), BadAddressError);
  assert.throws(
    () => parseAddress('tls://:1?proxy=true'),
    (err: unknown) => err instanceof BadAddressError && /proxy is not supported on tls/.test(err.message),
  );
  assert.throws(
    () => parseAddress('tlsx://:1'),
    (err: unknown) => err instanceof BadAddressError && /tls, tls4, tls6/.test(err.message),
  );
});

test('a TLS Addr prints tls://, a plain one tcp://', () => {
  assert.equal(String(new Addr('tcp', '127.0.0.1', 443, '', true)), 'tls://127.0.0.1:443');
  assert.equal(String(new Addr('tcp', '::1', 443, '', true)), 'tls://[::1]:443');
  assert.equal(String(new Addr('tcp', '127.0.0.1', 80)), 'tcp://127.0.0.1:80');
});
