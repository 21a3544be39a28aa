/**
 * SIGPIPE and the core's send path, tested in C (test/c/sigpipe.c, linked with native/*.c without
 * Node-API): writes to peers that reset the connection, with SIGPIPE at its default disposition,
 * must end in a CLOSE carrying EPIPE or ECONNRESET and never kill the process. A control run with
 * plain send() shows the environment does deliver SIGPIPE. Skipped when gcc is not installed.
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

describe('native core: SIGPIPE', { skip }, () => {
  let dir = '';
  let program = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gevent-sigpipe-'));
    program = join(dir, 'sigpipe');
    const built = spawnSync('sh', [kBuildScript, 'sigpipe', program], { encoding: 'utf8' });
    assert.equal(built.status, 0, `test/c/sigpipe.c builds against native/ without Node-API:\n${built.stderr}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('survives writes to reset peers and sees EPIPE or ECONNRESET', () => {
    const run = spawnSync(program, { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.signal, null, `killed by ${run.signal}:\n${run.stdout}${run.stderr}`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /direct send: closed with/);
    assert.match(run.stdout, /queued send: closed with/);
    assert.match(run.stdout, /survived/);
  });

  it('control: plain send() on a reset socket is killed by SIGPIPE here', () => {
    const run = spawnSync(program, ['--control'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.signal, 'SIGPIPE');
  });
});
