import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frame } from '../src/core/frame.js';
import { parseName } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { type UnikernelConfig } from '../src/core/wire/common.js';
import { encodeLogWire, logMessage } from '../src/core/wire/log.js';
import { encodeState } from '../src/core/wire/state.js';
import { encodeCertExtension, makeHeader } from '../src/core/wire/wire.js';

const root = join(__dirname, '..', '..');
const bundle = join(root, 'dist', 'vmmc_inspect.js');
const fixtures = join(root, 'test', 'fixtures', 'upstream-2.7.2', 'run1');
const nm = (s: string) => unwrap(parseName(s));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs the bundled binary; never rejects (the exit code is part of the result). */
function run(args: string[], input?: Uint8Array | string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bundle, ...args], { encoding: 'buffer', maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
      const code = e === null ? 0 : typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : -1;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
    child.stdin?.end(input ?? '');
  });
}

/** One line on stderr, naming the program, with no stack trace. */
function assertOneLineError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout.length, 0);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^vmmc_inspect: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/);
  assert.match(lines[0], pattern);
}

const dir = mkdtempSync(join(tmpdir(), 'inspect-'));
test.before(() => assert.ok(existsSync(bundle), `${bundle} is missing: run npm run build (npm test does)`));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('every recorded upstream frame: wire then encode gives identical bytes', async () => {
  const files = readdirSync(fixtures).filter((f) => f.endsWith('.der')).sort();
  assert.equal(files.length, 51);
  const bytes = files.map((f) => readFileSync(join(fixtures, f)));
  // all files in one run (a JSON document each), then all documents encoded in one run
  const w = await run(['wire', ...files.map((f) => join(fixtures, f))]);
  assert.equal(w.code, 0, w.stderr);
  const docs = w.stdout.toString('utf8').split(/(?<=^\})\n/m).filter((d) => d.trim() !== '');
  assert.equal(docs.length, files.length);
  docs.forEach((d, i) => assert.equal((JSON.parse(d) as { header: { version: number } }).header.version, 5, files[i]));
  const e = await run(['encode', '-'], w.stdout);
  assert.equal(e.code, 0, e.stderr);
  let at = 0;
  bytes.forEach((b, i) => {
    assert.equal(hex(e.stdout.subarray(at, at + b.length)), hex(b), files[i]);
    at += b.length;
  });
  assert.equal(at, e.stdout.length);
  // each message on its own, through --hex (one line per message)
  const eh = await run(['encode', '--hex', '-'], w.stdout);
  assert.deepEqual(eh.stdout.toString().split('\n').slice(0, -1), bytes.map(hex));
  // and one document alone gives the same as in the sequence
  const one = await run(['wire', join(fixtures, files[7])]);
  assert.equal(one.stdout.toString(), docs[7].endsWith('\n') ? docs[7] : `${docs[7]}\n`);
});

test('--hex and stdin: hex text with whitespace in, hex out; a whole frame with --frame', async () => {
  const bytes = readFileSync(join(fixtures, 'vmmd.3.000.req.der'));
  const raw = await run(['wire', join(fixtures, 'vmmd.3.000.req.der')]);
  assert.equal(raw.code, 0);
  const spaced = `${hex(bytes).replace(/(.{8})/g, '$1 ').replace(/(.{45})/g, '$1\n\t')}\n`;
  const fromHex = await run(['wire', '--hex', '-'], spaced);
  assert.equal(fromHex.code, 0, fromHex.stderr);
  assert.equal(fromHex.stdout.toString(), raw.stdout.toString());
  const j = JSON.parse(raw.stdout.toString()) as { header: { name: string }; payload: { command: { policy: { add: { memory: number } } } } };
  assert.equal(j.header.name, 'dept:');
  assert.equal(j.payload.command.policy.add.memory, 256);
  const enc = await run(['encode', '--hex', '-'], raw.stdout);
  assert.equal(enc.stdout.toString(), `${hex(bytes)}\n`);
  // a whole frame, raw and as hex
  const framed = join(dir, 'framed.bin');
  writeFileSync(framed, frame(bytes));
  const f1 = await run(['wire', '--frame', framed]);
  assert.equal(f1.stdout.toString(), raw.stdout.toString());
  const f2 = await run(['wire', '--frame', '--hex', '-'], hex(frame(bytes)));
  assert.equal(f2.stdout.toString(), raw.stdout.toString());
  // a frame with bytes after it, a short frame, an end marker
  assertOneLineError(await run(['wire', '--frame', '-'], Buffer.concat([frame(bytes), Buffer.from([0])])), 1,
    /<stdin>: frame: 1 bytes after the frame/);
  assertOneLineError(await run(['wire', '--frame', '-'], frame(bytes).subarray(0, 20)), 1, /frame: truncated \(length \d+, only 16 bytes follow\)/);
  assertOneLineError(await run(['wire', '--frame', '-'], new Uint8Array(4)), 1, /end of a stream/);
});

