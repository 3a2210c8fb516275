// `npm run prepare`: builds after `npm ci` / `npm install` in a checkout. npm also runs
// prepare on `npm pack` and `npm publish`, right after prepack, which has just built: once is enough.
import { spawnSync } from 'node:child_process';

if (['pack', 'publish'].includes(process.env.npm_command ?? '')) process.exit(0);
const r = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
