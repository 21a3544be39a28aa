/**
 * TLS as a layer of the native core, tested in C (test/c/tls.c, linked with native/*.c without
 * Node-API, OpenSSL found at run time as in the node binary): a mismatched key is refused, echoes
 * of random records come back byte-exact over TLS 1.3 and 1.2, a handshake fed one byte at a time
 * reports nothing before it completes, small writes share a record, a failed handshake (garbage,
 * FIN, reset) is refused with a distinct errno and never opens and leaves the thread's error queue
 * empty, close_notify works both ways, and output to a peer that stops reading is held and then
 * drained in order, handshakes are capped per wake-up, and input the layer holds when the read budget
 * runs out or reading pauses arrives later; ALPN picks the server's preference and refuses a client
 * with no protocol in common. Skipped when gcc or the OpenSSL headers are not installed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

const kSkip = cProgramsSkip || (existsSync('/usr/include/openssl/ssl.h') ? false : 'no OpenSSL headers (libssl-dev)');

describe('native core: TLS layer', { skip: kSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('tls')));
  after(() => program.dispose());

  it('handshakes, echoes, fails, ends and holds output as tls.c says', () => {
    const stdout = program.passes(120000);
    for (const line of [
      /contexts: OpenSSL 3 found at run time, a mismatched key and a non-PEM certificate refused/,
      /echo: TLS 1\.3: 6291456 random bytes in random records came back byte-exact/,
      /echo: TLS 1\.2: 1048576 random bytes in random records came back byte-exact/,
      /coalesce: TLS 1\.3: 100 writes of one flush left as 2 records, one per gathered send/,
      /bytewise: a handshake fed one byte at a time, no record before the last byte, then OPEN/,
      /twice: data after a read that ended at EAGAIN arrives too/,
      /failures: garbage TLS_REFUSED \[EPROTO, OpenSSL's error\], FIN TLS_REFUSED \[ECONNABORTED\], reset TLS_REFUSED \[ECONNRESET\], never OPEN/,
      /close_notify: the client's reads as END, END sends close_notify then FIN and reads on/,
      /stalled: \d+ bytes queued and ciphertext held with EPOLLOUT, then 8 MiB in order, hold gone/,
      /capped: one fill answers 16 of 24 ClientHellos, all 24 open in the end/,
      /budget: 100 bytes the layer held past the read budget arrived in the next fill, the socket empty/,
      /paused: 100 bytes the layer held when reading paused arrived after resume, the socket empty/,
      /alpn: the server's preference chosen, none without an offer, no overlap TLS_REFUSED \[EPROTO, no application protocol\], a malformed list refused/,
      /all tls cases passed/,
    ]) {
      assert.match(stdout, line);
    }
  });
});
