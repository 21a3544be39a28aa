/**
 * The native backend: the epoll addon (native/) behind the Backend interface.
 *
 * Reads: each libuv wake-up of the loop's epoll fd fills the in arena with records and calls
 * `walk` once; onData gets a view into the arena (valid during the call only).
 * Writes: write/close/end/setKeepAlive/pauseReading/watchQueue/sendTo append commands to the out
 * arena (small payloads are copied in, large ones passed by reference); flush() hands them to C in
 * one call, which runs them in order. Inside a batch,
 * flush() is deferred: C runs the command list right after the batch callback returns, saving a
 * crossing per wake-up. The command count lives in the out arena's header, so C and JS never
 * disagree about it.
 *
 * Backpressure: C reports a connection's queued output (QUEUED records, onQueued) only when a flush
 * or an EPOLLOUT write changed it, so a connection whose writes the kernel takes at once costs
 * nothing. What a flush causes is delivered in the next batch, never from inside the call.
 *
 * Origins: an Open record names where its connection came from, passed to onOpen as is: the index
 * of the listener that accepted it, or a number with kOriginDial set for a dial.
 *
 * Dials: dial() starts a non-blocking connect in C and keeps the spec by id until the dial's Open or
 * Close record: an Open reports the address C connected to (a unix dial's path from the spec), and a
 * Close before any Open becomes onClose(id, err) with err shaped like Node's connect errors (`code`
 * the errno name), or null when close() cancelled it or stop() closed it.
 *
 * PROXY protocol listeners: C reads each connection's header before it opens (native/proxyaccept.c).
 * A Proxy record (version, command, TLV bytes, the header's destination) comes right before the
 * connection's Open, whose address is then the header's source; the pair reports both and
 * `proxy`. A refused header is a ProxyRefused record, onProxyRefused(listener, reason, peer), and the
 * connection never opens. A hand-off listener's Accepted record says it is a PROXY one, and the
 * adopting loop reads the header (adopt(fd, origin, true)).
 *
 * TLS listeners: the first one gives the loop its context (loopTls, from BackendOptions.tls, checked
 * in native-tls.ts) and each is bound with ListenFlag.Tls. C runs the handshake before the Open
 * (native/tls.c); at the Open, connTlsInfo says what it settled, kept as the pair's `tls`. A failed
 * handshake is a TlsRefused record, onTlsError(listener, reason, peer, detail), and no Open.
 *
 * Threading: a NativeBackend belongs to the thread that created it, and so do all its calls.
 */
import { isIP } from 'node:net';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { Addr, formatIPv4Bytes, formatIPv6Bytes, isIPv4MappedBytes, type ListenSpec, type Network } from '../addr.js';
import {
  BackendUnavailableError,
  ConnectionError,
  InvalidArgumentError,
  ListenError,
  NoMemoryError,
  TlsConfigError,
} from '../errors.js';
import { loadAddon } from './addon.js';
import { resolveHost } from './resolve.js';
import type { ServerTlsConfig } from '../tls-options.js';
import { parseProxyTlvs } from '../proxy-header.js';
import { alpnWire, checkedNativePem, nativeTlsInfo, nativeTlsRefusal } from './native-tls.js';
import {
  AddrFamily,
  kAddrSlots,
  kAddrU32,
  kHeaderU32,
  kIdSlotBits,
  kMaxExtBuffers,
  kMaxKeepAliveSeconds,
  kOriginDial,
  kProxyLocalBit,
  kProxyUnixBit,
  kProxyUnixPathBytes,
  kProxyTlvShift,
  kSlotU32,
  kStatsLen,
  kUdpSlotBytes,
  ListenFlag,
  NoMemory,
  Op,
  Rec,
  type LoopHandle,
  type NativeAddon,
} from './addon-types.js';
import {
  datagramError,
  kOriginDialDatagram,
  type AddrPair,
  type Backend,
  type BackendHandler,
  type BackendOptions,
  type DatagramPeer,
  type DialSpec,
  type ProxyInfo,
  type ProxyRefusal,
  type ProxyTlv,
  type TlsInfo,
} from './backend.js';

export { nativeAvailable, loadAddon } from './addon.js';

/** Record slots in the in arena (16 bytes each). */
const kInRecordSlots = 16384;
/** Payload bytes in the in arena: room for a full recvmmsg batch of 64 KiB datagram slots. */
const kInPayloadBytes = 4 * 1024 * 1024 + 64 * 1024;
/** Command slots in the out arena. */
const kOutCommandSlots = 16384;
/** Payload bytes in the out arena for copied writes. */
const kOutPayloadBytes = 1024 * 1024;
/** Writes up to this size are copied into the out arena; larger ones are passed by reference. */
const kCopyMaxBytes = 16 * 1024;
/** Writes up to this size are copied byte by byte (cheaper than TypedArray.set for tiny payloads). */
const kByteLoopMaxBytes = 32;
/**
 * The most bytes one write command carries. A command's length is a u32, so a larger write goes
 * as several by-reference commands in a row, which C joins into one sendmsg run, in order.
 */
const kMaxWriteCommandBytes = 2 ** 31;
/** The largest u32: a datagram length past it is clamped, never wrapped (the kernel refuses both). */
const kMaxU32 = 0xffff_ffff;
/** The PROXY header deadline when a caller gives none (one with no PROXY listener never needs it). */
const kDefaultProxyHeaderTimeoutMs = 5000;
/** ProxyRefused's reason (ProxyReason, PROXY_E_* in C) as the contract names it, by code. */
const kProxyRefusals: readonly ProxyRefusal[] = [
  'closed',
  'signature',
  'version',
  'command',
  'family',
  'v1-syntax',
  'too-long',
  'address-length',
  'tlv',
  'timeout',
  'closed',
];
const kENOMEM = osConstants.errno.ENOMEM;
const kECANCELED = osConstants.errno.ECANCELED;

