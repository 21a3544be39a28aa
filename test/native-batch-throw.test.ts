/**
 * An exception thrown by a handler inside the batch callback is not swallowed in C: it reaches
 * process 'uncaughtException' (here, in a child process, so it cannot disturb the test runner).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { nativeAvailable } from '../src/backend/native.js';

const skip = nativeAvailable() ? false : 'native addon not built';
const nativeUrl = new URL('../src/backend/native.js', import.meta.url).href;
const addrUrl = new URL('../src/addr.js', import.meta.url).href;

const child = `
import net from 'node:net';
const { NativeBackend } = await import(${JSON.stringify(nativeUrl)});
const { parseAddress } = await import(${JSON.stringify(addrUrl)});
const b = new NativeBackend({ tcpNoDelay: true });
let closes = 0;
b.start({
  onOpen() {},
  onData() { throw new Error('thrown from onData'); },
  onEnd() {},
  onClose() { closes++; },
  onDatagram() {},
  onBatchEnd() {},
  onQueued() {},
  onAcceptError() {},
});
process.on('uncaughtException', async (err) => {
  console.log('caught:', err.message);
  c.destroy();
  await b.stop();
  console.log('stopped, closes =', closes);
});
const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'));
const c = net.connect(addr.port, '127.0.0.1', () => c.write('boom'));
c.on('error', () => {});
`;

describe('native backend: exceptions in the batch callback', { skip }, () => {
  it('reach uncaughtException, and the backend still stops cleanly', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /caught: thrown from onData/);
    assert.match(r.stdout, /stopped, closes = 1/);
  });
});