test('a log event and a log subscription decode as LogWire and encode back', async () => {
  const h = makeHeader(nm('org:web'), 7n);
  const ev = encodeLogWire(logMessage.data(h, Date.UTC(2024, 0, 2, 3, 4, 5, 678), {
    kind: 'unikernel_stop', value: { name: nm('org:web'), pid: 1234, status: { kind: 'signal', value: -11 } },
  }));
  const sub = encodeLogWire(logMessage.subscribe(h, { kind: 'count', value: 10 }));
  for (const bytes of [ev, sub]) {
    const w = await run(['wire', '--hex', '-'], hex(bytes));
    assert.equal(w.code, 0, w.stderr);
    const j = JSON.parse(w.stdout.toString()) as { LogWire: { header: { name: string } } };
    assert.equal(j.LogWire.header.name, 'org:web');
    const e = await run(['encode', '-'], w.stdout);
    assert.equal(hex(e.stdout), hex(bytes));
  }
  const w = JSON.parse((await run(['wire', '--hex', '-'], hex(ev))).stdout.toString());
  assert.deepEqual(w.LogWire.payload.data.event, { unikernel_stop: { name: 'org:web', pid: 1234, status: { signal: -11 } } });
  assert.equal(w.LogWire.payload.data.timestamp, '2024-01-02T03:04:05.678Z');
});

test('dump: a state file written by encodeState, images summarised unless --images, bare names looked up in --dbdir', async () => {
  const image = new Uint8Array(1000).map((_, i) => i & 0xff);
  const config: UnikernelConfig = {
    typ: 'solo5', compressed: false, image, startup: 10, addName: true, failBehaviour: { kind: 'restart', value: [3] },
    cpuids: [0], memory: 64, blocks: [{ blockName: 'data' }], bridges: [{ netif: 'service', bridge: 'br0' }],
    arguments: ['--hello'], cpus: 1,
  };
  const state = encodeState({
    unikernels: [{ name: nm('dept:web'), config }],
    policies: [{ name: nm('dept:'), policy: { cpuids: [0, 1], unikernels: 3n, memory: 256, block: 100, bridges: ['br0'] } }],
  });
  writeFileSync(join(dir, 'state'), state);
  const r = await run(['dump', join(dir, 'state')]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.toString());
  assert.equal(j.format, '[6] unikernels_and_policies');
  assert.equal(j.unikernels.length, 1);
  assert.equal(j.unikernels[0].name, 'dept:web');
  assert.deepEqual(j.unikernels[0].config.image, { bytes: 1000, sha256: createHash('sha256').update(image).digest('hex') });
  assert.equal(j.unikernels[0].config.memory, 64);
  assert.deepEqual(j.unikernels[0].config.failBehaviour, { restart: [3] });
  assert.deepEqual(j.policies, [{ name: 'dept:', policy: { cpuids: [0, 1], unikernels: 3, memory: 256, block: 100, bridges: ['br0'] } }]);
  const full = JSON.parse((await run(['dump', '--images', '--dbdir', dir, 'state'])).stdout.toString());
  assert.equal(full.unikernels[0].config.image, hex(image));
  const dflt = JSON.parse((await run(['dump', `--dbdir=${dir}`])).stdout.toString());
  assert.equal(dflt.format, j.format);
  const fromHex = JSON.parse((await run(['dump', '--hex', '-'], hex(state))).stdout.toString());
  assert.deepEqual(fromHex, j);
  assertOneLineError(await run(['dump', '-'], state.subarray(0, state.length - 1)), 1, /<stdin>: State: at byte 0: truncated/);
  assertOneLineError(await run(['dump', `--dbdir=${dir}`, 'missing']), 1, /missing: cannot read \(ENOENT\)/);
});

