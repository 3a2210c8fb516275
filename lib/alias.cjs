'use strict';
/**
 * Runs one of our binaries under upstream Albatross's name (bin/albatrossd, ...): the
 * command line is translated by dist/upstream.js (src/cli/upstream.ts), then the binary's
 * bundle runs through lib/launch.cjs as if it had been started itself.
 */
const fs = require('node:fs');
const path = require('node:path');
const launch = require('./launch.cjs');

/** Under inetd standard error is the client's socket: nothing is written there then. */
function say(line) {
  try {
    if (fs.fstatSync(2).isSocket()) return;
  } catch {
    return;
  }
  process.stderr.write(`${line}\n`);
}

module.exports = function alias(root, name) {
  let translate;
  try {
    ({ translate } = require(path.join(root, 'dist', 'upstream.js')));
  } catch {
    say(`albatross-ts is not built: run npm ci (or npm run build) in ${root}`);
    process.exit(2);
  }
  const t = translate(name, process.argv.slice(2));
  if (t.kind === 'print') {
    process.stdout.write(t.text);
    process.exit(0);
  }
  if (t.kind === 'error') {
    say(`${name}: ${t.message} (see ${name} --help)`);
    process.exit(124);
  }
  process.argv.splice(2, process.argv.length - 2, ...t.args);
  launch(root, t.binary);
};
