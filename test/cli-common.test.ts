import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCli, helpText, UsageError, type CliSpec } from '../src/cli/common.js';

const spec: CliSpec = {
  binary: 'demo',
  synopsis: ['demo [OPTIONS] NAME'],
  description: 'A demo.',
  options: [
    { name: 'tmpdir', type: 'string', arg: 'DIR', default: '/run/albatross', help: 'Run directory.' },
    { name: 'mem', type: 'number', default: 32, help: 'Memory in MB.' },
    { name: 'cpu', type: 'numbers', help: 'CPU id.' },
    { name: 'arg', type: 'strings', help: 'Argument.' },
    { name: 'force', alias: 'f', type: 'boolean', help: 'Replace.' },
  ],
  examples: ['demo --mem 64 hello'],
};

test('parseCli: defaults, repeatable options, aliases, positionals', () => {
  const o = parseCli(spec, ['hello', '--cpu', '1', '--cpu=2', '--arg', 'a', '-f', '--mem=64']);
  assert.deepEqual(o._, ['hello']);
  assert.equal(o.tmpdir, '/run/albatross');
  assert.equal(o.mem, 64);
  assert.deepEqual(o.cpu, [1, 2]);
  assert.deepEqual(o.arg, ['a']);
  assert.equal(o.force, true);
  assert.deepEqual(parseCli(spec, ['x', '--', '--not-an-option'])._, ['x', '--not-an-option']);
});

test('parseCli: unknown options, bad numbers and repeated single options are usage errors', () => {
  assert.throws(() => parseCli(spec, ['--nope']), (e) => e instanceof UsageError && /unknown option --nope/.test(e.message));
  assert.throws(() => parseCli(spec, ['--mem', 'lots']), /expected an integer/);
  assert.throws(() => parseCli(spec, ['--mem', '1', '--mem', '2']), /more than once/);
  assert.throws(() => parseCli(spec, ['--cpu', '99999999999999999999']), /out of range/);
});

test('helpText lists every option with its default and the examples', () => {
  const h = helpText(spec);
  for (const s of ['--tmpdir=DIR', '(default: /run/albatross)', '-f, --force', '(repeatable)', 'demo --mem 64 hello', '--help', '--version']) assert.ok(h.includes(s), s);
});
