// node:http server, the baseline a Node user would write: node node-http.mjs PORT
// The same routes and headers as examples/http: /plaintext and /json (TechEmpower shapes).
// node:http adds Date itself (cached per second) and keeps connections alive.
import http from 'node:http';

const port = Number(process.argv[2] ?? 8080);
const server = http.createServer((req, res) => {
  if (req.url === '/plaintext') {
    res.writeHead(200, { Server: 'node', 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  } else if (req.url === '/json') {
    const body = JSON.stringify({ message: 'Hello, World!' });
    res.writeHead(200, {
      Server: 'node',
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
    res.end('Not Found\n');
  }
});
server.keepAliveTimeout = 60_000;
server.listen({ port, backlog: 4096 }, () => console.log('ready'));
