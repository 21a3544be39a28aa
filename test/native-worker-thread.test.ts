/**
 * The addon keeps its state per instance: a worker thread loads it and runs a NativeBackend echo
 * beside one on the main thread; a worker that exits without stopping leaves nothing behind; and
 * the hand-off path (accept here, adopt there) works; and a loop with no listener of its own serves
 * an adopted connection whose origin says "a dial", passed to onOpen as is.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { parseAddress } from '../src/addr.js';
import type { AddrPair } from '../src/backend/backend.js';
import { kOriginDial } from '../src/backend/addon-types.js';
import { NativeBackend, nativeAvailable, type NativeBackendHandler } from '../src/backend/native.js';

const skip = nativeAvailable() ? false : 'native addon not built';
const nativeUrl = new URL('../src/backend/native.js', import.meta.url).href;
const addrUrl = new URL('../src/addr.js', import.meta.url).href;

/** Worker body: an echo server; posts {port}; on 'stop' stops and posts counts. */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { NativeBackend } = await import(${JSON.stringify(nativeUrl)});
  const { parseAddress } = await import(${JSON.stringify(addrUrl)});
  const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
  let opened = 0, closed = 0;
  b.start({
    onOpen(id, origin, addrs) { opened++; },
    onData(id, bytes) { b.write(id, bytes); },
    onEnd(id) { b.close(id, true); },
    onClose() { closed++; },
    onDatagram() {},
    onBatchEnd() { b.flush(); },
    onQueued() {},
    onAcceptError() {},
    onProxyRefused() {},
  });
  const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'));
  parentPort.on('message', async (m) => {
    if (m.t === 'adopt') { b.adopt(m.fd, 0); return; }
    if (m.t !== 'stop') return;
    await b.stop();
    parentPort.postMessage({ t: 'stopped', opened, closed });
    parentPort.close();
  });
  parentPort.postMessage({ t: 'ready', port: addr.port, leave: workerData.leave });
})();
`;

function next(w: Worker, t: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { t: string }): void => {
      if (m.t !== t) return;
      w.off('message', onMsg);
      resolve(m as unknown as Record<string, number>);
    };
    w.on('message', onMsg);
    w.once('error', reject);
  });
}

function echoOnce(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    c.once('data', (d) => {
      c.end();
      resolve(d.toString());
    });
    c.once('error', reject);
  });
}

describe('native backend: worker threads', { skip }, () => {
  it('runs an echo server inside a worker beside one on the main thread', async () => {
    const main = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    main.start({
      onOpen() {},
      onData: (id, bytes) => main.write(id, bytes),
      onEnd: (id) => main.close(id, true),
      onClose() {},
      onDatagram() {},
      onBatchEnd: () => main.flush(),
      onQueued() {},
      onAcceptError() {},
      onProxyRefused() {},
    });
    const mainAddr = await main.listen(parseAddress('tcp://127.0.0.1:0'));

    const w = new Worker(workerSource, { eval: true, workerData: { leave: false } });
    const ready = await next(w, 'ready');
    assert.equal(await echoOnce(ready['port']!, 'from main to worker'), 'from main to worker');
    assert.equal(await echoOnce(mainAddr.port, 'main loop still serves'), 'main loop still serves');

    await new Promise((r) => setTimeout(r, 20));
    w.postMessage({ t: 'stop' });
    const stopped = await next(w, 'stopped');
    assert.equal(stopped['opened'], 1);
    assert.equal(stopped['closed'], 1);
    assert.equal(await new Promise((r) => w.once('exit', r)), 0);
    await main.stop();
  });

  it('a terminated worker with an open loop releases it (env cleanup hook)', async () => {
    const w = new Worker(workerSource, { eval: true, workerData: { leave: true } });
    const ready = await next(w, 'ready');
    assert.equal(await echoOnce(ready['port']!, 'x'), 'x');
    await w.terminate();
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(echoOnce(ready['port']!, 'y'), /ECONNREFUSED/);
  });

  it('hands an accepted fd to a worker loop, which adopts it', async () => {
    const w = new Worker(workerSource, { eval: true, workerData: { leave: false } });
    await next(w, 'ready');
    const accepted: number[] = [];
    const acceptor = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const handler: NativeBackendHandler = {
      onAccepted(fd, origin, remote) {
        assert.equal(origin, 0);
        assert.equal(remote.host, '127.0.0.1');
        accepted.push(fd);
        w.postMessage({ t: 'adopt', fd });
      },
      onOpen: () => assert.fail('a hand-off listener opens nothing itself'),
      onData() {},
      onEnd() {},
      onClose() {},
      onDatagram() {},
      onBatchEnd() {},
      onQueued() {},
      onAcceptError() {},
      onProxyRefused() {},
    };
    acceptor.start(handler);
    const addr = await acceptor.listen(parseAddress('tcp://127.0.0.1:0'), { handOff: true });
    assert.equal(await echoOnce(addr.port, 'handed off'), 'handed off');
    assert.equal(accepted.length, 1);
    await acceptor.stop();
    await new Promise((r) => setTimeout(r, 20));
    w.postMessage({ t: 'stop' });
    const stopped = await next(w, 'stopped');
    assert.equal(stopped['opened'], 1);
    assert.equal(stopped['closed'], 1);
    await new Promise((r) => w.once('exit', r));
  });

  it('a loop with no listener serves a connection adopted with a dial origin', async () => {
    const origin = (kOriginDial | 5) >>> 0;
    const dialer = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const origins: number[] = [];
    const remotes: string[] = [];
    const locals: number[] = [];
    let closes = 0;
    dialer.start({
      onOpen: (_id, o, addrs) => {
        origins.push(o);
        remotes.push(addrs.remote.host);
        locals.push(addrs.local.port);
      },
      onData: (id, bytes) => dialer.write(id, bytes),
      onEnd: (id) => dialer.close(id, true),
      onClose: () => closes++,
      onDatagram() {},
      onBatchEnd: () => dialer.flush(),
      onQueued() {},
      onAcceptError() {},
      onProxyRefused() {},
    });
    const acceptor = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    acceptor.start({
      onAccepted: (fd) => dialer.adopt(fd, origin),
      onOpen: () => assert.fail('a hand-off listener opens nothing itself'),
      onData() {},
      onEnd() {},
      onClose() {},
      onDatagram() {},
      onBatchEnd() {},
      onQueued() {},
      onAcceptError() {},
      onProxyRefused() {},
    } as NativeBackendHandler);
    const addr = await acceptor.listen(parseAddress('tcp://127.0.0.1:0'), { handOff: true });
    assert.equal(await echoOnce(addr.port, 'dialled'), 'dialled');
    assert.deepEqual(origins, [origin]);
    assert.deepEqual(remotes, ['127.0.0.1']);
    assert.deepEqual(locals, [addr.port], 'the local address of a dial comes from the socket');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closes, 1);
    assert.equal(dialer.stats().connections, 0);
    await acceptor.stop();
    await dialer.stop();
  });

  it('adopt() in the same thread opens the connection in a later batch', async () => {
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const opens: AddrPair[] = [];
    let closes = 0;
    b.start({
      onOpen: (_id, _l, addrs) => opens.push(addrs),
      onData: (id, bytes) => b.write(id, bytes),
      onEnd: (id) => b.close(id, true),
      onClose: () => closes++,
      onDatagram() {},
      onBatchEnd: () => b.flush(),
      onQueued() {},
      onAcceptError() {},
      onProxyRefused() {},
      onAccepted: (fd) => {
        b.adopt(fd, 0);
        assert.equal(opens.length, 0, 'onOpen is not called synchronously from adopt');
      },
    } as NativeBackendHandler);
    const addr = await b.listen(parseAddress('tcp://127.0.0.1:0'), { handOff: true });
    assert.equal(await echoOnce(addr.port, 'self'), 'self');
    assert.equal(opens.length, 1);
    assert.equal(opens[0]!.local.port, addr.port);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closes, 1);
    await b.stop();
  });
});
