// Bun HTTP server, what a Bun user would write: bun bun-http.ts PORT [CERT KEY]
// The same routes and headers as examples/http: /plaintext and /json (TechEmpower shapes); Bun
// adds Date itself. With CERT and KEY (PEM files) it serves HTTPS (`Bun.serve({ tls })`). Run by
// Bun, not Node; the declarations below cover only the Bun API it uses, so that the project's tsc
// (which includes bench/) type-checks it without Bun's own typings.

declare const Bun: {
  serve(options: {
    hostname: string;
    port: number;
    tls?: { cert: unknown; key: unknown };
    fetch(req: Request): Response;
  }): unknown;
  file(path: string): unknown;
};

const [port = '8080', cert, key] = process.argv.slice(2);

Bun.serve({
  hostname: '0.0.0.0',
  port: Number(port),
  ...(cert !== undefined && key !== undefined ? { tls: { cert: Bun.file(cert), key: Bun.file(key) } } : {}),
  fetch(req) {
    const path = req.url.slice(req.url.indexOf('/', 8));
    if (path === '/plaintext') {
      return new Response('Hello, World!', { headers: { Server: 'bun', 'Content-Type': 'text/plain' } });
    }
    if (path === '/json') {
      return new Response(JSON.stringify({ message: 'Hello, World!' }), {
        headers: { Server: 'bun', 'Content-Type': 'application/json' },
      });
    }
    return new Response('Not Found\n', { status: 404 });
  },
});
console.log('ready');
