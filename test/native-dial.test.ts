/**
 * Dials in the native core, tested in C (test/c/dial.c, linked with native/*.c without Node-API):
 * a TCP dial to a loopback listener opens with the dial origin and the address dialled and echoes
 * bytes both ways; a refused dial ends in ECONNREFUSED with no OPEN; a unix dial to a missing path
 * fails at once with ENOENT; a unix dial to a live listener connects at once; a connecting dial
 * closed by a CLOSE command or by gev_loop_stop_all gets one CLOSE with errno 0. Skipped when gcc is
 * not installed.
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

describe('native core: dial', { skip }, () => {
  let dir = '';
  let program = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gevent-dial-'));
    program = join(dir, 'dial');
    const built = spawnSync('sh', [kBuildScript, 'dial', program], { encoding: 'utf8' });
    assert.equal(built.status, 0, `test/c/dial.c builds against native/ without Node-API:\n${built.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('opens, refuses, fails at once and cancels as the contract says', () => {
    const run = spawnSync(program, { encoding: 'utf8', timeout: 30000 });
    assert.equal(run.signal, null, `killed by ${run.signal}:\n${run.stdout}${run.stderr}`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /tcp dial: opened, echoed, closed/);
    assert.match(run.stdout, /refused dial: /);
    assert.match(run.stdout, /unix dial to a missing path: ENOENT/);
    assert.match(run.stdout, /unix dial: connected at once/);
    assert.match(run.stdout, /cancelled dials: CLOSE with errno 0/);
    assert.match(run.stdout, /all dial cases passed/);
  });
});
