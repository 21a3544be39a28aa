/**
 * The portable backend: node:net and node:dgram. It runs wherever Node runs, with the same
 * behaviour as the native backend, one event at a time (every event is its own batch).
 *
 * SO_REUSEPORT is not exposed by node:net on every Node version, so listeners that ask for
 * `reuseport` on the same address share one server inside this process, and connections are
 * spread over them in turn. Across processes, reuseport needs the native backend.
 *
 * On a PROXY protocol listener (`?proxy=true`) an accepted socket is held before onOpen: its first
 * bytes are collected until parseProxyHeader() gives a header (onOpen with the header's addresses,
 * then onData with whatever followed it), an error, or the deadline (proxyHeaderTimeoutMs) passes;
 * a refused, late or vanished header destroys the socket and is reported by onProxyRefused, and the
 * id it never got is never seen by the loop.
 *
 * A udp dial is a node:dgram socket with connect(): each 'message' is one onData, each write one
 * send(), end() a close; an error after it opened (ECONNREFUSED from an ICMP port unreachable,
 * reported by a later receive or send) closes it with datagramError(). dgram has no pause, so while
 * reading is paused its datagrams are held (up to kHeldDatagramsMax, then dropped as the kernel
 * would) and delivered on resume.
 * A TLS listener (`tls://`) is a node:tls server (src/backend/portable-tls.ts): a connection opens
 * once its handshake is done, with its TlsInfo; a failed handshake is reported by onTlsError and
 * never gets an id. A TLS dial opens at 'secureConnect'; a handshake that fails closes it with a
 * TlsHandshakeFailure; options node:tls refuses at once make dial() return a TlsConfigError.
 */
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { connect, createServer, isIPv4, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Addr, type ListenSpec } from '../addr.js';
import { ConnectionError, ListenError, TlsConfigError } from '../errors.js';
import { parseProxyHeader, type ProxyAddress, type ProxyHeader } from '../proxy-header.js';
import {
  datagramError,
  kOriginDial,
  kOriginDialDatagram,
  kProxyHeaderMaxBytes,
  type AddrPair,
  type Backend,
  type BackendHandler,
  type BackendOptions,
  type DatagramPeer,
  type DialSpec,
  type ProxyInfo,
  type ProxyRefusal,
  TlsHandshakeFailure,
} from './backend.js';
import { connectTls, createPortableTlsServer, tlsInfo, tlsReason } from './portable-tls.js';
import { resolveHost } from './resolve.js';
import { removeStaleSocket, unlinkSocket } from './unixpath.js';

/**
 * The largest UDP payload any datagram can carry (IPv6: 65,535 minus the UDP header); a larger
 * reply is dropped here. Smaller ones that do not fit (65,508 and up over IPv4) the kernel refuses.
 */
const kMaxDatagramBytes = 65_527;

const kEmpty = new Uint8Array(0);
/** Output larger than this goes to the socket in slices of this size, one at a time (see #writeStream). */
const kWriteSliceBytes = 64 * 1024;

/** Datagrams a paused udp dial holds for its resume; more are dropped, as a full socket buffer drops them. */
const kHeldDatagramsMax = 1024;

/** A dialled UDP connection (a connected node:dgram socket). */
interface DgramConn {
  readonly id: number;
  readonly sock: DgramSocket;
  readonly spec: DialSpec;
  /** What onClose reports: the connect's error before onOpen, datagramError() after it. */
  err: Error | null;
  /** onOpen was made. */
  opened: boolean;
  /** A close was asked for or an error came: no more onData, no more sends. */
  closing: boolean;
  /** Reading is paused (pauseReading): datagrams are held. */
  paused: boolean;
  held: Buffer[];
  /** Report a queue of 0 after the next flush (watchQueue). */
  watch: boolean;
}

interface Stream {
  readonly id: number;
  readonly sock: Socket;
  err: Error | null;
  closing: boolean;
  /** The last queued-bytes figure given to onQueued. */
  reported: number;
  /** Report the queue after the next flush even when unchanged. */
  watch: boolean;
  /** Written to since the last flush. */
  dirty: boolean;
  /** Reading is paused (pauseReading). */
  paused: boolean;
  /**
   * On a TLS socket, the callback every write carries: it reports the queue once the write is done.
   * A TLS socket counts a write as queued until its record is written, so a write usually leaves
   * the queue nonempty; this reports its end without the empty write #awaitWritten would add (an
   * empty write costs a TLS socket as much as a record). Null on a plain socket.
   */
  written: (() => void) | null;
  /** A report is due once the queued output is written (#awaitWritten). */
  awaiting: boolean;
  /** A dial that has not connected yet: an error now is the connect's, reported by onClose with its errno as `code`. */
  connecting: boolean;
  /**
   * The peer's FIN arrived while paused. Node ends a paused socket with nothing buffered at once;
   * the end is held until reading resumes, as the native backend (which stops reading) sees it.
   */
  endHeld: boolean;
  /**
   * Output not yet handed to the socket, oldest first (#writeStream): while it holds anything, the
   * socket has one slice in flight and every later write, end or close waits here.
   */
  backlog: Uint8Array[] | null;
  /** Bytes in backlog. */
  backlogBytes: number;
  /** What to do once the backlog is written: kEnd, kClose or -1. */
  afterBacklog: number;
}

