// node:http server, the baseline a Node user would write: node node-http.mjs PORT [CERT KEY]
// The same routes and headers as examples/http: /plaintext and /json (TechEmpower shapes).
// node:http adds Date itself (cached per second) and keeps connections alive. With CERT and KEY
// (PEM files) it is node:https on `https.createServer`, the same handler over TLS; it then closes a
// connection after its response when the request asked for `Connection: close`, as over TCP.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const [port = '8080', cert, key] = process.argv.slice(2);
if ((cert === undefined) !== (key === undefined)) throw new Error('usage: node node-http.mjs PORT [CERT KEY]');

function handle(req, res) {
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
}

const server =
  cert === undefined
    ? http.createServer(handle)
    : https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, handle);
server.keepAliveTimeout = 60_000;
server.listen({ port: Number(port), backlog: 4096 }, () => console.log('ready'));