const kOutBytesStart = (kHeaderU32 + kOutCommandSlots * kSlotU32) * 4;
const kOutArenaBytes = kOutBytesStart + kOutPayloadBytes;

/** Options of the native backend beyond BackendOptions. */
export interface NativeBackendOptions extends BackendOptions {
  /** Receive slot per datagram in bytes (default 65536, which no datagram exceeds). */
  readonly udpSlotBytes?: number;
}

/** Extra events the native backend can report, for the multi-loop engine. */
export interface NativeBackendHandler extends BackendHandler {
  /**
   * A hand-off listener accepted `fd`; the receiver must adopt() it elsewhere (passing `origin` and
   * `proxyProtocol` on) or closeFd() it. `origin` is the listener's index; `proxyProtocol` says the
   * listener is a PROXY protocol one, so the adopting loop must read the header.
   */
  onAccepted?(fd: number, origin: number, remote: Addr, proxyProtocol: boolean): void;
}

/** Counters for tests and diagnostics. */
export interface NativeStats {
  readonly connections: number;
  readonly datagramsTruncated: number;
  readonly datagramsSendDropped: number;
  readonly pendingRecords: number;
  /** Listeners whose accepting is paused after an accept error (EMFILE, ...), awaiting a retry. */
  readonly listenersParked: number;
}

interface ListenerInfo {
  readonly slot: number;
  readonly network: Network;
  readonly addr: Addr;
  /** A TLS listener's: its connections' Open records get their TlsInfo. */
  readonly tls?: boolean;
}

const kScratch32 = new Uint32Array(kAddrU32);
/** The slot of a connection id (its low kIdSlotBits bits). */
const kSlotMask = (1 << kIdSlotBits) - 1;
/** Slots #peers starts with. */
const kMinPeerSlots = 256;
/** Where connRelayed writes its two counts. */
const kRelayScratch = new Float64Array(2);
const kScratch8 = new Uint8Array(kScratch32.buffer, 16, 16);

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno));
  } catch {
    return `E${Math.abs(errno)}`;
  }
}

function errnoMessage(errno: number): string {
  return getSystemErrorMap().get(-Math.abs(errno))?.[1] ?? '';
}

/** What a Close record's ENOMEM was allocating, by its NoMemory value. */
function noMemoryWhat(what: number): string {
  if (what === NoMemory.Queue) return 'output queue';
  if (what === NoMemory.Report) return 'queue report';
  return 'socket buffers';
}

/** The error a Close record [id, errno, what] gives `closed`: null for a clean close. */
function closeError(errno: number, what: number): Error | null {
  if (errno === 0) return null;
  if (errno === kENOMEM) return new NoMemoryError(noMemoryWhat(what));
  return new ConnectionError(errnoName(errno));
}

/** What a dial connects to, as Node's connect errors name it: `host:port`, or the unix path. */
function dialTarget(spec: DialSpec): string {
  return spec.network === 'unix' ? spec.path : `${spec.host}:${spec.port}`;
}

/**
 * The error of a dial that failed, at once or before its onOpen, in the shape of Node's connect
 * errors: `connect ECONNREFUSED 127.0.0.1:1`, with `code` the errno name, `errno` (negative),
 * `syscall`, and the target's `address` (and `port` for tcp).
 */
function dialError(errno: number, spec: DialSpec): Error {
  const code = errnoName(errno);
  const err = new Error(`connect ${code} ${dialTarget(spec)}`);
  const fields: Record<string, unknown> = { code, errno: -Math.abs(errno), syscall: 'connect' };
  if (spec.network === 'unix') fields['address'] = spec.path;
  else Object.assign(fields, { address: spec.host, port: spec.port });
  return Object.assign(err, fields);
}

/** RFC 5952 text of an IPv6 address; a v4-mapped address is written as plain IPv4, as Go does. */
function formatIPv6(b: Uint8Array): string {
  return isIPv4MappedBytes(b, 0) ? formatIPv4Bytes(b, 12) : formatIPv6Bytes(b, 0);
}

/** Builds an Addr from an encoded address (kAddrU32 u32 at `at` in `src`). */
function decodeAddr(network: Network, src: ArrayLike<number>, at: number, unixPath: string): Addr {
  const family = src[at];
  if (family === AddrFamily.Unix || network === 'unix') return new Addr('unix', '', 0, unixPath);
  for (let k = 0; k < kAddrU32; k++) kScratch32[k] = src[at + k];
  const port = src[at + 1];
  if (family === AddrFamily.Inet4)
    return new Addr(network, `${kScratch8[0]}.${kScratch8[1]}.${kScratch8[2]}.${kScratch8[3]}`, port);
  if (family === AddrFamily.Inet6) {
    const scope = src[at + 3];
    return new Addr(network, formatIPv6(kScratch8) + (scope !== 0 ? `%${scope}` : ''), port);
  }
  return new Addr(network, '', 0);
}

/**
 * A connection's addresses: the peer as accept4 reported it, the local side looked up on demand.
 * One is kept per open connection, so the peer stays encoded in small-integer fields (no typed
 * array, which costs V8 an ArrayBuffer per connection) and becomes an Addr on first use. This class
 * holds IPv4 and unix peers, which need one address word; NativeAddrPair6 holds IPv6 peers.
 */
class NativeAddrPair implements AddrPair {
  #remote: Addr | undefined = undefined;
  #local: Addr | undefined = undefined;

  readonly #backend: NativeBackend;
  readonly #id: number;
  /** Where the connection came from (see Origins above). */
  readonly #origin: number;
  /** The encoded family (u32 0) shifted left 16, plus the port (u32 1). */
  readonly #familyPort: number;
  /** Address word 0 (u32 4), as an int32 so that it stays a small integer. */
  readonly #word0: number;

