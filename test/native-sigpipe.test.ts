/**
 * SIGPIPE and the core's send path, tested in C (test/c/sigpipe.c, linked with native/*.c without
 * Node-API): writes to peers that reset the connection, with SIGPIPE at its default disposition,
 * must end in a CLOSE carrying EPIPE or ECONNRESET and never kill the process. A control run with
 * plain send() shows the environment does deliver SIGPIPE. Skipped when gcc is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: SIGPIPE', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('sigpipe')));
  after(() => program.dispose());

  it('survives writes to reset peers and sees EPIPE or ECONNRESET', () => {
    const stdout = program.passes(20000);
    assert.match(stdout, /direct send: closed with/);
    assert.match(stdout, /queued send: closed with/);
    assert.match(stdout, /survived/);
  });

  it('control: plain send() on a reset socket is killed by SIGPIPE here', () => {
    const run = spawnSync(program.path, ['--control'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.signal, 'SIGPIPE');
  });
});
