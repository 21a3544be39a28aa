/**
 * The native core's PROXY protocol parser (native/proxyproto.c), tested in C (test/c/proxyproto.c,
 * linked with native/*.c without Node-API): the spec's examples, each refusal, every prefix of a
 * valid header waiting for more, and random and mutated input never read past its end. Skipped
 * when no C compiler is installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const kBuildScript = fileURLToPath(new URL('../../test/c/build.sh', import.meta.url));
const skip = spawnSync(process.env['CC'] ?? 'gcc', ['--version']).status === 0 ? false : 'no C compiler';

describe('native core: PROXY protocol header parser', { skip }, () => {
  let dir = '';
  let program = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gevent-proxyproto-'));
    program = join(dir, 'proxyproto');
    const built = spawnSync('sh', [kBuildScript, 'proxyproto', program], { encoding: 'utf8' });
    assert.equal(built.status, 0, `test/c/proxyproto.c builds against native/ without Node-API:\n${built.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses v1 and v2 headers, refuses bad ones and never reads past the input', () => {
    const run = spawnSync(program, { encoding: 'utf8', timeout: 60000 });
    assert.equal(run.signal, null, `killed by ${run.signal}:\n${run.stdout}${run.stderr}`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^v1: examples, limits and refusals ok$/m);
    assert.match(run.stdout, /^v2: families, LOCAL, refusals ok$/m);
    assert.match(run.stdout, /^random: 200000 inputs, \d+ headers, no overrun$/m);
  });
});
