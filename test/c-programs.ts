/**
 * The C programs of test/c (the native core linked without Node-API, see test/c/build.sh), built
 * into a temporary folder for one suite and removed after it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const kBuildScript = fileURLToPath(new URL('../../test/c/build.sh', import.meta.url));

/** Why the C programs cannot run here (a `skip` value for node:test), or false when they can. */
export const cProgramsSkip: string | false =
  process.platform !== 'linux'
    ? 'the native core is Linux only'
    : spawnSync(process.env['CC'] ?? 'gcc', ['--version']).status === 0
      ? false
      : 'no C compiler';

/** One built program of test/c. */
export class CProgram {
  /** The executable. */
  readonly path: string;
  readonly #dir: string;

  private constructor(dir: string, path: string) {
    this.#dir = dir;
    this.path = path;
  }

  /** Builds test/c/`name`.c (failing the test when it does not build). */
  static build(name: string): CProgram {
    const dir = mkdtempSync(join(tmpdir(), `gevent-${name}-`));
    const path = join(dir, name);
    const built = spawnSync('sh', [kBuildScript, name, path], { encoding: 'utf8' });
    if (built.status !== 0) rmSync(dir, { recursive: true, force: true });
    assert.equal(built.status, 0, `test/c/${name}.c builds against native/ without Node-API:\n${built.stderr}`);
    return new CProgram(dir, path);
  }

  /**
   * Runs the program with `args`, fails the test unless it exits 0 on its own within `timeoutMs`
   * (the output is in the message), and returns what it printed.
   */
  passes(timeoutMs: number, args: readonly string[] = []): string {
    const run = spawnSync(this.path, args, { encoding: 'utf8', timeout: timeoutMs });
    assert.equal(run.signal, null, `killed by ${run.signal}:\n${run.stdout}${run.stderr}`);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    return run.stdout;
  }

  /** Removes the program and its folder. */
  dispose(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