test('cert: subject, issuer, validity, CA flag and the albatross command of openssl certificates and requests', async () => {
  const ext = hex(encodeCertExtension({ kind: 'unikernel', value: { kind: 'create', value: {
    typ: 'solo5', compressed: false, image: new Uint8Array([1, 2, 3]), addName: true, failBehaviour: { kind: 'quit', value: null },
    cpuids: [0], memory: 32, blocks: [], bridges: [], cpus: 1,
  } } }));
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '3',
    '-subj', '/CN=hello', '-addext', `1.3.6.1.4.1.49836.42=DER:${ext}`, '-addext', 'basicConstraints=CA:FALSE']);
  openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3',
    '-subj', '/CN=my-ca', '-addext', 'basicConstraints=critical,CA:TRUE']);
  openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', 'r.key', '-out', 'r.pem',
    '-subj', '/CN=tenant', '-addext', '1.3.6.1.4.1.49836.42=DER:300c020105a007a205a103020114']);
  const pem = ['c.pem', 'ca.pem', 'r.pem', 'k.pem'].map((f) => readFileSync(join(dir, f), 'utf8')).join('');
  writeFileSync(join(dir, 'all.pem'), pem);
  const r = await run(['cert', join(dir, 'all.pem')]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  assert.match(out, /^certificate 1: CN=hello\n  issuer: CN=hello\n  valid: \d{4}-\d\d-\d\dT[\d:.]+Z to \d{4}-\d\d-\d\dT[\d:.]+Z\n  CA: no\n  albatross extension: version 5\n/);
  const sha = createHash('sha256').update(new Uint8Array([1, 2, 3])).digest('hex');
  assert.ok(out.includes(`  command: {"unikernel":{"create":{"typ":{"solo5":null},"compressed":false,"image":{"bytes":3,"sha256":"${sha}"},`), out);
  assert.match(out, /certificate 2: CN=my-ca\n  issuer: CN=my-ca\n.*\n  CA: yes\n  no albatross extension\n/);
  assert.match(out, /certificate request 3: CN=tenant\n  albatross extension: version 5\n  command: \{"console":\{"subscribe":\{"count":20\}\}\}\n/);
  assert.match(out, /block 4: PRIVATE KEY \(skipped\)\n$/);
  const imgs = await run(['cert', '--images', join(dir, 'c.pem')]);
  assert.match(imgs.stdout.toString(), /"image":"010203"/);
  // one DER certificate without PEM armour
  const der = Buffer.from(readFileSync(join(dir, 'ca.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const d = await run(['cert', '-'], der);
  assert.match(d.stdout.toString(), /^certificate 1: CN=my-ca\n/);
  // a broken extension, a truncated PEM body, no PEM at all
  openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'k2.pem', '-out', 'bad.pem', '-days', '3',
    '-subj', '/CN=bad', '-addext', '1.3.6.1.4.1.49836.42=DER:300c020104a007a205a103020114']);
  assertOneLineError(await run(['cert', join(dir, 'bad.pem')]), 1, /block 1 \(CERTIFICATE\): albatross extension .*unknown version number 0x4/);
  const body = readFileSync(join(dir, 'c.pem'), 'utf8').split('\n');
  assertOneLineError(await run(['cert', '-'], [body[0], body[1], body[body.length - 2], ''].join('\n')), 1, /<stdin>: block 1 \(CERTIFICATE\): certificate: /);
  assertOneLineError(await run(['cert', '-'], '-----BEGIN CERTIFICATE-----\nAAAA\n'), 1, /no complete PEM block/);
});

