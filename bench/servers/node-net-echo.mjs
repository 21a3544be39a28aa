// node:net echo server, the baseline a Node user would write: node-net-echo.mjs PORT
import net from 'node:net';

const port = Number(process.argv[2] ?? 5007);
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.listen({ port, backlog: 4096 }, () => console.log('ready'));
