import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  NOTE_TYPE_ABI, NOTE_TYPE_MANIFEST, MFT_TYPE_BLOCK, MFT_TYPE_NET, MFT_TYPE_RESERVED_FIRST,
  checkManifest, checkTenderVersionOutput, executableTarget, inspectImage, ocamlQuote, readAbi, readManifest,
  tenderBase, tenderCandidates, tenderNotFound,
} from '../src/core/solo5.js';
import { type RawEntry, abiDesc, abiSection, elf, image, mftDesc, note } from './helpers/image.js';

const errOf = (r: { ok: boolean; error?: string }): string => (r.ok ? 'ok' : (r.error as string));

// ------------------------------------------------------------------ tests

test('reads the ABI note and the manifest of a well-formed image', () => {
  const img = image([{ type: MFT_TYPE_BLOCK, name: 'storage' }, { type: MFT_TYPE_NET, name: 'service0' }], 1, 3);
  assert.deepEqual(readAbi(img), { ok: true, value: { target: 'hvt', version: 3 } });
  assert.deepEqual(readManifest(img), {
    ok: true, value: { version: 1, entries: [{ kind: 'block', name: 'storage' }, { kind: 'net', name: 'service0' }] },
  });
  assert.deepEqual(inspectImage(img), {
    ok: true,
    value: { abi: { target: 'hvt', version: 3 }, target: 'hvt', manifest: { version: 1, entries: [{ kind: 'block', name: 'storage' }, { kind: 'net', name: 'service0' }] } },
  });
  assert.deepEqual(readManifest(image()), { ok: true, value: { version: 1, entries: [] } });
  // a 67-character name fills the field up to its terminator
  const long = 'n'.repeat(67);
  assert.deepEqual(readManifest(image([{ type: MFT_TYPE_NET, name: long }])), { ok: true, value: { version: 1, entries: [{ kind: 'net', name: long }] } });
});

test('targets: only hvt and spt are executable', () => {
  const names = ['hvt', 'spt', 'virtio', 'muen', 'genode', 'xen'];
  names.forEach((t, i) => {
    const abi = readAbi(image([], i + 1, 1));
    assert.deepEqual(abi, { ok: true, value: { target: t, version: 1 } });
    const e = executableTarget(abi.ok ? abi.value : { target: 'hvt', version: 0 });
    assert.deepEqual(e, i < 2 ? { ok: true, value: t } : { ok: false, error: `unsupported solo5 target ${t}` });
  });
  assert.equal(errOf(readAbi(image([], 7, 1))), 'unknown abi target: 7');
  assert.equal(errOf(readAbi(image([], 0xffffffff, 1))), 'unknown abi target: -1');
  assert.equal(errOf(inspectImage(image([], 3, 1))), 'unsupported solo5 target virtio');
  assert.equal(tenderBase('hvt'), 'solo5-hvt');
  assert.equal(tenderBase('spt'), 'solo5-spt');
});

test('malformed ELF files give precise errors', () => {
  const good = image();
  const bytes = (f: (b: Buffer) => void): Uint8Array => {
    const b = Buffer.from(good);
    f(b);
    return new Uint8Array(b);
  };
  assert.equal(errOf(readAbi(new Uint8Array(0))), 'not an ELF file (bad magic)');
  assert.equal(errOf(readAbi(Buffer.from('#!/bin/sh\necho hi\n'))), 'not an ELF file (bad magic)');
  assert.equal(errOf(readAbi(good.subarray(0, 40))), 'ELF header truncated (40 of 64 bytes)');
  assert.equal(errOf(readAbi(bytes((b) => { b[4] = 1; }))), 'not a 64-bit ELF file (class 1)');
  assert.equal(errOf(readAbi(bytes((b) => { b[5] = 2; }))), 'not a little-endian ELF file (data encoding 2)');
  assert.equal(errOf(readAbi(bytes((b) => b.writeBigUInt64LE(0n, 0x28)))), 'ELF file has no section headers');
  assert.equal(errOf(readAbi(bytes((b) => b.writeBigUInt64LE(2n ** 63n, 0x28)))), 'ELF section header offset 0x8000000000000000 out of range');
  assert.equal(errOf(readAbi(bytes((b) => b.writeUInt16LE(40, 0x3a)))), 'ELF section header size 40 is smaller than 64');
  assert.match(errOf(readAbi(bytes((b) => b.writeUInt16LE(500, 0x3c)))), /^ELF section header table truncated \(500 headers end at \d+, file has \d+ bytes\)$/);
  assert.equal(errOf(readAbi(bytes((b) => b.writeUInt16LE(77, 0x3e)))), 'ELF section name table index 77 out of range (5 sections)');
  assert.equal(errOf(readAbi(elf([{ name: '.text', data: Buffer.from('x') }]))), 'section .note.solo5.abi not found');
  assert.equal(errOf(readManifest(elf([abiSection()]))), 'section .note.solo5.manifest not found');
  // a section whose body lies beyond the end of the file
  const far = bytes((b) => {
    const shoff = Number(b.readBigUInt64LE(0x28));
    b.writeBigUInt64LE(1n << 40n, shoff + 64 * 2 + 24); // section 2 = .note.solo5.abi
  });
  assert.match(errOf(readAbi(far)), /^section \.note\.solo5\.abi truncated \(36 bytes at offset 1099511627776, file has \d+ bytes\)$/);
});

