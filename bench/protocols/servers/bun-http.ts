// Bun HTTP server, what a Bun user would write: bun bun-http.ts PORT
// The same routes and headers as examples/http: /plaintext and /json (TechEmpower shapes); Bun
// adds Date itself. Run by Bun, not Node; the declaration below covers only the Bun API it uses,
// so that the project's tsc (which includes bench/) type-checks it without Bun's own typings.

declare const Bun: {
  serve(options: { hostname: string; port: number; fetch(req: Request): Response }): unknown;
};

const port = Number(process.argv[2] ?? 8080);

Bun.serve({
  hostname: '0.0.0.0',
  port,
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
