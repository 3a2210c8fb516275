/**
 * vmmd's start-up on a state file, as a process with the real console daemon: the FIFOs of the
 * stored unikernels are made in one go before the relaunch, those of unikernels that do not
 * start are removed again, and the restore and the relaunch are logged with their timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeState } from '../src/core/wire/state.js';
import { nameToString } from '../src/core/name.js';
import { fifoPath } from '../src/core/unikernel.js';
import { RealConsole, config, info, livePids, makeRunDir, nm, request, startVmmd, until } from './helpers/vmmd.js';

test('start-up: FIFOs for the relaunch, none left for a unikernel that cannot start, restore and relaunch logged', async () => {
  const d = makeRunDir();
  const cp = new RealConsole(d.tmpdir);
  await cp.start();
  try {
    // p: allows 64 MB; p:big asks for 100 and is refused at start-up
    fs.writeFileSync(path.join(d.dbdir, 'state'), encodeState({
      unikernels: [
        { name: nm('p:a'), config: config(['--sleep'], { memory: 16 }) },
        { name: nm('p:big'), config: config(['--sleep'], { memory: 100 }) },
        { name: nm('p:b'), config: config(['--sleep'], { memory: 16 }) },
      ],
      policies: [{ name: { path: ['p'] }, policy: { cpuids: [0], unikernels: 5n, memory: 64, bridges: [] } }],
    }));
    const v = await startVmmd(d);
    try {
      await until('two tenders', () => livePids(d).length === 2);
      const ws = await request(v.sock, 'p:', info);
      const p = ws[0].payload;
      assert.ok(p.kind === 'reply' && p.value.kind === 'unikernel_info');
      assert.deepEqual(p.value.value.map((e) => nameToString(e.name)).sort(), [':a', ':b']);
      for (const n of ['p:a', 'p:b']) assert.ok(fs.lstatSync(fifoPath(d.tmpdir, nm(n))).isFIFO(), `FIFO of ${n}`);
      assert.equal(fs.existsSync(fifoPath(d.tmpdir, nm('p:big'))), false, 'no FIFO left for the unikernel that did not start');
      assert.match(v.stderr(), /could not start p:big \(startup\): maximum allowed memory/);
      assert.match(v.stderr(), /state: 3 unikernels and 1 policies restored in [\d.]+ ms \(read, decode and copy to state.started [\d.]+ ms, policies and start order [\d.]+ ms, leftovers and console [\d.]+ ms\); relaunching/);
      assert.match(v.stderr(), /relaunched 2 of 3 unikernels in [\d.]+ s/);
    } finally {
      assert.equal(await v.stop(), 0);
    }
  } finally {
    await cp.stop();
    d.remove();
  }
});