  constructor(backend: NativeBackend, id: number, origin: number, familyPort: number, word0: number) {
    this.#backend = backend;
    this.#id = id;
    this.#origin = origin;
    this.#familyPort = familyPort;
    this.#word0 = word0;
  }

  /**
   * Builds the pair for the OPEN record whose address starts at `at` in `src`. `remote`, when
   * given, is the peer instead of the record's address (a unix dial's path, which C does not carry).
   */
  static from(
    backend: NativeBackend,
    id: number,
    origin: number,
    src: Uint32Array,
    at: number,
    remote?: Addr,
  ): NativeAddrPair {
    const familyPort = (src[at] << 16) | src[at + 1];
    const pair =
      src[at] === AddrFamily.Inet6
        ? new NativeAddrPair6(backend, id, origin, familyPort, src, at)
        : new NativeAddrPair(backend, id, origin, familyPort, src[at + 4] | 0);
    if (remote !== undefined) pair.#remote = remote;
    return pair;
  }

  get remote(): Addr {
    if (this.#remote === undefined) {
      this.encode(kScratch32);
      this.#remote = decodeAddr(this.#backend.networkOf(this.#origin), kScratch32, 0, '');
    }
    return this.#remote;
  }

  get local(): Addr {
    return (this.#local ??= this.#backend.localAddr(this.#id, this.#origin, this.#familyPort >>> 16));
  }

  /** An accepted IPv4 or unix connection's pair: the backend keeps its peer by slot (NativeBackend.recallAddrs). */
  get recallable(): boolean {
    return this.#origin < kOriginDial;
  }

  /** Writes the peer back into `out` as an encoded address (8 u32; flowinfo is not kept). */
  protected encode(out: Uint32Array): void {
    out[0] = this.#familyPort >>> 16;
    out[1] = this.#familyPort & 0xffff;
    out[2] = 0;
    out[3] = 0;
    out[4] = this.#word0;
    out[5] = 0;
    out[6] = 0;
    out[7] = 0;
  }
}

/** A connection's addresses when the peer is IPv6: three more address words and the scope id. */
class NativeAddrPair6 extends NativeAddrPair {
  readonly #word1: number;
  readonly #word2: number;
  readonly #word3: number;
  readonly #scope: number;

  constructor(backend: NativeBackend, id: number, origin: number, familyPort: number, src: Uint32Array, at: number) {
    super(backend, id, origin, familyPort, src[at + 4] | 0);
    this.#word1 = src[at + 5] | 0;
    this.#word2 = src[at + 6] | 0;
    this.#word3 = src[at + 7] | 0;
    this.#scope = src[at + 3] | 0;
  }

  /** An IPv6 peer is not kept by slot: the loop keeps this pair. */
  override get recallable(): boolean {
    return false;
  }

  protected override encode(out: Uint32Array): void {
    super.encode(out);
    out[3] = this.#scope;
    out[5] = this.#word1;
    out[6] = this.#word2;
    out[7] = this.#word3;
  }
}

/**
 * The address of a PROXY header (encoded at `at`): an inet one is TCP whatever the listener, as
 * the header describes the balancer's client; undefined when the header carried none.
 */
/** The NUL-padded path of a v2 AF_UNIX address block at `at` (kProxyUnixPathBytes long). */
function unixPath(bytes: Uint8Array, at: number): string {
  const field = bytes.subarray(at, at + kProxyUnixPathBytes);
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString();
}

function proxyAddr(src: Uint32Array, at: number): Addr | undefined {
  const family = src[at];
  if (family === AddrFamily.Inet4 || family === AddrFamily.Inet6) return decodeAddr('tcp', src, at, '');
  if (family === AddrFamily.Unix) return new Addr('unix', '', 0, '');
  return undefined;
}

/** What a Proxy record said, kept until the Open that follows it. */
interface ProxyRecord {
  readonly id: number;
  readonly info: ProxyInfo;
  /** The header's destination; undefined for a local command (the socket's own address then). */
  readonly local: Addr | undefined;
  /** The header's source when the Open record's address cannot say it (a unix path); else undefined. */
  readonly remote?: Addr;
}

/** A PROXY listener's connection: the header's addresses (or the socket's, for 'local') and `proxy`. */
class ProxiedAddrPair implements AddrPair {
  #local: Addr | undefined;
  readonly #backend: NativeBackend;
  readonly #id: number;
  readonly #origin: number;
  readonly #peerFamily: number;

  constructor(
    backend: NativeBackend,
    id: number,
    origin: number,
    peerFamily: number,
    readonly remote: Addr,
    local: Addr | undefined,
    readonly proxy: ProxyInfo,
  ) {
    this.#backend = backend;
    this.#id = id;
    this.#origin = origin;
    this.#peerFamily = peerFamily;
    this.#local = local;
  }

  get local(): Addr {
    return (this.#local ??= this.#backend.localAddr(this.#id, this.#origin, this.#peerFamily));
  }
}

/** A TLS listener's connection: its addresses and what its handshake settled. */
class TlsAddrPair implements AddrPair {
  readonly #pair: AddrPair;

  constructor(
    pair: AddrPair,
    readonly tls: TlsInfo,
  ) {
    this.#pair = pair;
  }

  get local(): Addr {
    return this.#pair.local;
  }

  get remote(): Addr {
    return this.#pair.remote;
  }
}

/**
 * Where a datagram came from, kept encoded in eight small-integer fields (one per u32 of the
 * encoded address: a typed-array copy would cost V8 an ArrayBuffer per datagram); `addr` is built
 * on first use.
 */
class NativePeer implements DatagramPeer {
  #addr: Addr | undefined;
  readonly #w0: number;
  readonly #w1: number;
  readonly #w2: number;
  readonly #w3: number;
  readonly #w4: number;
  readonly #w5: number;
  readonly #w6: number;
  readonly #w7: number;

