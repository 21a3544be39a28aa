/**
 * The loader: build/Release first, a failure lists every path tried with its reason, and the typed
 * surface matches what the addon exports.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addonCandidates, loadAddon, loadAddonFrom, nativeAvailable } from '../src/backend/addon.js';
import { BackendUnavailableError } from '../src/errors.js';

describe('native addon loader', () => {
  it('tries build/Release, then build/Debug', () => {
    const paths = addonCandidates().filter((p) => !process.env['GEVENT_NATIVE_ADDON'] || p !== process.env['GEVENT_NATIVE_ADDON']);
    assert.ok(paths[paths.length - 2]!.endsWith(join('build', 'Release', 'gevent.node')));
    assert.ok(paths[paths.length - 1]!.endsWith(join('build', 'Debug', 'gevent.node')));
  });

  it('names each path tried and why it failed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gevent-loader-'));
    try {
      const missing = join(dir, 'missing.node');
      const broken = join(dir, 'broken.node');
      writeFileSync(broken, 'not an ELF file');
      assert.throws(
        () => loadAddonFrom([missing, broken]),
        (err: unknown) => {
          assert.ok(err instanceof BackendUnavailableError);
          assert.equal(err.code, 'ERR_GEVENT_BACKEND_UNAVAILABLE');
          assert.ok(err.message.includes(`${missing} (not found)`), err.message);
          assert.ok(err.message.includes(`${broken} (`), err.message);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads the built addon with every function the typed surface declares', { skip: nativeAvailable() ? false : 'native addon not built' }, () => {
    const addon = loadAddon();
    assert.equal(loadAddon(), addon, 'cached per thread');
    const names = [
      'loopCreate', 'loopStart', 'listenInet', 'listenUnix', 'listenerAddr', 'listenerClose', 'connAddr', 'flush',
      'adopt', 'stopAll', 'close', 'wakeFd', 'wake', 'closeFd', 'stats', 'liveLoops',
    ];
    for (const n of names) assert.equal(typeof (addon as unknown as Record<string, unknown>)[n], 'function', n);
    assert.deepEqual(Object.keys(addon).sort(), [...names].sort());
  });
});
