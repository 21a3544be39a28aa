/**
 * The output queue's byte count stays exact, tested in C (test/c/queue-exact.c, linked with
 * native/*.c without Node-API): random writes joined into sendmsg runs and split by the kernel at
 * arbitrary points, against a peer reading random amounts. After every flush and fill, qbytes
 * equals the queued chunks, the last QUEUED record equals qbytes, and EPOLLOUT is armed exactly
 * while output is queued; every byte arrives once, in order. Both socket buffers are set before the
 * handshake and the drain waits up to 30 s, so the result does not depend on the kernel's TCP
 * tuning (rmem/wmem limits) or its cached per-destination metrics. Skipped when gcc is not installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const kBuildScript = fileURLToPath(new URL('../../test/c/build.sh', import.meta.url));
const skip = spawnSync(process.env['CC'] ?? 'gcc', ['--version']).status === 0 ? false : 'no C compiler';

describe('native core: queue accounting', { skip }, () => {
  it('keeps qbytes and the QUEUED reports exact through partial writes and writev joins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gevent-queue-'));
    try {
      const program = join(dir, 'queue-exact');
      const built = spawnSync('sh', [kBuildScript, 'queue-exact', program], { encoding: 'utf8' });
      assert.equal(built.status, 0, `test/c/queue-exact.c builds against native/ without Node-API:\n${built.stderr}`);
      const run = spawnSync(program, { encoding: 'utf8', timeout: 60000 });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /bytes exact/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
