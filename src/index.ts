/**
 * gevent: event-loop network servers for Node.js. See docs/api.md.
 */
export { Addr, parseAddress, type ListenSpec, type Network } from './addr.js';
export {
  AcceptError,
  BackendUnavailableError,
  BadAddressError,
  BufferEmptyError,
  ConnectionError,
  DialError,
  GeventError,
  HandlerError,
  IdleTimeoutError,
  InputLimitError,
  InvalidArgumentError,
  ListenError,
  NoMemoryError,
  OutputLimitError,
  ProxyProtocolError,
  ShutdownError,
  TlsConfigError,
  TlsHandshakeError,
  WorkerError,
} from './errors.js';
export {
  Action,
  LoadBalance,
  type AsyncReply,
  type Conn,
  type ConnOptions,
  type DatagramConn,
  type DialOptions,
  type DroppedConn,
  type Events,
  type LoopInit,
  type LoopStats,
  type OpenedReply,
  type Output,
  type PipeOptions,
  type Reply,
  type Server,
  type ServerStats,
  type TickReply,
} from './events.js';
export { RingBuffer, ringBufferPool, type RingBufferPool } from './ringbuffer.js';
export { listen, serve, type ServeOptions } from './serve.js';
export type { BackendKind } from './backend/select.js';
export type { ProxyInfo, ProxyRefusal, ProxyTlv, TlsInfo } from './backend/backend.js';
export type { DialTlsOptions, Pem, SniCertificate, TlsOptions, TlsVersion } from './tls-options.js';
export { TimingWheel, type Scheduler, type Timer, type TimingWheelOptions } from './timingwheel/index.js';
