/**
 * Runs the benchmarks: every module bench/<name>.ts (compiled to build/bench/<name>.js)
 * that exports `run()`, in name order, after a header naming the machine. Each
 * benchmark prints its own result lines. `node build/bench/run.js codec` runs only the
 * named ones. A new benchmark needs no registration: add bench/<name>.ts exporting
 * `export async function run(): Promise<void>` (or a synchronous one).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';

export interface Bench {
  run(): void | Promise<void>;
}

/** nproc, CPU model, node version and date, as recorded in bench/RESULTS.md. */
export function machine(): string {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1];
  } catch {
    // not Linux: os.cpus() is the best we have
  }
  return `${cpus().length} CPUs (${model}), node ${process.version}, ${process.platform}, ${new Date().toISOString().slice(0, 16)}Z`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const names = readdirSync(__dirname)
    .filter((f) => f.endsWith('.js') && f !== 'run.js')
    .map((f) => basename(f, '.js'))
    .filter((n) => only.length === 0 || only.includes(n))
    .sort();
  const unknown = only.filter((n) => !names.includes(n));
  if (unknown.length > 0) {
    process.stderr.write(`bench: no benchmark named ${unknown.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`machine: ${machine()}\n`);
  for (const n of names) {
    const mod = require(join(__dirname, `${n}.js`)) as Partial<Bench>;
    if (typeof mod.run !== 'function') continue;
    process.stdout.write(`\n== ${n}\n`);
    const started = performance.now();
    await mod.run();
    process.stdout.write(`(${n}: ${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
