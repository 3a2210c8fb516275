/**
 * vmmd_influx against a real InfluxDB 1.x (Debian's `influxdb` package): samples written
 * through the HTTP write API are found by a query, with upstream's measurement, tag and
 * field names. Skipped when `influxd` is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDaemon, tempDir, waitFor } from './console-helpers.js';
import { fakeStats, freePort, sample } from './influx-helpers.js';

const influxd = spawnSync('sh', ['-c', 'command -v influxd'], { encoding: 'utf8' }).stdout.trim();

function httpText(method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('vmmd_influx writes to a real InfluxDB through the HTTP write API', { skip: influxd === '' ? 'influxd is not installed (Debian package influxdb)' : false }, async () => {
  const dir = tempDir('alb-influxdb-');
  const [httpPort, rpcPort] = [await freePort(), await freePort()];
  fs.writeFileSync(join(dir, 'influxdb.conf'), [
    'reporting-disabled = true',
    `bind-address = "127.0.0.1:${rpcPort}"`,
    `[meta]\n  dir = "${join(dir, 'meta')}"`,
    `[data]\n  dir = "${join(dir, 'data')}"\n  wal-dir = "${join(dir, 'wal')}"\n  query-log-enabled = false`,
    `[http]\n  bind-address = "127.0.0.1:${httpPort}"\n  log-enabled = false`,
    '[logging]\n  level = "warn"',
    '[monitor]\n  store-enabled = false',
  ].join('\n'));
  const db = spawn(influxd, ['-config', join(dir, 'influxdb.conf')], { stdio: 'ignore' });
  const dbExited = new Promise((r) => db.once('exit', r));
  fs.mkdirSync(join(dir, 'util'));
  // InfluxDB 1.x integers are signed: the sample's -1 (printed unsigned, as upstream does) would be refused
  const stats = await fakeStats(join(dir, 'util', 'stat.sock'), { ...sample, resourceUsage: { ...sample.resourceUsage, nivcsw: 3n } });
  const base = `http://127.0.0.1:${httpPort}`;
  let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    await waitFor('influxd', async () => (await httpText('GET', `${base}/ping`).catch(() => ({ status: 0 }))).status === 204, 30_000);
    assert.equal((await httpText('POST', `${base}/query?q=${encodeURIComponent('CREATE DATABASE albatross')}`)).status, 200);
    d = await startDaemon('vmmd_influx', ['--tmpdir', dir, '--influx-url', `${base}/write?db=albatross`]);
    const query = async (q: string): Promise<string> => (await httpText('GET', `${base}/query?db=albatross&q=${encodeURIComponent(q)}`)).text;
    type Answer = { results: { series?: { tags: { vm: string }; values: unknown[][] }[] }[] };
    let series: NonNullable<Answer['results'][0]['series']> = [];
    await waitFor('samples of both unikernels in InfluxDB', async () => {
      const a = JSON.parse(await query('SELECT maxflt, utime, nivcsw FROM resource_usage GROUP BY vm LIMIT 1')) as Answer;
      series = a.results[0].series ?? [];
      return series.length === 2;
    }, 20_000);
    assert.deepEqual(series.map((s) => s.tags.vm).sort(), ['db', 'web']);
    assert.deepEqual(series[0].values[0].slice(1), [7, 1.25, 3]);
    const ifs = await query('SHOW TAG VALUES FROM interface WITH KEY = "bridge"');
    assert.match(ifs, /"service"/);
    const mem = await query('SELECT last(uptime), last(cow_faults) FROM kinfo_mem');
    assert.match(mem, /"series"/);
  } finally {
    await d?.stop();
    for (const c of stats.conns) c.close();
    stats.server.close();
    db.kill('SIGTERM');
    await dbExited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