/**
 * One pending operation, applied in order at flush(). Every op has the same fields (those its kind
 * does not use are null), so the code that applies them sees one object shape.
 */
interface Op {
  kind: number;
  s: Stream | null;
  d: DgramConn | null;
  sock: DgramSocket | null;
  data: Uint8Array | null;
  peer: PortablePeer | null;
}

function op(
  kind: number,
  s: Stream | null,
  d: DgramConn | null,
  data: Uint8Array | null,
  sock: DgramSocket | null = null,
  peer: PortablePeer | null = null,
): Op {
  return { kind, s, d, sock, data, peer };
}

const kWrite = 0;
const kClose = 1;
const kEnd = 2;
const kSendTo = 3;
const kDgramSend = 4;
const kDgramClose = 5;

class PortablePeer implements DatagramPeer {
  readonly #rinfo: RemoteInfo;
  #addr: Addr | null = null;
  constructor(rinfo: RemoteInfo) {
    this.#rinfo = rinfo;
  }
  get addr(): Addr {
    return (this.#addr ??= new Addr('udp', this.#rinfo.address, this.#rinfo.port));
  }
  get port(): number {
    return this.#rinfo.port;
  }
  get host(): string {
    return this.#rinfo.address;
  }
}

interface Member {
  readonly backend: PortableBackend;
  readonly index: number;
}

/** A net.Server shared by every in-process listener that asked for reuseport on one address. */
interface Shared {
  readonly server: Server;
  readonly members: Member[];
  next: number;
  key: string;
}

const sharedByAddress = new Map<string, Shared>();

export class PortableBackend implements Backend {
  readonly name = 'portable' as const;
  readonly #opts: BackendOptions;
  #handler: BackendHandler | null = null;
  #nextId = 1;
  readonly #streams = new Map<number, Stream>();
  /** Dialled UDP connections, by id, until their onClose. */
  readonly #dgramConns = new Map<number, DgramConn>();
  /** Dialled UDP connections whose watchQueue asks for a report after the next flush. */
  #dgramWatched: DgramConn[] = [];
  readonly #servers: { shared: Shared | null; server: Server; path: string }[] = [];
  readonly #dgrams = new Map<number, DgramSocket>();
  readonly #unixPaths = new Map<number, string>();
  /** Indexes of the listeners with `?proxy=true`. */
  readonly #proxyListeners = new Set<number>();
  /** Sockets waiting for their PROXY header, with the function that drops one silently (stop()). */
  readonly #awaitingHeader = new Map<Socket, () => void>();
  /** The sockets under TLS listeners' connections, until they close: stop() ends those still in a handshake. */
  readonly #tlsRaw = new Set<Socket>();
  /** Servers closed by closeListeners(): net.Server.close() settles only once their connections have closed. */
  readonly #serverClosing: Promise<void>[] = [];
  #ops: Op[] = [];
  /** Streams written (or watched) since the last flush: their queues are reported after it. */
  #written: Stream[] = [];
  #stopped = false;

  constructor(opts: BackendOptions) {
    this.#opts = opts;
  }

  start(handler: BackendHandler): void {
    this.#handler = handler;
  }

