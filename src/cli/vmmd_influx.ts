/**
 * vmmd_influx: statistics from vmmd_stats to InfluxDB (line protocol over TCP or the
 * HTTP write API) and to Prometheus (/metrics) (SEMANTICS.md §9.1).
 */
import { type CliSpec, UsageError, defaultTmpdir, parseCli, runMain } from './common.js';
import { limits } from '../core/limits.js';
import { parseName } from '../core/name.js';
import { stderrLogger, verbosityOf } from '../daemon/server.js';
import { HttpSink, type Sink, TcpSink, parseHostPort } from '../influx/sinks.js';
import { InfluxReporter, servePrometheus } from '../influx/daemon.js';

const spec: CliSpec = {
  binary: 'vmmd_influx',
  synopsis: ['vmmd_influx [--tmpdir=DIR] [--name=NAME] [--no-drop-path] (--influx=HOST[:PORT] | --influx-url=URL [--influx-token=TOKEN] | --prometheus=ADDR:PORT)...'],
  description:
    'Subscribes to the statistics of NAME (default: everything) at DIR/util/stat.sock and writes\n' +
    'each sample as InfluxDB line protocol (measurements resource_usage, kinfo_mem, vmm,\n' +
    'interface, tagged vm and bridge) to a TCP listener (--influx) and/or the HTTP write API\n' +
    '(--influx-url: InfluxDB 1.x http://HOST:8086/write?db=NAME, 2.x\n' +
    'http://HOST:8086/api/v2/write?org=ORG&bucket=BUCKET with --influx-token). With\n' +
    '--prometheus it serves the latest samples at http://ADDR:PORT/metrics. Targets that are\n' +
    `away are retried with backoff; up to ${limits.influxQueueBytes} bytes per target wait meanwhile.`,
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: defaultTmpdir(), help: 'Runtime directory (the socket is DIR/util/stat.sock); ALBATROSS_TMPDIR sets the default.' },
    { name: 'name', alias: 'n', type: 'string', arg: 'NAME', default: ':', help: 'Report the unikernels at or below NAME.' },
    { name: 'no-drop-path', type: 'boolean', help: 'Tag vm with the full name instead of its label.' },
    { name: 'influx', type: 'string', arg: 'HOST[:PORT]', help: 'Line protocol over TCP to HOST (port 8094 by default).' },
    { name: 'influx-url', type: 'string', arg: 'URL', help: 'Line protocol POSTed to this HTTP write URL.' },
    { name: 'influx-token', type: 'string', arg: 'TOKEN', help: 'API token for --influx-url (InfluxDB 2.x), sent as "Authorization: Token TOKEN".' },
    { name: 'prometheus', type: 'string', arg: 'ADDR:PORT', help: 'Serve /metrics for Prometheus on ADDR:PORT.' },
    { name: 'verbose', alias: 'v', type: 'boolean', help: 'Log debug messages too.' },
    { name: 'quiet', alias: 'q', type: 'boolean', help: 'Log nothing.' },
    { name: 'verbosity', type: 'string', arg: 'LEVEL', help: 'Log up to LEVEL: quiet, error, warning, info or debug (default info).' },
  ],
};

runMain(spec.binary, async () => {
  const o = parseCli(spec);
  const log = stderrLogger(spec.binary, verbosityOf(o));
  const name = parseName(o.name as string);
  if (!name.ok) throw new UsageError(`--name: ${name.error}`);
  const sinks: Sink[] = [];
  if (o.influx !== undefined) {
    const t = parseHostPort(o.influx as string, 8094);
    if (!t.ok) throw new UsageError(`--influx: ${t.error}`);
    sinks.push(new TcpSink(t.value, log, limits.influxQueueBytes));
  }
  if (o['influx-url'] !== undefined) {
    let url: URL;
    try {
      url = new URL(o['influx-url'] as string);
    } catch {
      throw new UsageError(`--influx-url: not a URL: ${String(o['influx-url'])}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--influx-url: expected an http or https URL');
    sinks.push(new HttpSink(url, o['influx-token'] as string | undefined, log, limits.influxQueueBytes));
  } else if (o['influx-token'] !== undefined) throw new UsageError('--influx-token needs --influx-url');
  if (sinks.length === 0 && o.prometheus === undefined) throw new UsageError('influx host not provided: give --influx, --influx-url or --prometheus');
  const reporter = new InfluxReporter({ tmpdir: o.tmpdir as string, name: name.value, dropPath: o['no-drop-path'] !== true, sinks, log });
  if (o.prometheus !== undefined) {
    const p = parseHostPort(o.prometheus as string, 9100);
    if (!p.ok) throw new UsageError(`--prometheus: ${p.error}`);
    try {
      await servePrometheus(reporter, p.value, log);
    } catch (e) {
      log('error', `cannot serve /metrics on ${o.prometheus as string}: ${(e as Error).message}`);
      return 1;
    }
  }
  const stop = (): void => {
    reporter.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await reporter.run();
  return 0;
});
