// Bun echo server, what a Bun user would write: bun bun-echo.ts PORT [--udp | --tls CERT KEY]
// Run by Bun, not Node; the declarations below cover only the Bun API it uses, so that the
// project's tsc (which includes bench/) type-checks it without Bun's own typings.

interface BunTcpSocket {
  data: { pending: Uint8Array[] };
  write(bytes: Uint8Array): number;
  setNoDelay?(on: boolean): void;
  end(): void;
}

interface BunUdpSocket {
  send(bytes: Uint8Array, port: number, address: string): boolean;
}

interface BunFile {
  readonly size: number;
}

declare const Bun: {
  file(path: string): BunFile;
  listen(options: {
    hostname: string;
    port: number;
    tls?: { cert: BunFile; key: BunFile };
    socket: {
      open(socket: BunTcpSocket): void;
      data(socket: BunTcpSocket, bytes: Uint8Array): void;
      drain(socket: BunTcpSocket): void;
      error?(socket: BunTcpSocket, err: Error): void;
    };
  }): unknown;
  udpSocket(options: {
    hostname: string;
    port: number;
    socket: { data(socket: BunUdpSocket, bytes: Uint8Array, port: number, address: string): void };
  }): Promise<unknown>;
};

const port = Number(process.argv[2] ?? 5007);
const udp = process.argv.includes('--udp');
const tlsAt = process.argv.indexOf('--tls');
const tls =
  tlsAt < 0 ? undefined : { cert: Bun.file(process.argv[tlsAt + 1]!), key: Bun.file(process.argv[tlsAt + 2]!) };

// Writes queued bytes in order; Bun's write takes what the kernel accepts and returns the count.
function flush(socket: BunTcpSocket): void {
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

if (udp) {
  await Bun.udpSocket({
    hostname: '0.0.0.0',
    port,
    socket: {
      data(socket, bytes, fromPort, fromAddress) {
        try {
          socket.send(bytes, fromPort, fromAddress);
        } catch {
          // the sender has gone (ECONNREFUSED from an earlier datagram): UDP may drop this one
        }
      },
    },
  });
} else {
  Bun.listen({
    hostname: '0.0.0.0',
    port,
    ...(tls ? { tls } : {}),
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
}
console.log('ready');
