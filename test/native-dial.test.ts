/**
 * Dials in the native core, tested in C (test/c/dial.c, linked with native/*.c without Node-API):
 * a TCP dial to a loopback listener opens with the dial origin and the address dialled and echoes
 * bytes both ways; a refused dial ends in ECONNREFUSED with no OPEN; a unix dial to a missing path
 * fails at once with ENOENT; a unix dial to a live listener connects at once; a connecting dial
 * closed by a CLOSE command or by gev_loop_stop_all gets one CLOSE with errno 0. Skipped when gcc is
 * not installed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: dial', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('dial')));
  after(() => program.dispose());

  it('opens, refuses, fails at once and cancels as the contract says', () => {
    const stdout = program.passes(30000);
    assert.match(stdout, /tcp dial: opened, echoed, closed/);
    assert.match(stdout, /refused dial: /);
    assert.match(stdout, /unix dial to a missing path: ENOENT/);
    assert.match(stdout, /unix dial: connected at once/);
    assert.match(stdout, /cancelled dials: CLOSE with errno 0/);
    assert.match(stdout, /all dial cases passed/);
  });
});
