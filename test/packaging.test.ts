/**
 * The defaults of the binaries agree with the units in packaging/: `vmmd_log --read-only`
 * without --logfile reads the file vmmd_log.service writes (the unit makes /var/log/albatross
 * a directory: LogsDirectory=albatross).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './helpers/vmmd.js';

test('vmmd_log\'s default --logfile is the file of vmmd_log.service, inside its LogsDirectory', () => {
  const unit = fs.readFileSync(path.join(repoRoot, 'packaging', 'systemd', 'vmmd_log.service'), 'utf8');
  const logfile = /^ExecStart=.*--logfile (\S+)/m.exec(unit)?.[1];
  const logsDirectory = /^LogsDirectory=(\S+)$/m.exec(unit)?.[1];
  assert.equal(path.dirname(logfile ?? ''), `/var/log/${logsDirectory}`);
  const help = execFileSync(process.execPath, [path.join(repoRoot, 'build', 'src', 'cli', 'vmmd_log.js'), '--help'], { encoding: 'utf8' });
  // the help of an option may wrap over several lines (to the width)
  const fallback = /--logfile=FILE\n(?: {6}.*\n)*? {6}.*\(default: (\S+)\)/.exec(help)?.[1];
  assert.equal(fallback, logfile);
  const rc = fs.readFileSync(path.join(repoRoot, 'packaging', 'rc.d', 'vmmd_log'), 'utf8');
  assert.match(rc, new RegExp(`vmmd_log_file:="${logfile}"`));
});

test('vmmd_web.service: its ExecStart options are vmmd_web\'s, the state file is in its StateDirectory, HTTPS files under /etc/albatross', () => {
  const unit = fs.readFileSync(path.join(repoRoot, 'packaging', 'systemd', 'vmmd_web.service'), 'utf8');
  assert.match(unit, /^User=albatross$/m);
  const dir = /^StateDirectory=(\S+)$/m.exec(unit)?.[1];
  const exec = /^ExecStart=\/usr\/local\/bin\/vmmd_web (.*)$/m.exec(unit)?.[1];
  assert.ok(dir !== undefined && exec !== undefined, unit);
  const args = exec.split(' ');
  const opt = (o: string): string => args[args.indexOf(o) + 1];
  assert.equal(path.dirname(opt('--state')), `/var/lib/${dir}`);
  assert.match(opt('--cert'), /^\/etc\/albatross\//);
  assert.match(opt('--key'), /^\/etc\/albatross\//);
  // vmmd_web accepts the options: it gets as far as reading the certificate (absent here)
  const r = (() => {
    try {
      execFileSync(process.execPath, [path.join(repoRoot, 'build', 'src', 'cli', 'vmmd_web.js'), ...args], { encoding: 'utf8', stdio: 'pipe' });
      return { status: 0, stderr: '' };
    } catch (e) {
      return e as { status: number; stderr: string };
    }
  })();
  assert.equal(r.status, 124);
  assert.match(r.stderr, new RegExp(`cannot read --cert ${opt('--cert').replace(/\./g, '\\.')}: no such file`));
});