  async listen(spec: ListenSpec): Promise<Addr> {
    if (spec.network === 'udp') return this.#listenUdp(spec);
    if (spec.proxyProtocol) this.#proxyListeners.add(spec.index);
    const host = await resolveHost(spec);
    if (spec.network === 'unix') {
      await removeStaleSocket(spec.text, spec.path);
      this.#unixPaths.set(spec.index, spec.path);
    }
    const key = `${spec.network}|${spec.family}|${host}|${spec.port}|${spec.path}|${spec.tls}`;
    const existing = spec.reusePort && (spec.port !== 0 || spec.path !== '') ? sharedByAddress.get(key) : undefined;
    if (existing) {
      existing.members.push({ backend: this, index: spec.index });
      this.#servers.push({ shared: existing, server: existing.server, path: '' });
      return boundAddr(spec, existing.server);
    }
    const server = spec.tls
      ? this.#tlsServer(spec)
      : createServer({ allowHalfOpen: true, noDelay: this.#opts.tcpNoDelay });
    const shared: Shared | null = spec.reusePort
      ? { server, members: [{ backend: this, index: spec.index }], next: 0, key }
      : null;
    const accepted = spec.tls ? 'secureConnection' : 'connection';
    if (shared) {
      server.on(accepted, (sock: Socket) => {
        const m = shared.members[shared.next++ % shared.members.length]!;
        m.backend.#accept(sock, m.index);
      });
    } else {
      server.on(accepted, (sock: Socket) => this.#accept(sock, spec.index));
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new ListenError(spec.text, err.code ?? 'EIO', err.message, err)),
      );
      if (spec.network === 'unix') server.listen({ path: spec.path }, resolve);
      else server.listen(listenOptions(spec, host), resolve);
    });
    // Accept failures, where this Node's net.Server surfaces them (Node 20's keeps them to itself:
    // libuv retries, or sheds the connection at EMFILE with its reserve fd).
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.syscall === 'accept') this.#handler?.onAcceptError(spec.index, err.code ?? 'EIO');
    });
    if (shared) {
      const bound = boundAddr(spec, server);
      shared.key = `${spec.network}|${spec.family}|${host}|${bound.port}|${spec.path}|${spec.tls}`;
      sharedByAddress.set(shared.key, shared);
    }
    this.#servers.push({ shared, server, path: spec.network === 'unix' ? spec.path : '' });
    return boundAddr(spec, server);
  }

  /**
   * The node:tls server of a TLS listener, its failed handshakes reported by onTlsError (the
   * socket is destroyed; it never had an id). A handshake is not half-open: a peer's FIN before it
   * is done closes the socket (tlsClientError ECONNRESET); a connection is half-open once secure.
   * Throws TlsConfigError for a configuration OpenSSL refuses.
   */
  #tlsServer(spec: ListenSpec): Server {
    const cfg = this.#opts.tls;
    if (cfg === undefined || cfg === null)
      throw new ListenError(spec.text, 'EINVAL', 'a tls:// address needs ServeOptions.tls (key and cert)');
    const server = createPortableTlsServer(cfg, { allowHalfOpen: false, noDelay: this.#opts.tcpNoDelay });
    server.prependListener('secureConnection', (sock: TLSSocket) => (sock.allowHalfOpen = true));
    server.on('connection', (raw: Socket) => {
      this.#tlsRaw.add(raw);
      raw.once('close', () => this.#tlsRaw.delete(raw));
    });
    server.on('tlsClientError', (err: Error, sock: TLSSocket) => {
      const peer = sock.remoteAddress !== undefined ? new Addr('tcp', sock.remoteAddress, sock.remotePort ?? 0) : null;
      sock.on('error', () => undefined);
      sock.destroy();
      const h = this.#handler;
      if (h === null || this.#stopped) return;
      h.onTlsError?.(spec.index, tlsReason(err), peer, err.message);
      h.onBatchEnd();
    });
    return server;
  }

  write(id: number, data: Uint8Array): void {
    const s = this.#streams.get(id);
    if (s !== undefined && !s.closing) this.#ops.push(op(kWrite, s, null, data));
    else if (s === undefined) {
      const d = this.#dgramConns.get(id);
      if (d !== undefined && !d.closing) this.#ops.push(op(kDgramSend, null, d, data));
    }
  }

  watchQueue(id: number): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      const d = this.#dgramConns.get(id);
      if (d !== undefined && !d.watch) {
        d.watch = true;
        this.#dgramWatched.push(d);
      }
      return;
    }
    s.watch = true;
    if (!s.dirty) {
      s.dirty = true;
      this.#written.push(s);
    }
  }

  pauseReading(id: number, paused: boolean): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      const d = this.#dgramConns.get(id);
      if (d !== undefined) this.#pauseDgram(d, paused);
      return;
    }
    if (s.sock.destroyed) return;
    s.paused = paused;
    if (paused) {
      s.sock.pause();
      return;
    }
    s.sock.resume();
    if (s.endHeld) {
      s.endHeld = false;
      // After the call that resumed has returned, like any other event.
      setImmediate(() => this.#ended(s));
    }
  }

  async closeListeners(): Promise<void> {
    for (const entry of this.#servers.splice(0)) this.#serverClosing.push(this.#closeServer(entry));
    // UDP sockets are listeners too: they stop receiving, as on the native backend.
    for (const sock of this.#dgrams.values())
      this.#serverClosing.push(new Promise<void>((resolve) => sock.close(() => resolve())));
    this.#dgrams.clear();
    // A reply queued just before its socket closed is dropped, as UDP may.
    this.#ops = this.#ops.filter((op) => op.kind !== kSendTo);
  }

  close(id: number, flush: boolean): void {
    const s = this.#streams.get(id);
    if (s === undefined) {
      const d = this.#dgramConns.get(id);
      if (d === undefined || d.closing) return;
      if (flush) this.#ops.push(op(kDgramClose, null, d, null));
      else this.#closeDgram(d, null);
      return;
    }
    if (s.closing) return;
    s.closing = true;
    if (flush) this.#ops.push(op(kClose, s, null, null));
    else s.sock.destroy();
  }

  end(id: number): void {
    const s = this.#streams.get(id);
    if (s !== undefined && !s.closing) this.#ops.push(op(kEnd, s, null, null));
    else if (s === undefined) this.close(id, true); // a datagram socket has no half-close
  }

  setKeepAlive(id: number, ms: number): void {
    const s = this.#streams.get(id);
    if (s !== undefined) s.sock.setKeepAlive(ms > 0, ms);
  }

  sendTo(listenerIndex: number, data: Uint8Array, peer: DatagramPeer): void {
    const sock = this.#dgrams.get(listenerIndex);
    // Larger than any datagram can be: dropped, as the native backend drops it. Handed to dgram,
    // a length past 2^32 would wrap and go out as a short (or empty) datagram instead.
    if (data.length > kMaxDatagramBytes) return;
    if (sock !== undefined) this.#ops.push(op(kSendTo, null, null, data, sock, peer as PortablePeer));
  }

  flush(): void {
    const ops = this.#ops;
    if (ops.length > 0) {
      this.#ops = [];
      this.#apply(ops);
    }
    if (this.#dgramWatched.length > 0) {
      const watched = this.#dgramWatched;
      this.#dgramWatched = [];
      for (const d of watched) {
        d.watch = false;
        // Nothing is ever queued: each send goes to the kernel (or is dropped) as it is made.
        if (this.#dgramConns.has(d.id)) this.#handler!.onQueued(d.id, 0);
      }
    }
    const written = this.#written;
    if (written.length === 0) return;
    this.#written = [];
    for (const s of written) {
      s.dirty = false;
      const queued = queuedBytes(s);
      if (queued !== s.reported || s.watch) {
        s.reported = queued;
        s.watch = false;
        this.#handler!.onQueued(s.id, queued);
      }
      if (queued > 0) this.#awaitWritten(s);
    }
  }

  #apply(ops: Op[]): void {
    for (const op of ops) {
      const kind = op.kind;
      if (kind === kWrite) {
        const s = op.s!;
        if (!s.sock.destroyed) {
          this.#writeStream(s, op.data!);
          if (!s.dirty) {
            s.dirty = true;
            this.#written.push(s);
          }
        }
      } else if (kind === kClose || kind === kEnd) {
        const s = op.s!;
        if (s.backlog !== null) s.afterBacklog = kind;
        else if (kind === kClose) closeFlushed(s.sock);
        else s.sock.end();
      } else if (kind === kSendTo) op.sock!.send(op.data!, op.peer!.port, op.peer!.host);
      else if (kind === kDgramSend) this.#sendDgram(op.d!, op.data!);
      else this.#closeDgram(op.d!, null);
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ops = [];
    const waits: Promise<unknown>[] = [];
    for (const entry of this.#servers.splice(0)) waits.push(this.#closeServer(entry));
    waits.push(...this.#serverClosing.splice(0));
    for (const sock of this.#dgrams.values()) waits.push(new Promise<void>((resolve) => sock.close(() => resolve())));
    for (const s of this.#streams.values()) {
      waits.push(new Promise((resolve) => s.sock.once('close', resolve)));
      s.sock.destroy();
    }
    for (const d of this.#dgramConns.values()) {
      waits.push(new Promise((resolve) => d.sock.once('close', resolve)));
      this.#closeDgram(d, null);
    }
    for (const drop of [...this.#awaitingHeader.values()]) drop();
    for (const raw of this.#tlsRaw) raw.destroy();
    await Promise.all(waits);
  }

  /** Leaves a shared reuseport server, or closes an own one (unlinking its unix socket file). */
  async #closeServer({ shared, server, path }: { shared: Shared | null; server: Server; path: string }): Promise<void> {
    if (shared) {
      const i = shared.members.findIndex((m) => m.backend === this);
      if (i >= 0) shared.members.splice(i, 1);
      if (shared.members.length > 0) return;
      sharedByAddress.delete(shared.key);
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (path) await unlinkSocket(path);
  }

  dial(spec: DialSpec): number | Error {
    const h = this.#handler;
    if (this.#stopped || h === null) return Object.assign(new Error('backend stopped'), { code: 'ECANCELED' });
    if (spec.network === 'udp') return this.#dialUdp(spec, h);
    if (spec.tls !== undefined) return this.#dialTls(spec, h);
    let sock: Socket;
    try {
      sock =
        spec.network === 'unix'
          ? connect({ path: spec.path, allowHalfOpen: true })
          : connect({
              host: spec.host,
              port: spec.port,
              family: spec.family,
              localAddress: spec.localHost || undefined,
              localPort: spec.localPort || undefined,
              noDelay: this.#opts.tcpNoDelay,
              allowHalfOpen: true,
            });
    } catch (err) {
      return err as Error;
    }
    const s = this.#track(sock, h);
    s.connecting = true;
    sock.once('connect', () => {
      s.connecting = false;
      if (s.closing) return;
      const addrs: AddrPair =
        spec.network === 'unix'
          ? { local: new Addr('unix', '', 0, ''), remote: new Addr('unix', '', 0, spec.path) }
          : streamAddrs(sock, undefined);
      this.#wire(s, h, kOriginDial, addrs);
    });
    return s.id;
  }

  /**
   * A udp dial: a dgram socket, bound first when a source is given, then connected. Opens once
   * connect() calls back (no handshake: it only fixes the peer); an error before that is the dial's.
   */
  #dialUdp(spec: DialSpec, h: BackendHandler): number | Error {
    let sock: DgramSocket;
    try {
      sock = createSocket({ type: spec.family === 6 ? 'udp6' : 'udp4' });
    } catch (err) {
      return err as Error;
    }
    const id = this.#nextId++;
    const d: DgramConn = {
      id,
      sock,
      spec,
      err: null,
      opened: false,
      closing: false,
      paused: false,
      held: [],
      watch: false,
    };
    this.#dgramConns.set(id, d);
    sock.on('error', (err: NodeJS.ErrnoException) => this.#dgramFailed(d, err));
    sock.on('close', () => {
      this.#dgramConns.delete(id);
      d.held = [];
      h.onClose(id, d.err);
      h.onBatchEnd();
    });
    sock.on('message', (msg: Buffer) => {
      if (d.closing) return;
      if (d.paused) {
        if (d.held.length < kHeldDatagramsMax) d.held.push(msg);
        return;
      }
      h.onData(id, msg);
      h.onBatchEnd();
    });
    const connect = (): void => {
      if (d.closing) return;
      sock.connect(spec.port, spec.host, (err?: Error) => {
        if (err) {
          this.#dgramFailed(d, err);
          return;
        }
        if (d.closing) return;
        d.opened = true;
        const local = sock.address();
        const remote = sock.remoteAddress();
        h.onOpen(id, kOriginDialDatagram, {
          local: new Addr('udp', local.address, local.port),
          remote: new Addr('udp', remote.address, remote.port),
        });
        h.onBatchEnd();
      });
    };
    if (spec.localHost !== '' || spec.localPort !== 0) {
      sock.bind({ address: spec.localHost || undefined, port: spec.localPort, exclusive: true }, connect);
    } else {
      connect();
    }
    return id;
  }

  /** An error on a udp dial's socket: the connect's before it opened, else datagramError(); it closes. */
  #dgramFailed(d: DgramConn, err: NodeJS.ErrnoException): void {
    if (d.closing) return;
    const code = err.code ?? 'EIO';
    const errno = typeof err.errno === 'number' ? err.errno : 0;
    this.#closeDgram(
      d,
      d.opened ? datagramError(code, errno, err.syscall ?? 'recvmsg', d.spec.host, d.spec.port) : err,
    );
  }

  /** Sends one datagram; a refused send (ECONNREFUSED, ...) closes the connection, a too large one is dropped. */
  #sendDgram(d: DgramConn, data: Uint8Array): void {
    if (d.closing) return;
    d.sock.send(data, (err: Error | null) => {
      const e = err as NodeJS.ErrnoException | null;
      if (e === null || e.code === 'EMSGSIZE' || e.code === 'EAGAIN' || e.code === 'ENOBUFS') return;
      this.#dgramFailed(d, e);
    });
  }

  /** Closes a udp dial's socket once; onClose(id, d.err) follows from its 'close' event. */
  #closeDgram(d: DgramConn, err: Error | null): void {
    if (d.closing) return;
    d.closing = true;
    d.err ??= err;
    d.held = [];
    d.sock.close();
  }

  /** pauseReading for a udp dial: hold datagrams while paused, deliver them in order on resume. */
  #pauseDgram(d: DgramConn, paused: boolean): void {
    d.paused = paused;
    if (paused || d.held.length === 0) return;
    // After the call that resumed has returned, like any other event.
    setImmediate(() => {
      const h = this.#handler;
      while (h !== null && !d.paused && !d.closing && d.held.length > 0) {
        h.onData(d.id, d.held.shift()!);
        h.onBatchEnd();
      }
    });
  }

  /**
   * A TLS dial: connecting until its handshake is done. An error before the TCP connect is the
   * connect's (its errno); one after it, the handshake's (a TlsHandshakeFailure).
   */
  #dialTls(spec: DialSpec, h: BackendHandler): number | Error {
    let sock: TLSSocket;
    try {
      sock = connectTls(spec, this.#opts.tcpNoDelay);
    } catch (err) {
      // node:tls builds the context at once: a PEM it cannot read, a key that does not match.
      return new TlsConfigError('dial options (ca, cert, key, passphrase, ciphers)', tlsReason(err), String(err), {
        cause: err,
      });
    }
    const servername = spec.tls!.servername;
    let tcpUp = false;
    sock.once('connect', () => (tcpUp = true));
    const s = this.#track(sock, h);
    s.connecting = true;
    sock.prependListener('error', (err: Error) => {
      if (tcpUp && s.connecting) s.err ??= new TlsHandshakeFailure(tlsReason(err), err.message, { cause: err });
    });
    sock.once('secureConnect', () => {
      s.connecting = false;
      if (s.closing) return;
      this.#wire(s, h, kOriginDial, { ...streamAddrs(sock, undefined), tls: tlsInfo(sock, servername) });
    });
    return s.id;
  }

  #accept(sock: Socket, listenerIndex: number): void {
    const h = this.#handler;
    if (this.#stopped || h === null) {
      sock.destroy();
      return;
    }
    if (this.#proxyListeners.has(listenerIndex)) {
      this.#awaitHeader(sock, listenerIndex, h);
      return;
    }
    const s = this.#track(sock, h);
    const addrs = streamAddrs(sock, this.#unixPaths.get(listenerIndex));
    // The origin of an accepted connection is its listener's index.
    this.#wire(s, h, listenerIndex, 'encrypted' in sock ? { ...addrs, tls: tlsInfo(sock as TLSSocket, null) } : addrs);
  }

  /**
   * Holds a socket accepted on a PROXY listener until its header is complete: then it opens (with
   * the header's addresses, and the bytes after the header as its first data); a refused header,
   * the deadline, or the peer's end, error or close first destroy it and report onProxyRefused.
   * Every exit removes this wait's listeners and clears its timer.
   */
  #awaitHeader(sock: Socket, listenerIndex: number, h: BackendHandler): void {
    const own = streamAddrs(sock, this.#unixPaths.get(listenerIndex));
    let bytes: Buffer | null = null;
    const finish = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onGone);
      sock.off('error', onGone);
      sock.off('close', onGone);
      this.#awaitingHeader.delete(sock);
    };
    const refuse = (reason: ProxyRefusal): void => {
      finish();
      // A late 'error' from the destroyed socket has nobody to tell.
      sock.on('error', () => undefined);
      sock.destroy();
      h.onProxyRefused(listenerIndex, reason, own.remote);
      h.onBatchEnd();
    };
    const onGone = (): void => refuse('closed');
    const onData = (chunk: Buffer): void => {
      bytes = bytes === null ? chunk : Buffer.concat([bytes, chunk]);
      const r = parseProxyHeader(bytes, kProxyHeaderMaxBytes);
      if (r === 'incomplete') return;
      if ('error' in r) {
        refuse(r.error);
        return;
      }
      finish();
      const rest = bytes.length > r.length ? bytes.subarray(r.length) : null;
      bytes = null;
      // Listeners for the open connection are added in this same call: no 'data' is missed.
      this.#wire(this.#track(sock, h), h, listenerIndex, proxiedAddrs(r, own), rest);
    };
    const timer = setTimeout(() => refuse('timeout'), this.#opts.proxyHeaderTimeoutMs);
    sock.on('data', onData);
    sock.on('end', onGone);
    sock.on('error', onGone);
    sock.on('close', onGone);
    this.#awaitingHeader.set(sock, () => {
      finish();
      sock.on('error', () => undefined);
      sock.destroy();
    });
  }

  /** A new socket's stream record, with the listeners that close it: its id is live until onClose. */
  #track(sock: Socket, h: BackendHandler): Stream {
    const id = this.#nextId++;
    const s: Stream = {
      id,
      sock,
      err: null,
      closing: false,
      reported: 0,
      watch: false,
      dirty: false,
      paused: false,
      awaiting: false,
      written: null,
      connecting: false,
      endHeld: false,
      backlog: null,
      backlogBytes: 0,
      afterBacklog: -1,
    };
    if ('encrypted' in sock) s.written = () => this.#requeued(s);
    this.#streams.set(id, s);
    sock.on('error', (err: NodeJS.ErrnoException) => {
      s.err ??= s.connecting ? err : new ConnectionError(err.code ?? 'EIO', err.message);
    });
    sock.on('close', () => {
      this.#streams.delete(id);
      h.onClose(id, s.err);
      h.onBatchEnd();
    });
    return s;
  }

  /**
   * An open connection's events, then onOpen: the same for accepted and dialled sockets. `first`
   * is input read before the open (what followed a PROXY header), delivered right after onOpen.
   */
  #wire(s: Stream, h: BackendHandler, origin: number, addrs: AddrPair, first: Uint8Array | null = null): void {
    const { id, sock } = s;
    sock.on('data', (chunk: Buffer) => {
      if (s.closing) return;
      h.onData(id, chunk);
      h.onBatchEnd();
    });
    sock.on('end', () => this.#ended(s));
    sock.on('drain', () => this.#requeued(s));
    h.onOpen(id, origin, addrs);
    if (first !== null && !s.closing) h.onData(id, first);
    h.onBatchEnd();
  }

  /**
   * Hands `data` to the socket. A large write goes in slices, each reporting the queue once it is
   * written: net.Socket's writableLength counts a write until all of it is written, so one 48 MiB
   * write to a slow reader would otherwise show no progress (to the idle timeout, to backpressure)
   * until its very end.
   */
  #writeStream(s: Stream, data: Uint8Array): void {
    if (s.backlog !== null) {
      s.backlog.push(data);
      s.backlogBytes += data.length;
      return;
    }
    if (data.length <= kWriteSliceBytes) {
      if (s.written === null) s.sock.write(data);
      else s.sock.write(data, s.written);
      return;
    }
    // Node hands every write buffered behind the one in flight to the kernel as one writev, whose
    // callbacks all run at its end: slices written all at once would report nothing sooner.
    s.backlog = [data.subarray(kWriteSliceBytes)];
    s.backlogBytes = data.length - kWriteSliceBytes;
    s.sock.write(data.subarray(0, kWriteSliceBytes), (err) => this.#sliceWritten(s, err));
  }

  /** A slice of the backlog was written: the next goes, or the end or close that waited for them. */
  #sliceWritten(s: Stream, err: Error | null | undefined): void {
    const backlog = s.backlog;
    if (backlog === null) return;
    const sock = s.sock;
    if (err || sock.destroyed) {
      s.backlog = null;
      s.backlogBytes = 0;
      return;
    }
    const head = backlog[0]!;
    const slice = head.length <= kWriteSliceBytes ? head : head.subarray(0, kWriteSliceBytes);
    if (slice === head) backlog.shift();
    else backlog[0] = head.subarray(kWriteSliceBytes);
    s.backlogBytes -= slice.length;
    sock.write(slice, backlog.length > 0 ? (e) => this.#sliceWritten(s, e) : (s.written ?? undefined));
    if (backlog.length === 0) {
      s.backlog = null;
      const then = s.afterBacklog;
      s.afterBacklog = -1;
      if (then === kClose) closeFlushed(sock);
      else {
        if (then === kEnd) sock.end();
        this.#awaitWritten(s); // the report that the last slice, too, was written
      }
    }
    this.#requeued(s);
  }

  /**
   * Arranges a report once what is queued now has been written. Node emits 'drain' only after a
   * write() that returned false; below its own high mark nothing would tell, so an empty write
   * (or, after end(), 'finish') marks the point: its callback runs once everything before it is
   * written.
   */
  #awaitWritten(s: Stream): void {
    const sock = s.sock;
    if (s.awaiting || sock.writableNeedDrain || sock.destroyed) return;
    // On a TLS socket the last write carries s.written, which reports once it is done.
    if (s.written !== null && !sock.writableEnded) return;
    s.awaiting = true;
    const done = (): void => {
      s.awaiting = false;
      this.#requeued(s);
    };
    if (sock.writableEnded) sock.once('finish', done);
    else sock.write(kEmpty, done);
  }

  /** Reports the queue again after Node has written some of it ('drain', or an awaited write). */
  #requeued(s: Stream): void {
    const h = this.#handler;
    if (h === null || !this.#streams.has(s.id)) return;
    const queued = queuedBytes(s);
    if (queued === s.reported) return;
    s.reported = queued;
    h.onQueued(s.id, queued);
    h.onBatchEnd();
  }

  #ended(s: Stream): void {
    const h = this.#handler;
    if (s.closing || h === null || !this.#streams.has(s.id)) return;
    if (s.paused) {
      s.endHeld = true;
      return;
    }
    h.onEnd(s.id);
    h.onBatchEnd();
  }

  async #listenUdp(spec: ListenSpec): Promise<Addr> {
    const host = await resolveHost(spec);
    const type = spec.family === 4 || (spec.family === 0 && host !== '' && !host.includes(':')) ? 'udp4' : 'udp6';
    const sock = createSocket({ type, reuseAddr: spec.reusePort, ipv6Only: spec.family === 6 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (err: NodeJS.ErrnoException) => {
        sock.close();
        reject(new ListenError(spec.text, err.code ?? 'EIO', err.message, err));
      });
      sock.bind({ port: spec.port, address: host || (type === 'udp4' ? '0.0.0.0' : '::'), exclusive: true }, () =>
        resolve(),
      );
    });
    sock.on('error', () => undefined);
    const h = this.#handler!;
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      h.onDatagram(spec.index, msg, new PortablePeer(rinfo));
      h.onBatchEnd();
    });
    this.#dgrams.set(spec.index, sock);
    const a = sock.address();
    return new Addr('udp', a.address, a.port);
  }
}