  constructor(src: Uint32Array, at: number) {
    this.#w0 = src[at]! | 0;
    this.#w1 = src[at + 1]! | 0;
    this.#w2 = src[at + 2]! | 0;
    this.#w3 = src[at + 3]! | 0;
    this.#w4 = src[at + 4]! | 0;
    this.#w5 = src[at + 5]! | 0;
    this.#w6 = src[at + 6]! | 0;
    this.#w7 = src[at + 7]! | 0;
  }

  get addr(): Addr {
    if (this.#addr === undefined) {
      this.encodeInto(kScratch32, 0);
      this.#addr = decodeAddr('udp', kScratch32, 0, '');
    }
    return this.#addr;
  }

  /** Writes the encoded address (kAddrU32 u32) into `out` at `at`, as sendTo hands it back to C. */
  encodeInto(out: Uint32Array, at: number): void {
    out[at] = this.#w0;
    out[at + 1] = this.#w1;
    out[at + 2] = this.#w2;
    out[at + 3] = this.#w3;
    out[at + 4] = this.#w4;
    out[at + 5] = this.#w5;
    out[at + 6] = this.#w6;
    out[at + 7] = this.#w7;
  }
}

/** The Backend over the epoll addon. Construct it on the thread that will run the loop. */
export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly #addon: NativeAddon;
  readonly #loop: LoopHandle;
  readonly #in32: Uint32Array;
  readonly #in8: Uint8Array;
  readonly #out32: Uint32Array;
  readonly #out8: Uint8Array;
  readonly #ext: Uint8Array[] = [];
  readonly #listeners: (ListenerInfo | undefined)[] = [];
  readonly #stats = new Float64Array(kStatsLen);
  /** Dials not yet opened or closed, by id: what their Open and Close records are about. */
  readonly #dialing = new Map<number, DialSpec>();
  /** Dialled UDP connections until their Close record: the peer that names their closing error. */
  readonly #udpDials = new Map<number, DialSpec>();
  /**
   * The peer of each accepted IPv4 or unix connection, by slot, as NativeAddrPair keeps it (family
   * and port, address word 0), so that the loop need not keep the pair (recallAddrs); grown by
   * doubling to the highest slot seen. Holds a slot's peer until the slot's next Open, which comes
   * after its Close record.
   */
  #peers = new Int32Array(0);
  #handler: NativeBackendHandler | null = null;
  /** Whether the loop has its TLS context (loopTls, made by the first TLS listener). */
  #tlsContext = false;
  readonly #tls: ServerTlsConfig | null;
  #inBatch = false;
  #stopRequested = false;
  #closed = false;
  #stopped: Promise<void> | null = null;
  #resolveStop: (() => void) | null = null;

  /** Throws BackendUnavailableError when the addon is missing or the loop cannot be created. */
  constructor(options: NativeBackendOptions) {
    const udpSlot = options.udpSlotBytes ?? kUdpSlotBytes;
    if (!Number.isInteger(udpSlot) || udpSlot < 1 || udpSlot > kUdpSlotBytes) {
      throw new InvalidArgumentError('udpSlotBytes', udpSlot, `an integer from 1 to ${kUdpSlotBytes}`);
    }
    this.#addon = loadAddon();
    this.#tls = options.tls ?? null;
    const inArena = new ArrayBuffer((kHeaderU32 + kInRecordSlots * kSlotU32) * 4 + kInPayloadBytes);
    const outArena = new ArrayBuffer(kOutArenaBytes);
    const proxyTimeout = options.proxyHeaderTimeoutMs ?? kDefaultProxyHeaderTimeoutMs;
    if (!Number.isInteger(proxyTimeout) || proxyTimeout < 1 || proxyTimeout > kMaxU32) {
      throw new InvalidArgumentError('proxyHeaderTimeoutMs', proxyTimeout, `an integer from 1 to ${kMaxU32}`);
    }
    const loop = this.#addon.loopCreate(
      inArena,
      kInRecordSlots,
      outArena,
      kOutCommandSlots,
      options.tcpNoDelay,
      udpSlot,
      proxyTimeout,
    );
    if (typeof loop === 'number') {
      throw new BackendUnavailableError(`cannot create an epoll loop: ${errnoName(loop)} (${errnoMessage(loop)})`);
    }
    this.#loop = loop;
    this.#in32 = new Uint32Array(inArena);
    this.#in8 = new Uint8Array(inArena);
    this.#out32 = new Uint32Array(outArena);
    this.#out8 = new Uint8Array(outArena);
  }

