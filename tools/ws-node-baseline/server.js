'use strict';
// Baseline WebSocket server for the yjt connection benchmark.
//
// It accepts WebSocket connections on 127.0.0.1:PORT at path /ws, agrees to
// the "yjt.v1" subprotocol when the client offers it, echoes whatever it
// receives and otherwise does nothing.  Its resident memory per idle
// connection is the reference figure that yjtd is compared against
// (see tools/bench-conns.sh).  Once listening it prints one JSON line with
// its pid and port on stdout.
//
// Usage: node server.js --port PORT      (PORT 0 picks a free port)

const { WebSocketServer } = require('ws');

const host = '127.0.0.1';
const subprotocol = 'yjt.v1';

function parse_port(argv) {
    let port = 0;
    for (let i = 2; i < argv.length; i++) {
        const arg = argv[i];
        if (arg === '--port' && i + 1 < argv.length) {
            port = Number(argv[++i]);
        } else if (arg.startsWith('--port=')) {
            port = Number(arg.slice('--port='.length));
        } else if (arg === '--help' || arg === '-h') {
            process.stdout.write('usage: node server.js --port PORT\n');
            process.exit(0);
        } else {
            process.stderr.write(`server.js: unknown argument ${arg}\n`);
            process.exit(2);
        }
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
        process.stderr.write('server.js: --port must be an integer 0..65535\n');
        process.exit(2);
    }
    return port;
}

const port = parse_port(process.argv);

const server = new WebSocketServer({
    host: host,
    port: port,
    path: '/ws',
    backlog: 4096,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(subprotocol) ? subprotocol : false),
});

let open_count = 0;

server.on('connection', (socket) => {
    open_count++;
    socket.on('message', (data, is_binary) => {
        socket.send(data, { binary: is_binary });
    });
    socket.on('error', () => {});
    socket.on('close', () => {
        open_count--;
    });
});

server.on('listening', () => {
    const address = server.address();
    process.stdout.write(JSON.stringify({
        event: 'listening',
        host: address.address,
        port: address.port,
        pid: process.pid,
    }) + '\n');
});

server.on('error', (err) => {
    process.stderr.write(`server.js: ${err.message}\n`);
    process.exit(1);
});

function shut_down(signal) {
    process.stderr.write(`server.js: ${signal}, closing ${open_count} connections\n`);
    for (const socket of server.clients) {
        socket.terminate();
    }
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', () => shut_down('SIGTERM'));
process.on('SIGINT', () => shut_down('SIGINT'));