function listenOptions(
  spec: ListenSpec,
  host: string,
): { host?: string; port: number; ipv6Only?: boolean; reusePort?: boolean } {
  const o: { host?: string; port: number; ipv6Only?: boolean; reusePort?: boolean } = { port: spec.port };
  if (host !== '') o.host = host;
  else if (spec.family === 4) o.host = '0.0.0.0';
  else if (spec.family === 6) o.host = '::';
  if (spec.family === 6) o.ipv6Only = true;
  if (spec.reusePort) o.reusePort = true;
  return o;
}

function boundAddr(spec: ListenSpec, server: Server): Addr {
  if (spec.network === 'unix') return new Addr('unix', '', 0, spec.path);
  const a = server.address();
  if (a === null || typeof a === 'string') return new Addr('tcp', '', spec.port, '', spec.tls === true);
  return new Addr('tcp', a.address, a.port, '', spec.tls === true);
}

function streamAddrs(sock: Socket, unixPath: string | undefined): AddrPair {
  if (unixPath !== undefined) return { local: new Addr('unix', '', 0, unixPath), remote: new Addr('unix', '', 0, '') };
  return {
    local: new Addr('tcp', sock.localAddress ?? '', sock.localPort ?? 0),
    remote: new Addr('tcp', sock.remoteAddress ?? '', sock.remotePort ?? 0),
  };
}

