import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as http from 'node:http';
import { join } from 'node:path';
import { unwrap } from '../src/core/result.js';
import { parseName } from '../src/core/name.js';
import { escapeKey, prometheusText, samplePayload, vmTag } from '../src/influx/lineproto.js';
import { BoundedQueue, parseHostPort } from '../src/influx/sinks.js';
import { startDaemon, tempDir, waitFor } from './console-helpers.js';
import { fakeStats, freePort, sample } from './influx-helpers.js';

const nm = (s: string) => unwrap(parseName(s));

test('line protocol: upstream measurement, tag and field names, order and number formats', () => {
  const p = samplePayload({ vm: 'web', name: 'dept:web' }, sample, 1_700_000_100_500);
  assert.equal(p, [
    'resource_usage,vm=web,name=dept:web utime=1.250000,stime=0.031000,maxrss=3210i,ixrss=0i,idrss=0i,isrss=0i,minflt=100i,maxflt=7i,nswap=0i,inblock=0i,outblock=0i,msgsnd=0i,msgrcv=0i,nsignals=0i,nvcsw=150i,nivcsw=18446744073709551615i',
    'kinfo_mem,vm=web,name=dept:web vsize=123456789i,rss=3210i,tsize=52i,dsize=2400i,ssize=2400i,cow_faults=0i,runtime=2810000i,uptime=100.500000',
    'vmm,vm=web,name=dept:web vcpu\\ total\\ runtime=5i',
    'interface,vm=web,bridge=service,name=dept:web send_queue_length=0i,max_send_queue_length=0i,send_queue_drops=0i,mtu=1500i,baudrate=0i,vm_to_host_packets=10i,vm_to_host_errors=0i,vm_to_host_bytes=1000i,vm_to_host_mcast=1i,vm_to_host_dropped=2i,collisions=0i,host_to_vm_packets=20i,host_to_vm_errors=0i,host_to_vm_bytes=2000i,host_to_vm_mcast=0i,host_to_vm_dropped=3i',
    '',
  ].join('\n'));
  assert.equal(vmTag(nm('dept:web'), true), 'web');
  assert.equal(vmTag(nm('dept:web'), false), 'dept:web');
  assert.equal(escapeKey('a,b=c d'), 'a\\,b\\=c\\ d');
  assert.deepEqual(unwrap(parseHostPort('[::1]:9', 1)), { host: '::1', port: 9 });
  assert.deepEqual(unwrap(parseHostPort('influx', 8094)), { host: 'influx', port: 8094 });
  assert.ok(!parseHostPort('a:b:c', 1).ok);
  const q = new BoundedQueue(10);
  for (const s of ['aaaa', 'bbbb', 'cccc']) q.push(s);
  assert.equal(q.takeAll(), 'bbbbcccc');
  assert.equal(q.dropped, 1);
  const prom = prometheusText(new Map([['dept:web', { tags: { vm: 'web', name: 'dept:web' }, data: sample, at: 0 }]]), 1_700_000_100_000);
  assert.match(prom, /^albatross_interface_vm_to_host_bytes_total\{vm="web",bridge="service",name="dept:web"\} 1000$/m);
  assert.match(prom, /^# HELP albatross_rss Resident set size in pages /m, 'the unit of rss is in its help text');
  assert.match(prom, /^# HELP albatross_max_rss Resident set size in pages /m);
  assert.match(prom, /^# TYPE albatross_cpu_user_seconds_total counter$/m);
});

test('vmmd_influx: line protocol to a TCP listener (started late), the HTTP write API (retried after a 500), /metrics', async () => {
  const dir = tempDir('alb-influx-');
  fs.mkdirSync(join(dir, 'util'));
  const stats = await fakeStats(join(dir, 'util', 'stat.sock'));
  const tcpPort = await freePort();
  const promPort = await freePort();
  // HTTP write API: the first request fails with 500, later ones succeed
  const requests: { url: string; auth?: string; body: string; status: number }[] = [];
  const httpServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const status = requests.length === 0 ? 500 : 204;
      requests.push({ url: req.url ?? '', auth: req.headers.authorization, body, status });
      res.writeHead(status);
      res.end(status === 500 ? 'try again' : '');
    });
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const httpPort = (httpServer.address() as net.AddressInfo).port;
  const d = await startDaemon('vmmd_influx', [
    '--tmpdir', dir, '--name', 'dept:', '--influx', `127.0.0.1:${tcpPort}`,
    '--influx-url', `http://127.0.0.1:${httpPort}/api/v2/write?org=o&bucket=b`, '--influx-token', 'secret',
    '--prometheus', `127.0.0.1:${promPort}`,
  ]);
  let tcp: net.Server | undefined;
  const tcpSockets: net.Socket[] = [];
  try {
    await waitFor('subscribed', () => stats.subscriptions.length === 1);
    assert.equal(stats.subscriptions[0], '1', 'sequence numbers count from 1');
    // the TCP listener appears only now: the reporter retries with backoff
    let received = '';
    tcp = net.createServer((s) => {
      tcpSockets.push(s);
      s.on('data', (b: Buffer) => (received += b.toString()));
    });
    await new Promise<void>((r) => (tcp as net.Server).listen(tcpPort, '127.0.0.1', r));
    await waitFor('line protocol over TCP', () => received.includes('vm=db') && received.includes('vm=web'), 10_000);
    const lines = received.split('\n').filter((l) => l !== '');
    assert.ok(lines.every((l) => /^(resource_usage|kinfo_mem|vmm|interface),vm=(web|db)[, ]/.test(l)), lines[0]);
    assert.ok(lines.every((l) => /,name=dept:(web|db) /.test(l)), lines[0]);
    assert.ok(received.endsWith('\n'));
    await waitFor('HTTP writes', () => requests.some((r) => r.status === 204), 10_000);
    const okReq = requests.find((r) => r.status === 204);
    assert.equal(okReq?.url, '/api/v2/write?org=o&bucket=b');
    assert.equal(okReq?.auth, 'Token secret');
    assert.match(okReq?.body ?? '', /^resource_usage,vm=(web|db),name=dept:(web|db) utime=1\.250000,/m);
    // the body of the failed request was sent again
    const first = requests[0].body.split('\n')[0];
    assert.ok(requests.slice(1).some((r) => r.body.includes(first)));
    const metrics = await new Promise<string>((resolve, reject) => {
      http.get(`http://127.0.0.1:${promPort}/metrics`, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    assert.match(metrics, /^albatross_interface_host_to_vm_bytes_total\{vm="web",bridge="service",name="dept:web"\} 2000$/m);
    assert.match(metrics, /^albatross_virtual_memory_bytes\{vm="db",name="dept:db"\} 123456789$/m);
    // the stats daemon restarts: the reporter subscribes again, with the next sequence number
    for (const c of stats.conns) c.close();
    await waitFor('resubscribed', () => stats.subscriptions.length === 2, 10_000);
    assert.equal(stats.subscriptions[1], '2');
    // a write error on the TCP side does not end the process
    for (const s of tcpSockets) s.destroy();
    const before = received.length;
    await waitFor('TCP reconnected', () => received.length > before, 10_000);
    assert.equal(d.proc.exitCode, null);
  } finally {
    await d.stop();
    for (const s of tcpSockets) s.destroy();
    tcp?.close();
    httpServer.closeAllConnections();
    httpServer.close();
    for (const c of stats.conns) c.close();
    stats.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function getMetrics(port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/metrics`, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
}

test('vmmd_influx: two tenants with the same label stay two series (vm tag plus the full name)', async () => {
  const dir = tempDir('alb-influx-');
  fs.mkdirSync(join(dir, 'util'));
  const stats = await fakeStats(join(dir, 'util', 'stat.sock'), sample, ['acme:web', 'globex:web']);
  const tcpPort = await freePort();
  const promPort = await freePort();
  let received = '';
  const tcpSockets: net.Socket[] = [];
  const tcp = net.createServer((s) => {
    tcpSockets.push(s);
    s.on('data', (b: Buffer) => (received += b.toString()));
  });
  await new Promise<void>((r) => tcp.listen(tcpPort, '127.0.0.1', r));
  const d = await startDaemon('vmmd_influx', ['--tmpdir', dir, '--influx', `127.0.0.1:${tcpPort}`, '--prometheus', `127.0.0.1:${promPort}`]);
  try {
    await waitFor('both tenants over TCP', () => received.includes('name=acme:web') && received.includes('name=globex:web'), 10_000);
    assert.match(received, /^resource_usage,vm=web,name=acme:web utime=/m, 'upstream\'s vm tag is kept');
    assert.match(received, /^resource_usage,vm=web,name=globex:web utime=/m);
    let metrics = '';
    await waitFor('both tenants in /metrics', async () => {
      metrics = await getMetrics(promPort);
      return metrics.includes('globex:web') && metrics.includes('acme:web');
    }, 10_000);
    const rows = metrics.split('\n').filter((l) => l.startsWith('albatross_virtual_memory_bytes{'));
    assert.deepEqual(rows, ['albatross_virtual_memory_bytes{vm="web",name="acme:web"} 123456789', 'albatross_virtual_memory_bytes{vm="web",name="globex:web"} 123456789']);
  } finally {
    await d.stop();
    for (const s of tcpSockets) s.destroy();
    tcp.close();
    for (const c of stats.conns) c.close();
    stats.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vmmd_influx refuses to start without a target', async () => {
  const d = await startDaemon('vmmd_influx', ['--tmpdir', '/nonexistent']);
  assert.equal(await d.exited, 124);
  assert.match(d.stderr(), /influx host not provided/);
});
