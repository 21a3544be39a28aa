/**
 * The native core's PROXY protocol parser (native/proxyproto.c), tested in C (test/c/proxyproto.c,
 * linked with native/*.c without Node-API): the spec's examples, each refusal, every prefix of a
 * valid header waiting for more, and random and mutated input never read past its end. Skipped
 * when no C compiler is installed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CProgram, cProgramsSkip } from './c-programs.js';

describe('native core: PROXY protocol header parser', { skip: cProgramsSkip }, () => {
  let program: CProgram;
  before(() => (program = CProgram.build('proxyproto')));
  after(() => program.dispose());

  it('parses v1 and v2 headers, refuses bad ones and never reads past the input', () => {
    const stdout = program.passes(60000);
    assert.match(stdout, /^v1: examples, limits and refusals ok$/m);
    assert.match(stdout, /^v2: families, LOCAL, refusals ok$/m);
    assert.match(stdout, /^random: 200000 inputs, \d+ headers, no overrun$/m);
  });
});
