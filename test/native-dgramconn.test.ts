/**
 * Dialled UDP connections in the native core, tested in C (test/c/dgramconn.c, linked with
 * native/*.c without Node-API): a dial opens at once with the dial origin, the peer's address and
 * GEV_C_DGRAM; writes of one flush leave as separate datagrams and each received datagram (an
 * empty one too) is one DATA record; a 60 KiB write is one datagram; END closes; an ICMP port
 * unreachable closes with ECONNREFUSED; a paused connection reads after resume; bad addresses fail
 * at once with nothing left open; gev_loop_stop_all closes it with errno 0. Skipped when gcc is not
 * installed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: dialled UDP connections', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('dgramconn')));
  after(() => program.dispose());

  it('opens at once, keeps datagrams apart both ways, and closes as the contract says', () => {
    const stdout = program.passes(30000);
    assert.match(stdout, /udp dial: opened, datagrams kept apart both ways, closed/);
    assert.match(stdout, /udp dial to a closed port: ECONNREFUSED/);
    assert.match(stdout, /paused udp dial: read after resume/);
    assert.match(stdout, /udp dial errors and stop: as the contract says/);
    assert.match(stdout, /all udp dial cases passed/);
  });
});
