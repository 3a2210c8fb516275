// Bundles each binary's entry src/cli/<binary>.ts into one minified file dist/<binary>.js,
// which bin/<binary> loads. One esbuild call for all entries; entries that do not exist yet
// are skipped. Prints each bundle's size and the packages it pulled in, so that a heavy
// import in a binary that does not need it is noticed at build time.
import { build } from 'esbuild';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const binaries = [
  'vmmd', 'vmmd_console', 'vmmd_log', 'vmmd_stats', 'vmmd_influx', 'vmmd_tls', 'vmmd_tls_inetd',
  'vmmc_local', 'vmmc_remote', 'vmmc_bistro', 'vmmp_request', 'vmmp_ca', 'vmmc_inspect', 'vmmd_web',
];
/** Bundles that are not binaries: upstream.js translates upstream's command lines for bin/albatross* (lib/alias.cjs). */
export const libraries = ['upstream'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const present = [...binaries, ...libraries].filter((b) => existsSync(join(root, 'src', 'cli', `${b}.ts`)));
const missing = [...binaries, ...libraries].filter((b) => !present.includes(b));

// No stale bundle outlives its entry; the others are overwritten in place (never deleted
// first, so that a binary that is running, e.g. under a test, stays there during a rebuild).
if (existsSync(join(root, 'dist'))) {
  for (const f of readdirSync(join(root, 'dist'))) {
    const b = f.replace(/\.js(\.map)?$/, '');
    if (![...binaries, ...libraries].includes(b) || !existsSync(join(root, 'src', 'cli', `${b}.ts`))) rmSync(join(root, 'dist', f), { force: true });
  }
}

const started = performance.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: Object.fromEntries(present.map((b) => [b, `src/cli/${b}.ts`])),
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  define: { ALBATROSS_VERSION: JSON.stringify(version) },
  metafile: true,
  logLevel: 'warning',
});
const elapsed = Math.round(performance.now() - started);

const kB = (n) => `${(n / 1024).toFixed(1)} kB`;
const packageOf = (input) => {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m ? m[1] : undefined;
};

console.log(`bundled ${present.length} entries into dist/ in ${elapsed} ms (version ${version}):`);
const width = Math.max(...present.map((b) => `dist/${b}.js`.length));
for (const b of present) {
  const out = result.metafile.outputs[`dist/${b}.js`];
  const packages = [...new Set(Object.keys(out.inputs).map(packageOf).filter(Boolean))].sort();
  const uses = packages.length > 0 ? `  (${packages.join(', ')})` : '';
  console.log(`  ${`dist/${b}.js`.padEnd(width)} ${kB(out.bytes).padStart(9)}${uses}`);
}
for (const b of missing) console.log(`  skipped ${b}: no src/cli/${b}.ts yet`);