  start(handler: BackendHandler): void {
    if (this.#handler) throw new InvalidArgumentError('start()', 'a second call', 'called once');
    this.#handler = handler as NativeBackendHandler;
    const rc = this.#addon.loopStart(this.#loop, this.#onBatch);
    if (rc < 0) throw new BackendUnavailableError(`cannot watch the epoll fd: ${errnoName(rc)}`);
  }

  /** Binds `spec`. With `handOff`, accepted fds are reported through onAccepted instead of opened here. */
  async listen(spec: ListenSpec, options?: { readonly handOff?: boolean }): Promise<Addr> {
    if (this.#stopped) throw new ListenError(spec.text, 'ECANCELED', 'the backend is stopped');
    const handOff =
      (options?.handOff === true ? ListenFlag.HandOff : 0) |
      (spec.proxyProtocol === true && spec.network !== 'udp' ? ListenFlag.Proxy : 0) |
      (spec.tls === true ? this.tlsContext(spec) : 0);
    let slot: number;
    if (spec.network === 'unix') {
      slot = this.#addon.listenUnix(this.#loop, spec.path, handOff, spec.index);
      if (slot < 0) throw this.listenError(spec, slot);
      const addr = new Addr('unix', '', 0, spec.path);
      this.#listeners[spec.index] = { slot, network: 'unix', addr };
      return addr;
    }
    let host = await resolveHost(spec);
    let family: 0 | 4 | 6 = spec.family;
    if (this.#stopped) throw new ListenError(spec.text, 'ECANCELED', 'the backend is stopped');
    if (host === '::' && family === 0) host = '';
    if (host !== '') family = isIP(host) === 6 ? 6 : 4;
    const flags = handOff | (spec.reusePort ? ListenFlag.ReusePort : 0) | (family === 6 ? ListenFlag.V6Only : 0);
    const bind = spec.network === 'udp' ? this.#addon.listenUdp : this.#addon.listenTcp;
    slot = bind(this.#loop, family, host, spec.port, flags, spec.index);
    if (slot < 0) throw this.listenError(spec, slot);
    const rc = this.#addon.listenerAddr(this.#loop, slot, kScratch32);
    const bound =
      rc === 0 ? decodeAddr(spec.network, kScratch32.slice(), 0, '') : new Addr(spec.network, host, spec.port);
    const tls = spec.tls === true;
    const addr = tls ? new Addr(bound.network, bound.host, bound.port, bound.path, true) : bound;
    this.#listeners[spec.index] = { slot, network: spec.network, addr, tls };
    return addr;
  }

  /**
   * Makes the loop's TLS context from BackendOptions.tls, once, for the TLS listener `spec`, and
   * returns ListenFlag.Tls. Throws TlsConfigError naming the option OpenSSL refuses.
   */
  private tlsContext(spec: ListenSpec): number {
    if (this.#tlsContext) return ListenFlag.Tls;
    const cfg = this.#tls;
    if (cfg === null)
      throw new ListenError(spec.text, 'EINVAL', 'a tls:// address needs ServeOptions.tls (key and cert)');
    const why = this.#addon.tlsAvailable();
    if (why !== null) throw new BackendUnavailableError(`${spec.text}: TLS cannot run natively here: ${why}`);
    const { key, cert } = checkedNativePem(cfg);
    const rc = this.#addon.loopTls(this.#loop, key, cert, alpnWire(cfg.alpn), cfg.handshakeTimeoutMs);
    if (Array.isArray(rc)) throw new TlsConfigError('options.tls.key', errnoName(rc[0]), rc[1]);
    if (rc < 0) throw this.listenError(spec, rc);
    this.#tlsContext = true;
    return ListenFlag.Tls;
  }

  /**
   * Starts a non-blocking connect (Backend.dial): the new id, or the Error of a connect that failed
   * at once. Its Open record becomes onOpen(id, kOriginDial, addrs) with the address connected to
   * (a unix dial's peer is `spec.path`); a Close record before it becomes onClose(id, err), err in
   * the shape of Node's connect errors (`code` the errno name), or null when close() cancelled it.
   * Throws InvalidArgumentError for a spec the contract rules out (a host that is not numeric, ...).
   * A udp dial is a connected datagram socket (native/dgramconn.c): its Open (origin
   * kOriginDialDatagram) comes in the next batch, and a Close with an errno after it (ECONNREFUSED
   * from an ICMP port unreachable, ...) becomes onClose(id, datagramError(...)).
   */
  dial(spec: DialSpec): number | Error {
    const id = this.startDial(spec);
    if (id < 0) return dialError(id, spec);
    this.#dialing.set(id, spec);
    if (spec.network === 'udp') this.#udpDials.set(id, spec);
    return id;
  }

  write(id: number, data: Uint8Array): void {
    const len = data.length;
    if (len === 0 || this.#closed) return;
    if (len > kMaxWriteCommandBytes) {
      for (let at = 0; at < len; at += kMaxWriteCommandBytes) {
        this.write(id, data.subarray(at, Math.min(len, at + kMaxWriteCommandBytes)));
      }
      return;
    }
    const o32 = this.#out32;
    const cmds = this.reserve(1, len);
    const at = kHeaderU32 + cmds * kSlotU32;
    if (len <= kCopyMaxBytes) {
      const pos = o32[1];
      const out = this.#out8;
      if (len <= kByteLoopMaxBytes) for (let k = 0; k < len; k++) out[pos + k] = data[k];
      else out.set(data, pos);
      o32[at] = Op.Write;
      o32[at + 2] = pos;
      o32[1] = pos + len;
    } else {
      o32[at] = Op.WriteExt;
      o32[at + 2] = this.#ext.push(data) - 1;
    }
    o32[at + 1] = id;
    o32[at + 3] = len;
    o32[0] = cmds + 1;
  }

  flush(): void {
    if (this.#inBatch || this.#out32[0] === 0 || this.#closed) return;
    this.nativeFlush();
  }

  close(id: number, flush: boolean): void {
    this.command(Op.Close, id, flush ? 1 : 0);
  }

  end(id: number): void {
    this.command(Op.End, id, 0);
  }

  /** Takes effect at the next flush(), in order with the writes before it; DATA already read still arrives. */
  pauseReading(id: number, paused: boolean): void {
    this.command(Op.PauseReading, id, paused ? 1 : 0);
  }

  watchQueue(id: number): void {
    this.command(Op.WatchQueue, id, 0);
  }

  /** Takes effect at the next flush(), in order with the commands before it (Backend.relay). */
  relay(id: number, to: number, highWater: number): void {
    if (this.#closed) return;
    const o32 = this.#out32;
    const cmds = this.reserve(1, 0);
    const at = kHeaderU32 + cmds * kSlotU32;
    o32[at] = Op.Relay;
    o32[at + 1] = id;
    o32[at + 2] = to;
    o32[at + 3] = Math.max(1, Math.min(kMaxU32, Math.floor(highWater)));
    o32[0] = cmds + 1;
  }

  relayed(id: number): readonly [number, number] | null {
    if (this.#closed) return null;
    const out = kRelayScratch;
    return this.#addon.connRelayed(this.#loop, id, out) === 0 ? [out[0], out[1]] : null;
  }

  /** Closes every listener now (TCP, unix and UDP); connections, and their addresses, stay. */
  closeListeners(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#listeners.forEach((info, index) => {
      if (info === undefined || info.slot < 0) return;
      this.#addon.listenerClose(this.#loop, info.slot);
      this.#listeners[index] = { ...info, slot: -1 };
    });
    return Promise.resolve();
  }

  setKeepAlive(id: number, ms: number): void {
    this.command(Op.KeepAlive, id, ms > 0 ? Math.min(kMaxKeepAliveSeconds, Math.max(1, Math.ceil(ms / 1000))) : 0);
  }

  sendTo(listener: number, data: Uint8Array, peer: DatagramPeer): void {
    if (!(peer instanceof NativePeer)) {
      throw new InvalidArgumentError('peer', peer, 'a DatagramPeer that came from this backend');
    }
    const info = this.#listeners[listener];
    if (info === undefined || info.network !== 'udp' || info.slot < 0 || this.#closed) return;
    const o32 = this.#out32;
    const len = data.length;
    const cmds = this.reserve(1 + kAddrSlots, len);
    const at = kHeaderU32 + cmds * kSlotU32;
    if (len <= kCopyMaxBytes) {
      const pos = o32[1];
      this.#out8.set(data, pos);
      o32[at] = Op.SendTo;
      o32[at + 2] = pos;
      o32[1] = pos + len;
    } else {
      o32[at] = Op.SendToExt;
      o32[at + 2] = this.#ext.push(data) - 1;
    }
    o32[at + 1] = info.slot;
    o32[at + 3] = Math.min(len, kMaxU32);
    peer.encodeInto(o32, at + 4);
    o32[0] = cmds + 1 + kAddrSlots;
  }

  stop(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#stopped = new Promise<void>((resolve) => {
      this.#resolveStop = resolve;
    });
    if (this.#inBatch) this.#stopRequested = true;
    else this.finishStop();
    return this.#stopped;
  }

  /**
   * Registers an fd accepted by another loop's hand-off listener as a connection of `origin` (the
   * listener's index); onOpen(id, origin, ...) follows in a later batch. With `proxyProtocol` (from
   * onAccepted), this loop reads the connection's PROXY header first: onOpen follows it, or
   * onProxyRefused and no onOpen, and its deadline counts from now.
   */
  adopt(fd: number, origin: number, proxyProtocol = false): number {
    if (!Number.isInteger(fd) || fd < 0) throw new InvalidArgumentError('fd', fd, 'a non-negative integer');
    if (this.#stopped) return -1;
    const id = this.#addon.adopt(this.#loop, fd, origin, proxyProtocol ? ListenFlag.Proxy : 0);
    if (id === -kENOMEM) throw new NoMemoryError('table slot');
    if (id < 0) throw new ConnectionError(errnoName(id), `cannot adopt fd ${fd}`);
    return id;
  }

  /**
   * Tells this backend the bound address of every listener of the server, by index, including
   * those bound on another thread (a hand-off acceptor's); adopted connections report them.
   */
  declareListeners(addrs: readonly Addr[]): void {
    addrs.forEach((addr, index) => {
      if (this.#listeners[index] === undefined) this.#listeners[index] = { slot: -1, network: addr.network, addr };
    });
  }

  /** Closes an fd from onAccepted that no loop adopted. */
  static closeFd(fd: number): void {
    loadAddon().closeFd(fd);
  }

  stats(): NativeStats {
    const s = this.#stats;
    if (!this.#closed) this.#addon.stats(this.#loop, s);
    return {
      connections: s[0],
      datagramsTruncated: s[1],
      datagramsSendDropped: s[2],
      pendingRecords: s[3],
      listenersParked: s[4],
    };
  }

  recallAddrs(id: number, origin: number): AddrPair {
    const at = (id & kSlotMask) * 2;
    return new NativeAddrPair(this, id, origin, this.#peers[at]!, this.#peers[at + 1]!);
  }

  /** Keeps the encoded IPv4 or unix peer at `at` in `src` for accepted connection `id` (see #peers). */
  private keepPeer(id: number, src: Uint32Array, at: number): void {
    const to = (id & kSlotMask) * 2;
    if (to + 2 > this.#peers.length) {
      let n = this.#peers.length === 0 ? kMinPeerSlots * 2 : this.#peers.length * 2;
      while (n < to + 2) n *= 2;
      const grown = new Int32Array(n);
      grown.set(this.#peers);
      this.#peers = grown;
    }
    this.#peers[to] = (src[at]! << 16) | src[at + 1]!;
    this.#peers[to + 1] = src[at + 4]! | 0;
  }

  /** @internal The network of the connections of `origin` (a listener index; a dial is TCP, or UDP for kOriginDialDatagram). */
  networkOf(origin: number): Network {
    if (origin === kOriginDialDatagram) return 'udp';
    return this.#listeners[origin]?.network ?? 'tcp';
  }

  /**
   * @internal A connection's local address: getsockname while open, else its listener's address
   * (a dial has none: an unknown address then). `peerFamily` is its Open record's AddrFamily: a unix
   * dial's socket is never bound, so its local address is the unnamed unix address.
   */
  localAddr(id: number, origin: number, peerFamily: number): Addr {
    const info = this.#listeners[origin];
    if (info === undefined && origin >= kOriginDial && peerFamily === AddrFamily.Unix)
      return new Addr('unix', '', 0, '');
    const network = this.networkOf(origin);
    const fallback = info?.addr ?? new Addr(network, '', 0);
    if (info === undefined ? origin < kOriginDial : info.network === 'unix') return fallback;
    if (this.#closed) return fallback;
    const rc = this.#addon.connAddr(this.#loop, id, kScratch32);
    return rc === 0 ? decodeAddr(network, kScratch32, 0, '') : fallback;
  }

  readonly #onBatch = (): void => {
    this.walk();
  };

  /**
   * Makes room for a command of `slots` slots whose payload is `len` bytes (copied when small,
   * else passed by reference), flushing first when the arena is full. Returns the first slot.
   */
  private reserve(slots: number, len: number): number {
    const o32 = this.#out32;
    const cmds = o32[0];
    if (cmds !== 0) {
      const full =
        cmds + slots > kOutCommandSlots ||
        (len <= kCopyMaxBytes ? o32[1] + len > kOutArenaBytes : this.#ext.length >= kMaxExtBuffers);
      if (!full) return cmds;
      this.nativeFlush();
    }
    o32[1] = kOutBytesStart;
    this.#ext.length = 0;
    return 0;
  }

  private command(op: Op, id: number, arg: number): void {
    if (this.#closed) return;
    const o32 = this.#out32;
    const cmds = this.reserve(1, 0);
    const at = kHeaderU32 + cmds * kSlotU32;
    o32[at] = op;
    o32[at + 1] = id;
    o32[at + 2] = arg;
    o32[at + 3] = 0;
    o32[0] = cmds + 1;
  }

  private nativeFlush(): void {
    if (this.#out32[0] === 0) return;
    const ext = this.#ext;
    this.#addon.flush(this.#loop, ext.length > 0 ? ext : null, ext.length);
    ext.length = 0;
  }

  /** Validates `spec` and calls the addon: the new id or -errno. */
  private startDial(spec: DialSpec): number {
    if (this.#stopped) return -kECANCELED;
    if (spec.network === 'unix') {
      if (typeof spec.path !== 'string' || spec.path === '' || spec.path.includes('\0')) {
        throw new InvalidArgumentError('dial path', spec.path, 'a socket file path');
      }
      return this.#addon.connectUnix(this.#loop, spec.path, kOriginDial);
    }
    if (spec.network !== 'tcp' && spec.network !== 'udp')
      throw new InvalidArgumentError('dial network', spec.network, "'tcp', 'udp' or 'unix'");
    const family = spec.family;
    if ((family !== 4 && family !== 6) || isIP(spec.host) !== family) {
      throw new InvalidArgumentError('dial host', spec.host, `a numeric IPv${family === 6 ? 6 : 4} address`);
    }
    if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
      throw new InvalidArgumentError('dial port', spec.port, 'an integer from 1 to 65535');
    }
    if (spec.localHost !== '' && isIP(spec.localHost) !== family) {
      throw new InvalidArgumentError('dial localHost', spec.localHost, `'' or a numeric IPv${family} address`);
    }
    if (!Number.isInteger(spec.localPort) || spec.localPort < 0 || spec.localPort > 65535) {
      throw new InvalidArgumentError('dial localPort', spec.localPort, 'an integer from 0 to 65535');
    }
    const connect = spec.network === 'udp' ? this.#addon.connectUdp : this.#addon.connectInet;
    return connect(
      this.#loop,
      family,
      spec.host,
      spec.port,
      spec.localHost,
      spec.localPort,
      spec.network === 'udp' ? kOriginDialDatagram : kOriginDial,
    );
  }

  private listenError(spec: ListenSpec, rc: number): ListenError {
    const name = errnoName(rc);
    if (name === 'EEXIST' && spec.network === 'unix') {
      return new ListenError(spec.text, 'EADDRINUSE', 'the path exists and is not a socket');
    }
    return new ListenError(spec.text, name, errnoMessage(rc));
  }

  /** Walks the records of one batch (or of stopAll), calling the handler for each. */
  private walk(): void {
    const h = this.#handler!;
    const r = this.#in32;
    const bytes = this.#in8;
    const end = kHeaderU32 + r[0] * kSlotU32;
    let proxy: ProxyRecord | null = null;
    this.#inBatch = true;
    try {
      for (let i = kHeaderU32; i < end;) {
        const type = r[i];
        if (type === Rec.Data) {
          const off = r[i + 2];
          h.onData(r[i + 1], bytes.subarray(off, off + r[i + 3]));
          i += kSlotU32;
        } else if (type === Rec.Open) {
          const id = r[i + 1];
          const origin = r[i + 2];
          if (proxy !== null && proxy.id === id) {
            h.onOpen(id, origin, this.proxiedPair(id, origin, r, i + kSlotU32, proxy));
            proxy = null;
          } else {
            const remote = origin >= kOriginDial ? this.dialOpened(id, r, i + kSlotU32) : undefined;
            if (remote === undefined && r[i + kSlotU32] !== AddrFamily.Inet6) this.keepPeer(id, r, i + kSlotU32);
            const pair = NativeAddrPair.from(this, id, origin, r, i + kSlotU32, remote);
            // A TLS connection's pair carries its handshake's result, which recallAddrs cannot give again.
            h.onOpen(id, origin, this.#tlsContext ? this.tlsPair(id, origin, pair) : pair);
          }
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.Proxy) {
          proxy = this.proxyRecord(r, i);
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.ProxyRefused) {
          const origin = r[i + 1];
          const reason = kProxyRefusals[r[i + 2]] ?? 'closed';
          h.onProxyRefused(origin, reason, decodeAddr(this.networkOf(origin), r, i + kSlotU32, ''));
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.TlsRefused) {
          const origin = r[i + 1];
          const peer = r[i + kSlotU32] === AddrFamily.None ? null : decodeAddr('tcp', r, i + kSlotU32, '');
          const { reason, detail } = nativeTlsRefusal(r[i + 2], this.#addon.tlsReason(r[i + 3]));
          h.onTlsError?.(origin, reason, peer, detail);
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.Close) {
          const id = r[i + 1];
          const dial = this.#dialing.size > 0 ? this.#dialing.get(id) : undefined;
          const udp = this.#udpDials.size > 0 ? this.#udpDials.get(id) : undefined;
          if (udp !== undefined) this.#udpDials.delete(id);
          if (udp !== undefined && dial === undefined) {
            const errno = r[i + 2];
            h.onClose(id, errno === 0 ? null : datagramError(errnoName(errno), errno, 'recv', udp.host, udp.port));
          } else if (dial === undefined) {
            h.onClose(id, closeError(r[i + 2], r[i + 3]));
          } else {
            this.#dialing.delete(id);
            h.onClose(id, r[i + 2] === 0 ? null : dialError(r[i + 2], dial));
          }
          i += kSlotU32;
        } else if (type === Rec.End) {
          h.onEnd(r[i + 1]);
          i += kSlotU32;
        } else if (type === Rec.Dgram) {
          const off = r[i + 2];
          h.onDatagram(r[i + 1], bytes.subarray(off, off + r[i + 3]), new NativePeer(r, i + kSlotU32));
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.Accepted) {
          const fd = r[i + 1];
          const origin = r[i + 2];
          const proxied = (r[i + 3] & ListenFlag.Proxy) !== 0;
          if (h.onAccepted) h.onAccepted(fd, origin, decodeAddr(this.networkOf(origin), r, i + kSlotU32, ''), proxied);
          else this.#addon.closeFd(fd);
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.Queued) {
          h.onQueued(r[i + 1], r[i + 2] + r[i + 3] * 0x1_0000_0000);
          i += kSlotU32;
        } else if (type === Rec.Relayed) {
          const at = i + kSlotU32;
          h.onRelayed?.(r[i + 1], r[at] + r[at + 1] * 0x1_0000_0000, r[at + 2] + r[at + 3] * 0x1_0000_0000);
          i += kSlotU32 * (1 + kAddrSlots);
        } else if (type === Rec.AcceptError) {
          h.onAcceptError(r[i + 1], errnoName(r[i + 2]));
          i += kSlotU32;
        } else {
          i += kSlotU32;
        }
      }
      h.onBatchEnd();
    } finally {
      this.#inBatch = false;
    }
    if (this.#ext.length > 0) this.nativeFlush();
    if (this.#stopRequested) {
      this.#stopRequested = false;
      this.finishStop();
    }
  }

  /** The pair of connection `id` with its TlsInfo when it came from a TLS listener. */
  private tlsPair(id: number, origin: number, pair: AddrPair): AddrPair {
    if (this.#listeners[origin]?.tls !== true) return pair;
    const t = this.#addon.connTlsInfo(this.#loop, id);
    return typeof t === 'number' ? pair : new TlsAddrPair(pair, nativeTlsInfo(t[0], t[1], t[2], t[3], t[4]));
  }

  /** Reads the Proxy record at `i`: its ProxyInfo (TLVs copied out of the arena) and destination. */
  private proxyRecord(r: Uint32Array, i: number): ProxyRecord {
    const word = r[i + 2];
    const local = (word & kProxyLocalBit) !== 0;
    const tlvLen = word >>> kProxyTlvShift;
    const unix = (word & kProxyUnixBit) !== 0;
    const at = r[i + 3] + (unix ? 2 * kProxyUnixPathBytes : 0);
    const info: ProxyInfo = {
      version: (word & 0xff) === 1 ? 1 : 2,
      command: local ? 'local' : 'proxy',
      // The core walked the TLVs before emitting the record, so they parse.
      tlvs: parseProxyTlvs(this.#in8, at, at + tlvLen) as readonly ProxyTlv[],
    };
    if (unix) {
      const paths = r[i + 3];
      return {
        id: r[i + 1],
        info,
        remote: new Addr('unix', '', 0, unixPath(this.#in8, paths)),
        local: new Addr('unix', '', 0, unixPath(this.#in8, paths + kProxyUnixPathBytes)),
      };
    }
    return { id: r[i + 1], info, local: local ? undefined : proxyAddr(r, i + kSlotU32) };
  }

  /** The pair of a PROXY listener's connection whose Open address is at `at`. */
  private proxiedPair(id: number, origin: number, r: Uint32Array, at: number, p: ProxyRecord): AddrPair {
    const remote =
      p.info.command === 'proxy'
        ? (p.remote ?? proxyAddr(r, at) ?? decodeAddr(this.networkOf(origin), r, at, ''))
        : decodeAddr(this.networkOf(origin), r, at, '');
    return new ProxiedAddrPair(this, id, origin, r[at], remote, p.local, p.info);
  }

  /**
   * A dial opened: forgets its spec, and returns the peer to report when the record's address does
   * not say it (a unix path, or an address getpeername could no longer tell).
   */
  private dialOpened(id: number, r: Uint32Array, at: number): Addr | undefined {
    const spec = this.#dialing.get(id);
    if (spec === undefined) return undefined;
    this.#dialing.delete(id);
    if (spec.network === 'unix') return new Addr('unix', '', 0, spec.path);
    return r[at] === AddrFamily.None ? new Addr(spec.network, spec.host, spec.port) : undefined;
  }

  private finishStop(): void {
    if (this.#closed) return;
    this.nativeFlush();
    if (this.#handler) {
      while (this.#addon.stopAll(this.#loop) > 0) this.walk();
    } else {
      this.#addon.stopAll(this.#loop);
    }
    this.#closed = true;
    this.#ext.length = 0;
    this.#dialing.clear();
    this.#udpDials.clear();
    this.#addon.close(this.#loop, () => {
      this.#resolveStop?.();
      this.#resolveStop = null;
    });
  }
}