test('malformed input exits 1 with one line on stderr; usage errors exit 124', async () => {
  const good = readFileSync(join(fixtures, 'vmmd.1.000.req.der'));
  assertOneLineError(await run(['wire', '-'], good.subarray(0, good.length - 3)), 1, /<stdin>: Wire: at byte \d+: truncated/);
  assertOneLineError(await run(['wire', '-'], ''), 1, /<stdin>: Wire: empty input/);
  assertOneLineError(await run(['wire', '-'], Buffer.from('garbage, not DER at all')), 1, /<stdin>: Wire: at byte /);
  assertOneLineError(await run(['wire', '-'], Buffer.concat([good, Buffer.from([0, 0])])), 1, /trailing bytes: 2 bytes after the value/);
  assertOneLineError(await run(['wire', '--hex', '-'], 'abc'), 1, /odd number of hex digits/);
  assertOneLineError(await run(['wire', '--hex', '-'], '30 0g'), 1, /not hex: "g" at character 4/);
  // a well-formed message of an unsupported version, and a retired command
  const v4 = Buffer.from(good);
  v4[6] = 4;
  assertOneLineError(await run(['wire', '-'], v4), 1, /unknown version number 0x4/);
  assertOneLineError(await run(['encode', '-'], '{"header": {"version": 5, "sequence": 0, "name": ":a"}, "payload": {"command": {"unikernel": {"info": 1}}}}'), 1,
    /<stdin>: Wire\.payload\.command\.unikernel\.info: expected null/);
  assertOneLineError(await run(['encode', '-'], 'not json'), 1, /invalid JSON: document 1 at character 0/);
  assertOneLineError(await run(['encode', '-'], '{"a": "}"'), 1, /document 1 at character 0 is not closed/);
  assertOneLineError(await run(['encode', '-'], `${JSON.stringify({ header: { version: 5, sequence: 0, name: ':a' }, payload: { failure: 'x' } })} {"x": 1}`), 1,
    /<stdin>: document 2: Wire: unknown field x of Wire/);
  assertOneLineError(await run(['encode', '-'], '{"LogWire": {}}'), 1, /LogWire\.header: missing field/);
  assertOneLineError(await run(['wire', join(dir, 'does-not-exist')]), 1, /cannot read \(ENOENT\)/);
  // usage errors
  assertOneLineError(await run([]), 124, /subcommand is missing/);
  assertOneLineError(await run(['frobnicate']), 124, /unknown subcommand "frobnicate"/);
  assertOneLineError(await run(['wire']), 124, /FILE is missing/);
  assertOneLineError(await run(['encode', 'a', 'b']), 124, /one FILE expected, got 2/);
  assertOneLineError(await run(['wire', join(fixtures, 'vmmd.1.000.req.der'), join(dir, 'nope')]), 1, /nope: cannot read/);
  assertOneLineError(await run(['wire', '--nope', 'a']), 124, /unknown option --nope/);
  assertOneLineError(await run(['encode', '--frame', 'a']), 124, /--frame applies to wire only/);
  assertOneLineError(await run(['wire', '--images', 'a']), 124, /--images applies to dump and cert only/);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout.toString(), /SYNOPSIS\n  vmmc_inspect wire/);
  const version = await run(['--version']);
  assert.match(version.stdout.toString(), /^vmmc_inspect version \S+ protocol version 5\n$/);
});

test('a reader that closes the pipe early ends the output quietly (exit 0, nothing on stderr)', async () => {
  // about 190 KB of JSON: more than a pipe holds, so the writer meets the closed pipe
  const child = spawn(process.execPath, [bundle, 'wire', join(fixtures, 'vmmd.8.000.req.der')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(code, 0);
  assert.equal(stderr, '');
});
