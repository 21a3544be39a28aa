// node:dgram echo server, the UDP baseline: node-dgram-echo.mjs PORT
import dgram from 'node:dgram';

const port = Number(process.argv[2] ?? 5007);
const socket = dgram.createSocket('udp4');
socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
socket.on('error', (err) => console.error(err.message));
socket.bind(port, () => console.log('ready'));
