// node:https server, the baseline a Node user would write: node node-https.mjs PORT CERT KEY
// The same routes and bodies as node-http.mjs, over TLS with the certificate and key in the PEM
// files CERT and KEY. node:https adds Date itself, keeps connections alive, and closes a
// connection after its response when the request asked for `Connection: close`.
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [port = '8443', cert, key] = process.argv.slice(2);
if (cert === undefined || key === undefined) throw new Error('usage: node node-https.mjs PORT CERT KEY');
const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
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
server.listen({ port: Number(port), backlog: 4096 }, () => console.log('ready'));
