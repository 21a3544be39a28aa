// Bun TLS echo server, what a Bun user would write: bun bun-tls-echo.ts PORT CERT KEY
// Run by Bun, not Node; the declarations below cover only the Bun API it uses, so that the
// project's tsc (which includes bench/) type-checks it without Bun's own typings.

interface BunTlsSocket {
  data: { pending: Uint8Array[] };
  write(bytes: Uint8Array): number;
  setNoDelay?(on: boolean): void;
  end(): void;
}

interface BunFile {
  readonly size: number;
}

declare const Bun: {
  file(path: string): BunFile;
  listen(options: {
    hostname: string;
    port: number;
    tls: { cert: BunFile; key: BunFile };
    socket: {
      open(socket: BunTlsSocket): void;
      data(socket: BunTlsSocket, bytes: Uint8Array): void;
      drain(socket: BunTlsSocket): void;
      error?(socket: BunTlsSocket, err: Error): void;
    };
  }): unknown;
};

const [port, cert, key] = process.argv.slice(2);

// Writes queued bytes in order; Bun's write takes what it can and returns the count.
function flush(socket: BunTlsSocket): void {
  const pending = socket.data.pending;
  while (pending.length > 0) {
    const head = pending[0]!;
    const n = socket.write(head);
    if (n < head.length) {
      pending[0] = head.subarray(Math.max(n, 0));
      return;
    }
    pending.shift();
  }
}

Bun.listen({
  hostname: '0.0.0.0',
  port: Number(port),
  tls: { cert: Bun.file(cert!), key: Bun.file(key!) },
  socket: {
    open(socket) {
      socket.data = { pending: [] };
      socket.setNoDelay?.(true);
    },
    data(socket, bytes) {
      const pending = socket.data.pending;
      if (pending.length > 0) {
        pending.push(bytes.slice());
        return;
      }
      const n = socket.write(bytes);
      if (n < bytes.length) pending.push(bytes.slice(Math.max(n, 0)));
    },
    drain(socket) {
      flush(socket);
    },
    error(socket) {
      socket.end();
    },
  },
});
console.log('ready');
