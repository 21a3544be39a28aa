/**
 * parseAddress(): the seed's address rules (schemes, empty and host-less forms, IPv6 brackets,
 * the reuseport option, port range, unix path length) and Addr.toString(). Pure parsing: no
 * sockets, so it runs once rather than per backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isIPv6 } from 'node:net';
import fc from 'fast-check';
import { formatIPv4Bytes, formatIPv6Bytes, isIPv4MappedBytes } from '../src/addr.js';
import { Addr, BadAddressError, parseAddress } from '../src/index.js';

/** Asserts that parsing `text` throws a BadAddressError that names `text` (and `also`, when given). */
function assertBad(text: string, also?: string | RegExp): void {
  assert.throws(
    () => parseAddress(text),
    (err: unknown) => {
      assert.ok(err instanceof BadAddressError, `${text}: expected a BadAddressError, got ${String(err)}`);
      assert.equal(err.code, 'ERR_GEVENT_BAD_ADDRESS');
      assert.ok(err.message.startsWith('gevent: '), err.message);
      assert.ok(err.message.includes(text), `${text}: message ${JSON.stringify(err.message)} does not name the input`);
      assert.equal(err.address, text);
      if (typeof also === 'string')
        assert.ok(err.message.includes(also), `${text}: message ${err.message} lacks ${also}`);
      else if (also) assert.match(err.message, also);
      return true;
    },
  );
}

describe('parseAddress: schemes', () => {
  test('no scheme means tcp, dual-stack', () => {
    const a = parseAddress('127.0.0.1:80');
    assert.equal(a.network, 'tcp');
    assert.equal(a.family, 0);
    assert.equal(a.host, '127.0.0.1');
    assert.equal(a.port, 80);
    assert.equal(a.reusePort, false);
    assert.equal(a.text, '127.0.0.1:80');
  });

  test('every scheme maps to its network and family', () => {
    const want: [string, string, number][] = [
      ['tcp', 'tcp', 0],
      ['tcp4', 'tcp', 4],
      ['tcp6', 'tcp', 6],
      ['udp', 'udp', 0],
      ['udp4', 'udp', 4],
      ['udp6', 'udp', 6],
    ];
    for (const [scheme, network, family] of want) {
      const a = parseAddress(`${scheme}://:1234`);
      assert.equal(a.network, network, scheme);
      assert.equal(a.family, family, scheme);
      assert.equal(a.port, 1234, scheme);
      assert.equal(a.host, '', scheme);
    }
    const u = parseAddress('unix:///tmp/gevent-x.sock');
    assert.equal(u.network, 'unix');
    assert.equal(u.path, '/tmp/gevent-x.sock');
    assert.equal(u.port, 0);
  });

  test('the scheme is case-insensitive', () => {
    assert.equal(parseAddress('TCP4://:1').family, 4);
    assert.equal(parseAddress('Udp://:1').network, 'udp');
  });

  test('tcp:// (empty) is valid: every interface, port 0', () => {
    const a = parseAddress('tcp://');
    assert.equal(a.network, 'tcp');
    assert.equal(a.host, '');
    assert.equal(a.port, 0);
    assert.equal(parseAddress('udp://').port, 0);
  });

  test('tcp://:9991 binds every interface on 9991', () => {
    const a = parseAddress('tcp://:9991');
    assert.equal(a.host, '');
    assert.equal(a.port, 9991);
  });

  test('[::1]:80 is an IPv6 host in brackets', () => {
    const a = parseAddress('[::1]:80');
    assert.equal(a.network, 'tcp');
    assert.equal(a.host, '::1');
    assert.equal(a.port, 80);
    assert.equal(parseAddress('tcp6://[::1]:0').host, '::1');
  });

  test('host names are kept as written', () => {
    assert.equal(parseAddress('tcp://localhost:8080').host, 'localhost');
  });

  test('tulip://howdy (unknown scheme) and howdy (no port) throw BadAddressError naming the input', () => {
    assertBad('tulip://howdy', 'tulip');
    assertBad('howdy');
  });

  test('malformed hosts throw: unbracketed IPv6, unclosed bracket, a non-IPv6 in brackets', () => {
    assertBad('tcp://::1:80');
    assertBad('tcp://[::1:80');
    assertBad('tcp://[1.2.3.4]:80');
  });

  test('a scheme that fixes the family refuses a host of the other family', () => {
    assertBad('tcp4://[::1]:80');
    assertBad('tcp6://127.0.0.1:80');
    assertBad('udp4://[::1]:80');
    assertBad('udp6://127.0.0.1:80');
  });
});

describe('parseAddress: ports', () => {
  test('0 and 65535 are the ends of the range', () => {
    assert.equal(parseAddress('tcp://:0').port, 0);
    assert.equal(parseAddress('tcp://:65535').port, 65535);
  });

  test('port 65536, abc, an empty port and a negative port throw', () => {
    assertBad('tcp://127.0.0.1:65536', '65536');
    assertBad('tcp://127.0.0.1:abc', 'abc');
    assertBad('tcp://127.0.0.1:');
    assertBad('tcp://127.0.0.1:-1');
    assertBad('udp://:99999');
  });
});

