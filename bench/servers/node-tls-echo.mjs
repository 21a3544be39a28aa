// node:tls echo server, the baseline a Node user would write: node-tls-echo.mjs PORT CERT KEY
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [port, cert, key] = process.argv.slice(2);
const server = tls.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.on('tlsClientError', () => undefined);
server.listen({ port: Number(port), backlog: 4096 }, () => console.log('ready'));
