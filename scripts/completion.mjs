// `node scripts/completion.mjs [--stdout]`: writes packaging/completion/albatross.bash, the bash
// completion of the clients, from the option tables of the built binaries (`--completion-table`,
// src/cli/completion.ts). Run after `npm run build` when options change; a test checks it is current.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLIENTS = ['vmmc_local', 'vmmc_remote', 'vmmc_bistro', 'vmmp_request', 'vmmp_ca'];
const { completionScript } = createRequire(import.meta.url)(join(root, 'build', 'src', 'cli', 'completion.js'));
const tables = CLIENTS.map((b) => JSON.parse(execFileSync(process.execPath, [join(root, 'build', 'src', 'cli', `${b}.js`), '--completion-table'], { encoding: 'utf8' })));
const text = completionScript(tables);
if (process.argv.includes('--stdout')) process.stdout.write(text);
else writeFileSync(join(root, 'packaging', 'completion', 'albatross.bash'), text);
