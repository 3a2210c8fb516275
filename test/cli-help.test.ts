/**
 * The clients' help pages and shell completion, from the real binaries: `BINARY
 * SUBCOMMAND --help` is that subcommand's page, every page fits the width, and the bash
 * completion script completes subcommands and options from the binaries' own tables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { optionHelpFor, wrap } from '../src/cli/common.js';

const cli = (b: string): string => path.join(__dirname, '..', 'src', 'cli', `${b}.js`);
interface Out { code: number; stdout: string; stderr: string }
function run(b: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Out> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli(b), ...args], { env: { ...process.env, ...env } }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
    });
  });
}

test('vmmc_local create --help prints the page of create: synopsis, its options with their create meaning, an example; not the manual', async () => {
  const r = await run('vmmc_local', ['create', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^NAME\n  vmmc_local create - create a unikernel\n/);
  assert.match(r.stdout, /SYNOPSIS\n  vmmc_local create NAME IMAGE \[--mem MB\]/);
  assert.match(r.stdout, /  --mem=MB\n      memory \(32\)\.\n/, 'the create part of --mem\'s help, not add-policy\'s');
  assert.match(r.stdout, /\[--no-add-name\]/);
  assert.match(r.stdout, /EXAMPLES\n  vmmc_local create hello hello.hvt/);
  for (const other of ['SUBCOMMANDS', 'add-policy', '--path', '--vmmdev', 'EXIT STATUS']) assert.ok(!r.stdout.includes(other), `${other} is not on create's page`);
  // after other options, and -h too
  const h = await run('vmmc_local', ['--tmpdir', '/x', 'console', 'hello', '-h']);
  assert.match(h.stdout, /^NAME\n  vmmc_local console - console output/);
  assert.match(h.stdout, /\[--no-follow\]/);
  assert.match(h.stdout, /\n  --\[no-\]follow\n      keep printing what arrives/);
});

test('vmmc_bistro, vmmp_request and vmmp_ca SUBCOMMAND --help; the manual lists the subcommands', async () => {
  let r = await run('vmmc_bistro', ['info', '--help']);
  assert.match(r.stdout, /^NAME\n  vmmc_bistro info - information about unikernels\n/);
  assert.match(r.stdout, /COMMON OPTIONS\n  --remote, --destination, /);
  r = await run('vmmp_request', ['create', '--help']);
  assert.match(r.stdout, /^NAME\n  vmmp_request create - create a unikernel\n/);
  assert.match(r.stdout, /--image-later/);
  r = await run('vmmp_request', ['set-block', '--help']);
  assert.match(r.stdout, /SYNOPSIS\n  vmmp_request set-block NAME \[--compression-level N\]/, 'a request carries no FILE');
  r = await run('vmmp_ca', ['sign', '--help']);
  assert.match(r.stdout, /SYNOPSIS\n  vmmp_ca sign CACERT DB CAKEY CSR \[--days N\]\n/);
  assert.match(r.stdout, /--days=N\n      validity in days \(generate: 3650; sign: 365/, 'a help with a parenthesis is kept whole');
  r = await run('vmmc_local', ['--help']);
  assert.match(r.stdout, /SUBCOMMANDS \(vmmc_local SUBCOMMAND --help for one\)\n  info +information about unikernels\n/);
  assert.match(r.stdout, /\n  replace-policy PATH UNIKERNELS\n {32}replace a policy/, 'a wide left cell puts its help on the next line');
});

test('every help page fits the width: COLUMNS, else 80 columns', async () => {
  const pages: [string, string[]][] = [];
  for (const b of ['vmmc_local', 'vmmc_remote', 'vmmc_bistro', 'vmmp_request', 'vmmp_ca']) pages.push([b, ['--help']]);
  for (const s of ['create', 'add-policy', 'stats-add', 'restart']) pages.push(['vmmc_local', [s, '--help']]);
  for (const [width, env] of [[80, {}], [60, { COLUMNS: '60' }]] as const) {
    for (const [b, args] of pages) {
      const r = await run(b, args, env);
      assert.equal(r.code, 0);
      const long = r.stdout.split('\n').filter((l) => l.length > width && !/^\s*\S+$/.test(l));
      assert.deepEqual(long, [], `${b} ${args.join(' ')} at ${width}`);
    }
  }
});

test('optionHelpFor picks the part for a subcommand; wrap keeps words whole', () => {
  const h = 'create, restart: memory (32); add-policy: memory allowed (512).';
  assert.equal(optionHelpFor(h, 'create'), 'memory (32).');
  assert.equal(optionHelpFor(h, 'add-policy'), 'memory allowed (512).');
  assert.equal(optionHelpFor('info, log: the name; a trailing ":" makes it a path.', 'log'), 'the name; a trailing ":" makes it a path.');
  assert.equal(wrap('aaa bbb ccc', 2, 9), '  aaa bbb\n  ccc');
  assert.equal(wrap('aaa bbb ccc', 2, 9, 4), '  aaa bbb\n    ccc');
});

const repo = path.join(__dirname, '..', '..');
const script = path.join(repo, 'packaging', 'completion', 'albatross.bash');

/** What the completion function of BINARY offers for the words (the last one is being completed), run by bash. */
function complete(words: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const bash = [
    'set -u',
    `source ${JSON.stringify(script)}`,
    'f=$(complete -p "$1" | sed -n "s/.*-F \\([^ ]*\\) .*/\\1/p")',
    'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()',
    '"$f"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['-c', bash, 'bash', ...words], { encoding: 'utf8', cwd: repo, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('the completion script is what the binaries\' option tables generate (scripts/completion.mjs)', () => {
  const r = spawnSync(process.execPath, [path.join(repo, 'scripts', 'completion.mjs'), '--stdout'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(script, 'utf8'), r.stdout, 'packaging/completion/albatross.bash is stale: run node scripts/completion.mjs');
});

test('bash completion: complete -p names a function for each client; subcommands, their options and option values', () => {
  const r = spawnSync('bash', ['-c', `source ${JSON.stringify(script)}; complete -p vmmc_local vmmc_remote vmmc_bistro vmmp_request vmmp_ca`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 5);
  assert.match(r.stdout, /^complete -F _albatross_vmmc_local vmmc_local$/m);
  assert.deepEqual(complete(['vmmc_local', 'cr']), ['create', 'create-block']);
  assert.deepEqual(complete(['vmmc_local', 'create', 'hello', 'hello.hvt', '--re']), ['--restart-on-fail', '--restart']);
  assert.deepEqual(complete(['vmmc_local', '--tmpdir', '/run/x', 'console', 'hello', '--no']), ['--no-follow'], 'an option\'s value is not the subcommand');
  assert.deepEqual(complete(['vmmc_local', 'info', '--js']), ['--json', '--json=wire']);
  assert.deepEqual(complete(['vmmc_local', 'info', '--color', '']), ['auto', 'always', 'never']);
  assert.deepEqual(complete(['vmmc_local', 'create', 'x', '--mem', '']), [], 'a number completes to nothing');
  assert.deepEqual(complete(['vmmc_local', 'info', '--pa']), [], '--path is not an option of info');
  assert.deepEqual(complete(['vmmc_remote', '--ti']), ['--timeout']);
  assert.deepEqual(complete(['vmmc_bistro', 'create', '--key-type', 'rsa']), ['rsa2048', 'rsa4096']);
  assert.deepEqual(complete(['vmmp_request', 'console', 'x', '--no']), [], 'a request has no --no-follow');
  assert.deepEqual(complete(['vmmp_ca', 's']), ['sign']);
  assert.deepEqual(complete(['vmmp_ca', 'generate', 'ca', 'db', '--k']), ['--key-type']);
  assert.ok(complete(['vmmc_local', 'create', 'hello', 'pack']).includes('package.json'), 'positionals complete as files');

  // --remote NAME: the sections of the config file
  const cfg = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'completion-')), 'remotes');
  fs.writeFileSync(cfg, 'tmpdir = /run/x\n[prod]\ndestination = a.example\n  [prod-eu] ; second\n[test]\n');
  assert.deepEqual(complete(['vmmc_bistro', 'info', '--remote', 'pr'], { ALBATROSS_CONFIG: cfg }), ['prod', 'prod-eu']);
  assert.deepEqual(complete(['vmmc_remote', '-r', ''], { ALBATROSS_CONFIG: cfg }), ['prod', 'prod-eu', 'test']);
  fs.rmSync(path.dirname(cfg), { recursive: true });
});
