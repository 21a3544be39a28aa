/**
 * PROXY protocol listeners in the native core, tested in C (test/c/proxyaccept.c, linked with
 * native/*.c without Node-API): v1 and v2 headers open with the header's addresses and only the
 * payload as DATA, TLV bytes reach the PROXY record, a split header waits, garbage, a silent client
 * (a 50 ms deadline) and a client that closes mid-header are refused with their reasons, a LOCAL
 * header opens with the socket's own addresses, an adopted fd has its header read, and stopAll
 * closes a pending one silently. Skipped when gcc is not installed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: PROXY protocol listeners', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('proxyaccept')));
  after(() => program.dispose());

  it('opens, refuses and times out connections as their headers say', () => {
    const stdout = program.passes(30000);
    for (const line of [
      /v1: OPEN from the header's source/,
      /v2: 12 TLV bytes/,
      /split header: waited, then opened/,
      /garbage: refused/,
      /closed mid-header: refused/,
      /silent client: refused/,
      /LOCAL: the socket's own addresses/,
      /adopted: the adopting loop read the header/,
      /stop_all: the pending connection closed silently/,
      /all proxy accept cases passed/,
    ]) {
      assert.match(stdout, line);
    }
  });
});