test('malformed notes give precise errors', () => {
  const withAbi = (data: Uint8Array) => readAbi(elf([{ name: '.note.solo5.abi', data }]));
  assert.equal(errOf(withAbi(new Uint8Array(8))), 'section .note.solo5.abi: note header truncated (8 of 12 bytes)');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_ABI, abiDesc(1, 1), 'Solo6'))), 'section .note.solo5.abi: note owner is not Solo5');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_ABI, abiDesc(1, 1), 'Solo'))), 'section .note.solo5.abi: note owner is not Solo5');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_MANIFEST, abiDesc(1, 1)))), 'section .note.solo5.abi: note type 0x3154464d, expected 0x31494241');
  const big = Buffer.from(note(NOTE_TYPE_ABI, abiDesc(1, 1)));
  big.writeUInt32LE(0xffffffff, 4);
  assert.equal(errOf(withAbi(big)), 'section .note.solo5.abi: note descriptor truncated (4294967295 bytes announced, 16 present)');
  const hugeName = Buffer.from(note(NOTE_TYPE_ABI, abiDesc(1, 1)));
  hugeName.writeUInt32LE(0xfffffff0, 0);
  assert.equal(errOf(withAbi(hugeName)), 'section .note.solo5.abi: note name truncated');
  assert.equal(errOf(withAbi(Buffer.concat([note(NOTE_TYPE_ABI, abiDesc(1, 1)), Buffer.alloc(4)]))), 'section .note.solo5.abi: extra data after the note');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_ABI, new Uint8Array(12)))), 'abi manifest size mismatch');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_ABI, abiDesc(1, 1, 1)))), 'non-zero reserved0');
  assert.equal(errOf(withAbi(note(NOTE_TYPE_ABI, abiDesc(1, 1, 0, 9)))), 'non-zero reserved1');
});

test('malformed manifests: ocaml-solo5-elftool\'s messages', () => {
  const mft = (desc: Uint8Array) => readManifest(elf([{ name: '.note.solo5.manifest', data: note(NOTE_TYPE_MANIFEST, desc) }]));
  const withEntries = (entries: RawEntry[], o = {}) => mft(mftDesc(entries, o));
  assert.equal(errOf(mft(new Uint8Array(115))), 'manifest too small');
  assert.equal(errOf(withEntries([], { version: 2 })), 'unsupported manifest version');
  assert.equal(errOf(withEntries([], { count: 0 })), 'zero manifest entries');
  assert.equal(errOf(withEntries([], { count: 65 })), 'too many manifest entries');
  assert.equal(errOf(withEntries([], { count: 0xffffffff })), 'too many manifest entries');
  assert.equal(errOf(withEntries([], { count: 2 })), 'unexpected note size');
  assert.equal(errOf(withEntries(Array.from({ length: 63 }, (_, i) => ({ type: MFT_TYPE_NET, name: `n${i}` })))), 'ok');
  assert.equal(errOf(withEntries(Array.from({ length: 64 }, (_, i) => ({ type: MFT_TYPE_NET, name: `n${i}` })))), 'too many manifest entries');
  assert.equal(errOf(withEntries([], { first: { type: MFT_TYPE_BLOCK, name: 'x' } })), 'expected RESERVED_FIRST');
  assert.equal(errOf(withEntries([], { first: { type: MFT_TYPE_RESERVED_FIRST, name: 'x' } })), 'expected RESERVED_FIRST');
  assert.equal(errOf(withEntries([{ type: MFT_TYPE_RESERVED_FIRST, name: '' }])), 'found RESERVED_FIRST not as first entry');
  assert.equal(errOf(withEntries([{ type: MFT_TYPE_NET, name: '', rawName: new Uint8Array(68).fill(0x41) }])), 'unterminated device name');
  assert.equal(errOf(withEntries([{ type: MFT_TYPE_NET, name: 'a', u: 1 }])), 'non-zero mft_entry.u');
  assert.equal(errOf(withEntries([{ type: MFT_TYPE_NET, name: 'a', attached: 1 }])), 'non-zero mft_entry.attached');
  assert.equal(errOf(withEntries([{ type: 3, name: 'a' }])), 'unknown manifest entry type: 3');
});

