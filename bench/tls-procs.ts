/**
 * The processes bench/tls.ts runs besides the endpoints (no `run()`: bench/run.js skips
 * this module):
 *
 * - `peer DIR`: the vmmd stand-in of the tests (test/helpers/tls-peer.ts) on
 *   DIR/util/vmmd.sock, in its own process so that it does not share the event loop
 *   of the measuring client;
 * - `floor-server CA CERT KEY`: the floor of the daemons, a minimal node TLS server
 *   (TLS 1.3, client certificate required and verified against CA) that writes one
 *   small frame and closes; prints its port;
 * - `floor-inetd CA CERT KEY`: the floor of the per-connection handler, the same for
 *   the one connection on standard input, then exit (plain node, no flags).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';

const frame = Buffer.from([0, 0, 0, 2, 0x30, 0x00]);

function options(ca: string, cert: string, key: string): tls.TlsOptions {
  return {
    ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key), requestCert: true, rejectUnauthorized: true,
    minVersion: 'TLSv1.3', noDelay: true,
  };
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'peer') {
    const { DaemonPeer } = await import('../test/helpers/tls-peer.js');
    const peer = new DaemonPeer(args[0]);
    await peer.start(['vmmd']);
    // the log of what it received would grow without bound over a long bench
    setInterval(() => { peer.received.length = 0; }, 1000);
    process.stdout.write('ready\n');
    return;
  }
  const [ca, cert, key] = args;
  if (mode === 'floor-server') {
    const server = tls.createServer(options(ca, cert, key), (c) => {
      c.on('error', () => {});
      c.end(frame);
    });
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
    return;
  }
  if (mode === 'floor-inetd') {
    const server = tls.createServer(options(ca, cert, key), (c) => {
      c.on('error', () => {});
      c.on('close', () => process.exit(0));
      c.end(frame);
    });
    server.on('tlsClientError', () => process.exit(1));
    const sock = new net.Socket({ fd: 0, readable: true, writable: true });
    sock.setNoDelay(true);
    server.emit('connection', sock);
    return;
  }
  process.stderr.write(`tls-procs: unknown mode ${mode}\n`);
  process.exit(2);
}

if (require.main === module) void main();