/**
 * A PROXY header's addresses as the connection's: source and destination for 'proxy' (IPv4-mapped
 * IPv6 written as plain IPv4, as the native backend reports such peers), the socket's own for 'local'.
 */
function proxiedAddrs(header: ProxyHeader, own: AddrPair): AddrPair {
  const proxy: ProxyInfo = Object.freeze({ version: header.version, command: header.command, tlvs: header.tlvs });
  if (header.command === 'local' || header.source === null || header.destination === null)
    return { local: own.local, remote: own.remote, proxy };
  return { local: headerAddr(header.destination), remote: headerAddr(header.source), proxy };
}

function headerAddr(a: ProxyAddress): Addr {
  if ('path' in a) return new Addr('unix', '', 0, a.path);
  const host = a.host.startsWith('::ffff:') && isIPv4(a.host.slice(7)) ? a.host.slice(7) : a.host;
  return new Addr('tcp', host, a.port);
}

/**
 * Closes once everything queued is written: FIN after the last byte, then the fd. Waiting for the
 * peer's FIN, when wanted, is the loop's lingering close (end(), then close without flush).
 */
/** Output the kernel has not taken: what the socket holds and what waits in the backlog. */
function queuedBytes(s: Stream): number {
  return s.sock.destroyed ? 0 : s.sock.writableLength + s.backlogBytes;
}

function closeFlushed(sock: Socket): void {
  if (sock.destroyed) return;
  sock.end(() => sock.destroy());
}
