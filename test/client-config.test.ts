/**
 * The config file of named remotes (src/client/config.ts): the INI form, relative paths,
 * and each malformed file refused with its line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configPath, parseConfig } from '../src/client/config.js';
import { unwrap } from '../src/core/result.js';

test('parseConfig: global tmpdir, remotes, comments, paths relative to the file', () => {
  const c = unwrap(parseConfig('# c\ntmpdir = run\n\n[prod]\ndestination = a.example:1025  # the host\nserver-ca = "/etc/ca.pem"\nkey = keys/k.key\n; x\n[b]\n', '/h/.config/albatross/remotes', '/h/.config/albatross'));
  assert.equal(c.tmpdir, '/h/.config/albatross/run');
  assert.deepEqual(c.remotes.get('prod'), { name: 'prod', destination: 'a.example:1025', 'server-ca': '/etc/ca.pem', key: '/h/.config/albatross/keys/k.key' });
  assert.deepEqual([...c.remotes.keys()], ['prod', 'b']);
});

test('parseConfig refuses what it does not know, with the line', () => {
  const bad = (text: string): string => {
    const r = parseConfig(text, 'F', '/');
    assert.ok(!r.ok, text);
    return r.error;
  };
  assert.equal(bad('destination = x\n'), 'F: line 1: destination outside a [remote] section (only tmpdir is global)');
  assert.equal(bad('[a]\nport = 1\n'), 'F: line 2: unknown key port (one of destination, server-ca, ca, ca-key, cert, key)');
  assert.equal(bad('[a]\n[a]\n'), 'F: line 2: remote a defined twice');
  assert.equal(bad('[a b]\n'), 'F: line 1: remote name "a b": expected letters, digits, ".", "_" and "-"');
  assert.equal(bad('[a]\nkey =\n'), 'F: line 2: key has no value');
  assert.equal(bad('[a]\njust words\n'), 'F: line 2: expected [NAME] or KEY = VALUE, got "just words"');
  assert.match(bad('[a]\n-----BEGIN PRIVATE KEY-----\n'), /^F: line 2: PEM text/);
});

test('configPath: ALBATROSS_CONFIG, else XDG_CONFIG_HOME, else ~/.config', () => {
  assert.equal(configPath({ ALBATROSS_CONFIG: '/x/r', XDG_CONFIG_HOME: '/y', HOME: '/h' }), '/x/r');
  assert.equal(configPath({ XDG_CONFIG_HOME: '/y', HOME: '/h' }), '/y/albatross/remotes');
  assert.equal(configPath({ HOME: '/h' }), '/h/.config/albatross/remotes');
});
