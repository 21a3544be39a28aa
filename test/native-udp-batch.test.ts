/**
 * The native backend over UDP: datagrams echoed one for one through recvmmsg/sendmmsg, the sender
 * address reported, and a datagram larger than its receive slot dropped and counted, never
 * delivered cut short. Datagrams go out 20 at a time: a burst must fit in the receiving socket's
 * buffer (net.core.rmem_default; 200 small datagrams overflow the 163840 bytes of a 32-bit kernel's
 * default), and UDP drops what does not.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseAddress } from '../src/addr.js';
import type { BackendHandler, DatagramPeer } from '../src/backend/backend.js';
import { NativeBackend, nativeAvailable } from '../src/backend/native.js';

const skip = nativeAvailable() ? false : 'native addon not built';
/** Datagrams in flight at once: far fewer than any receive buffer holds. */
const kBurst = 20;

class UdpEcho implements BackendHandler {
  onProxyRefused(): void {}
  readonly sizes: number[] = [];
  readonly peers: DatagramPeer[] = [];
  batches = 0;
  constructor(readonly b: NativeBackend) {}
  onOpen(): void {
    assert.fail('no connections on UDP');
  }
  onData(): void {
    assert.fail('no stream data on UDP');
  }
  onEnd(): void {}
  onClose(): void {}
  onDatagram(listener: number, bytes: Uint8Array, peer: DatagramPeer): void {
    this.sizes.push(bytes.length);
    this.peers.push(peer);
    this.b.sendTo(listener, bytes, peer);
  }
  onBatchEnd(): void {
    this.batches++;
    this.b.flush();
  }
  onQueued(): void {
    assert.fail('no output queues on UDP');
  }
  onAcceptError(): void {
    assert.fail('no accepts on UDP');
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function client(): Promise<{ sock: dgram.Socket; got: Buffer[] }> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    sock.bind(0, '127.0.0.1', () => resolve({ sock, got }));
  });
}

describe('native backend: UDP', { skip }, () => {
  let fdsBefore = 0;
  before(() => {
    fdsBefore = readdirSync('/proc/self/fd').length;
  });
  after(async () => {
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'no fd left open');
  });

  it('echoes 200 datagrams one for one, with the sender as peer', async () => {
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const h = new UdpEcho(b);
    b.start(h);
    const addr = await b.listen(parseAddress('udp4://127.0.0.1:0'));
    assert.equal(addr.network, 'udp');
    const { sock, got } = await client();
    for (let i = 0; i < 200; i += kBurst) {
      for (let j = i; j < i + kBurst; j++) sock.send(`dgram-${j}`, addr.port, '127.0.0.1');
      await until(() => got.length === i + kBurst, `the replies to datagrams ${i}-${i + kBurst - 1}`);
    }
    assert.deepEqual(
      new Set(got.map((m) => m.toString())),
      new Set(Array.from({ length: 200 }, (_, i) => `dgram-${i}`)),
    );
    assert.equal(h.sizes.length, 200);
    const peer = h.peers[0]!.addr;
    assert.equal(peer.host, '127.0.0.1');
    assert.equal(peer.port, sock.address().port);
    assert.equal(peer.network, 'udp');
    assert.ok(h.batches <= 200);
    const big = Buffer.alloc(60000, 7);
    sock.send(big, addr.port, '127.0.0.1');
    await until(() => got.length === 201, 'large reply');
    assert.ok(got[200]!.equals(big));
    assert.equal(b.stats().datagramsTruncated, 0);
    sock.close();
    await b.stop();
  });

  it('drops and counts a datagram larger than its receive slot', async () => {
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000, udpSlotBytes: 512 });
    const h = new UdpEcho(b);
    b.start(h);
    const addr = await b.listen(parseAddress('udp://127.0.0.1:0'));
    const { sock, got } = await client();
    sock.send(Buffer.alloc(1000, 1), addr.port, '127.0.0.1');
    sock.send(Buffer.alloc(512, 2), addr.port, '127.0.0.1');
    sock.send('small', addr.port, '127.0.0.1');
    await until(() => got.length === 2, 'two replies');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(h.sizes, [512, 5]);
    assert.equal(got.length, 2);
    assert.equal(b.stats().datagramsTruncated, 1);
    sock.close();
    await b.stop();
  });

  it('dual-stack udp:// answers an IPv4 sender, reported as plain IPv4', async () => {
    const b = new NativeBackend({ tcpNoDelay: true, proxyHeaderTimeoutMs: 5000 });
    const h = new UdpEcho(b);
    b.start(h);
    const addr = await b.listen(parseAddress('udp://:0'));
    const { sock, got } = await client();
    sock.send('dual', addr.port, '127.0.0.1');
    await until(() => got.length === 1, 'reply');
    assert.equal(got[0]!.toString(), 'dual');
    assert.equal(h.peers[0]!.addr.host, '127.0.0.1');
    sock.close();
    await b.stop();
  });
});