test('truncating a valid image at any length never throws and never succeeds', () => {
  const img = image([{ type: MFT_TYPE_BLOCK, name: 'storage' }, { type: MFT_TYPE_NET, name: 'service0' }]);
  for (let len = 0; len < img.length; len++) {
    const cut = img.subarray(0, len);
    assert.equal(readAbi(cut).ok, false, `abi at ${len}`);
    assert.equal(readManifest(cut).ok, false, `manifest at ${len}`);
  }
});

test('random and mutated bytes never throw', () => {
  const img = image([{ type: MFT_TYPE_BLOCK, name: 'storage' }, { type: MFT_TYPE_NET, name: 'service0' }]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => {
      readAbi(b);
      readManifest(b);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(img.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (muts) => {
      const b = new Uint8Array(img);
      for (const [i, v] of muts) b[i] = v;
      const a = readAbi(b);
      const m = readManifest(b);
      if (!a.ok) assert.equal(typeof a.error, 'string');
      if (!m.ok) assert.equal(typeof m.error, 'string');
    }),
    { numRuns: 2000 },
  );
});

test('checkManifest: configured device names equal the manifest\'s, block devices first', () => {
  const m = { version: 1, entries: [{ kind: 'block' as const, name: 'storage' }, { kind: 'net' as const, name: 'service0' }, { kind: 'net' as const, name: 'mgmt' }] };
  const present = 'Devices present in manifest: block "storage", net "service0", net "mgmt"';
  assert.deepEqual(checkManifest(m, { blocks: [{ blockName: 'storage', blockDeviceName: 'data' }], bridges: [{ netif: 'mgmt' }, { netif: 'service0', bridge: 'br0' }] }),
    { ok: true, value: undefined });
  assert.deepEqual(checkManifest(m, { blocks: [], bridges: [] }),
    { ok: false, error: `specified block device(s) does not match with manifest. ${present}` });
  assert.deepEqual(checkManifest(m, { blocks: [{ blockName: 'storage' }, { blockName: 'extra' }], bridges: [] }),
    { ok: false, error: `specified block device(s) does not match with manifest. ${present}` });
  assert.deepEqual(checkManifest(m, { blocks: [{ blockName: 'storage' }], bridges: [{ netif: 'service0' }] }),
    { ok: false, error: `specified bridge(s) does not match with the manifest. ${present}` });
  assert.deepEqual(checkManifest({ version: 1, entries: [] }, { blocks: [], bridges: [{ netif: 'service' }] }),
    { ok: false, error: 'specified bridge(s) does not match with the manifest. Devices present in manifest: ' });
  assert.equal(ocamlQuote('a"b\\c\n\u00e9'), '"a\\"b\\\\c\\n\\195\\169"');
});

test('tender candidates and the not-found message', () => {
  const c = tenderCandidates('solo5-spt', 2, '/var/lib/albatross');
  assert.deepEqual(c, [
    { kind: 'file', path: '/var/lib/albatross/solo5-spt.2' },
    { kind: 'path', command: 'solo5-spt.2' },
    { kind: 'file', path: '/var/lib/albatross/solo5-spt' },
    { kind: 'path', command: 'solo5-spt' },
  ]);
  assert.deepEqual(tenderCandidates('solo5-hvt', { target: 'hvt', version: 3 }, '/d/').map((x) => x.kind === 'file' ? x.path : x.command),
    ['/d/solo5-hvt.3', 'solo5-hvt.3', '/d/solo5-hvt', 'solo5-hvt']);
  assert.equal(tenderNotFound(c),
    'tender does not exist, looked for /var/lib/albatross/solo5-spt.2, solo5-spt.2, /var/lib/albatross/solo5-spt, solo5-spt');
});

test('tender --version output must have a line `ABI version <N>`', () => {
  const out = 'solo5-spt tender, version v0.12.1\nABI version 2\n';
  assert.deepEqual(checkTenderVersionOutput(out, 2), { ok: true, value: undefined });
  assert.deepEqual(checkTenderVersionOutput(out, { target: 'spt', version: 2 }), { ok: true, value: undefined });
  assert.deepEqual(checkTenderVersionOutput(out, 3), {
    ok: false,
    error: "unexpected solo5 tender --version output, expected one line with 'ABI version 3', got solo5-spt tender, version v0.12.1\nABI version 2",
  });
  for (const bad of ['ABI version  2', 'ABI version 2 ', ' ABI version 2', 'abi version 2', 'ABI version two', 'ABI version 2\r', '']) {
    assert.equal(checkTenderVersionOutput(bad, 2).ok, false, JSON.stringify(bad));
  }
  // OCaml's int_of_string forms
  for (const good of ['ABI version 02', 'ABI version 0x2', 'ABI version +2', 'ABI version 0b10']) {
    assert.equal(checkTenderVersionOutput(good, 2).ok, true, good);
  }
});