describe('parseAddress: reuseport', () => {
  test('true, yes, t, y in any case and the digits 1-9 turn it on', () => {
    const truthy = [
      'true',
      'yes',
      't',
      'y',
      'TRUE',
      'Yes',
      'T',
      'Y',
      'tRuE',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ];
    for (const v of truthy) {
      assert.equal(parseAddress(`tcp://:1?reuseport=${v}`).reusePort, true, `reuseport=${v}`);
    }
  });

  test('false, no, 0 and empty leave it off', () => {
    for (const q of [
      'reuseport=false',
      'reuseport=no',
      'reuseport=0',
      'reuseport=',
      'reuseport',
      'reuseport=FALSE',
      'reuseport=No',
    ]) {
      assert.equal(parseAddress(`tcp://:1?${q}`).reusePort, false, q);
    }
  });

  test('the option works on udp and unix addresses too', () => {
    assert.equal(parseAddress('udp://:1?reuseport=yes').reusePort, true);
    const u = parseAddress('unix:///tmp/gevent-r.sock?reuseport=1');
    assert.equal(u.reusePort, true);
    assert.equal(u.path, '/tmp/gevent-r.sock', 'the query is not part of the path');
  });

  test('an unknown option throws naming it', () => {
    assertBad('tcp://:1?reuse=true', 'reuse');
    assertBad('tcp://:1?nodelay=1', 'nodelay');
  });

  test('a reuseport value that is neither truthy nor falsy throws naming it', () => {
    assertBad('tcp://:1?reuseport=maybe', 'maybe');
    assertBad('tcp://:1?reuseport=-1');
  });
});

describe('parseAddress: unix paths', () => {
  test('a 107-byte path is accepted, a 108-byte one throws naming its length', () => {
    const ok = '/tmp/' + 'a'.repeat(102);
    assert.equal(Buffer.byteLength(ok), 107);
    assert.equal(parseAddress(`unix://${ok}`).path, ok);
    const long = ok + 'a';
    assertBad(`unix://${long}`, '108');
  });

  test('the limit counts UTF-8 bytes, not characters', () => {
    const path = '/tmp/' + 'é'.repeat(52);
    assert.equal(path.length, 57);
    assert.equal(Buffer.byteLength(path), 109);
    assertBad(`unix://${path}`, '109');
  });

  test('unix:// with no path throws', () => {
    assertBad('unix://');
  });
});

describe('parseAddress: index', () => {
  test('the index given is kept, and defaults to 0', () => {
    assert.equal(parseAddress('tcp://:1', 3).index, 3);
    assert.equal(parseAddress('unix:///tmp/gevent-i.sock', 7).index, 7);
    assert.equal(parseAddress('udp://:1').index, 0);
  });
});

describe('Addr', () => {
  test('toString: scheme://host:port, IPv6 in brackets, unix://path', () => {
    assert.equal(new Addr('tcp', '127.0.0.1', 80).toString(), 'tcp://127.0.0.1:80');
    assert.equal(new Addr('udp', '127.0.0.1', 5353).toString(), 'udp://127.0.0.1:5353');
    assert.equal(new Addr('tcp', '::1', 443).toString(), 'tcp://[::1]:443');
    assert.equal(new Addr('unix', '', 0, '/tmp/gevent.sock').toString(), 'unix:///tmp/gevent.sock');
    assert.equal(String(new Addr('tcp', '0.0.0.0', 9991)), 'tcp://0.0.0.0:9991');
  });

  test('family: IPv4, IPv6 or unix', () => {
    assert.equal(new Addr('tcp', '127.0.0.1', 1).family, 'IPv4');
    assert.equal(new Addr('tcp', '::1', 1).family, 'IPv6');
    assert.equal(new Addr('udp', '::ffff:127.0.0.1', 1).family, 'IPv6');
    assert.equal(new Addr('unix', '', 0, '/tmp/x').family, 'unix');
  });

  test('what parseAddress reads back from Addr.toString() is the same address', () => {
    for (const a of [new Addr('tcp', '127.0.0.1', 80), new Addr('tcp', '::1', 443), new Addr('udp', '10.0.0.1', 53)]) {
      const p = parseAddress(a.toString());
      assert.equal(p.network, a.network);
      assert.equal(p.host, a.host);
      assert.equal(p.port, a.port);
    }
  });
});

describe('address bytes as text', () => {
  test('formatIPv6Bytes writes RFC 5952 text: what the WHATWG URL parser (RFC 5952 compression) makes of it, unchanged', () => {
    // Runs of zero groups are what the compression rules are about: draw groups mostly from {0, 1, ffff}.
    const group = fc.oneof(fc.constantFrom(0, 0, 0, 1, 0xffff), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const b = new Uint8Array(16);
        groups.forEach((g, i) => {
          b[2 * i] = g >> 8;
          b[2 * i + 1] = g & 0xff;
        });
        const text = formatIPv6Bytes(b, 0);
        assert.ok(isIPv6(text), text);
        assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
      }),
      { numRuns: 2000 },
    );
  });

  test('IPv4-mapped bytes are recognised; others are not', () => {
    const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
    assert.ok(isIPv4MappedBytes(mapped, 0));
    assert.equal(formatIPv4Bytes(mapped, 12), '192.0.2.1');
    mapped[3] = 1;
    assert.ok(!isIPv4MappedBytes(mapped, 0));
  });
});
