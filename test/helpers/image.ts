/**
 * Builds Solo5 ELF images for tests: a minimal ELF64 (little-endian) with the ABI note and the
 * device manifest note, optionally malformed in chosen ways.
 */
import { NOTE_TYPE_ABI, NOTE_TYPE_MANIFEST, MFT_TYPE_BLOCK, MFT_TYPE_NET, MFT_TYPE_RESERVED_FIRST } from '../../src/core/solo5.js';

// ------------------------------------------------------------------ a minimal ELF64 (little-endian) writer

export const align = (n: number, a: number): number => Math.ceil(n / a) * a;

export function note(type: number, desc: Uint8Array, owner = 'Solo5'): Uint8Array {
  const name = Buffer.from(owner + '\0', 'latin1');
  const b = Buffer.alloc(12 + align(name.length, 4) + desc.length);
  b.writeUInt32LE(name.length, 0);
  b.writeUInt32LE(desc.length, 4);
  b.writeUInt32LE(type, 8);
  name.copy(b, 12);
  Buffer.from(desc).copy(b, 12 + align(name.length, 4));
  return b;
}

export function abiDesc(target: number, version: number, reserved0 = 0, reserved1 = 0): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(target, 0);
  b.writeUInt32LE(version, 4);
  b.writeUInt32LE(reserved0, 8);
  b.writeUInt32LE(reserved1, 12);
  return b;
}

export interface RawEntry { type: number; name: string; u?: number; attached?: number; rawName?: Uint8Array }

export function entry(e: RawEntry): Buffer {
  const b = Buffer.alloc(104);
  if (e.rawName) Buffer.from(e.rawName).copy(b, 0);
  else Buffer.from(e.name, 'utf8').copy(b, 0);
  b.writeUInt32LE(e.type, 68);
  if (e.u) b[72] = e.u;
  if (e.attached) b[96] = e.attached;
  return b;
}

export function mftDesc(entries: RawEntry[], o: { version?: number; count?: number; first?: RawEntry } = {}): Uint8Array {
  const all = [o.first ?? { type: MFT_TYPE_RESERVED_FIRST, name: '' }, ...entries];
  const head = Buffer.alloc(12);
  head.writeUInt32LE(o.version ?? 1, 4);
  head.writeUInt32LE(o.count ?? all.length, 8);
  return Buffer.concat([head, ...all.map(entry)]);
}

/** ELF64 LE with the given sections (plus the null section and .shstrtab), section headers at the end. */
export function elf(sections: Array<{ name: string; data: Uint8Array }>): Uint8Array {
  const parts: Buffer[] = [];
  let off = 64;
  const placed: Array<{ nameOff: number; off: number; size: number; type: number }> = [];
  let strtab = Buffer.from([0]);
  const addName = (s: string): number => {
    const at = strtab.length;
    strtab = Buffer.concat([strtab, Buffer.from(s + '\0', 'latin1')]);
    return at;
  };
  for (const s of sections) {
    const pad = align(off, 8) - off;
    if (pad > 0) parts.push(Buffer.alloc(pad));
    off += pad;
    placed.push({ nameOff: addName(s.name), off, size: s.data.length, type: 7 /* SHT_NOTE */ });
    parts.push(Buffer.from(s.data));
    off += s.data.length;
  }
  const shstrNameOff = addName('.shstrtab');
  placed.push({ nameOff: shstrNameOff, off, size: strtab.length, type: 3 /* SHT_STRTAB */ });
  parts.push(strtab);
  off += strtab.length;
  const pad = align(off, 8) - off;
  parts.push(Buffer.alloc(pad));
  off += pad;
  const shoff = off;
  const headers = Buffer.alloc(64 * (placed.length + 1));
  placed.forEach((s, i) => {
    const at = 64 * (i + 1);
    headers.writeUInt32LE(s.nameOff, at);
    headers.writeUInt32LE(s.type, at + 4);
    headers.writeBigUInt64LE(BigInt(s.off), at + 24);
    headers.writeBigUInt64LE(BigInt(s.size), at + 32);
    headers.writeBigUInt64LE(8n, at + 48);
  });
  const h = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(h, 0);
  h.writeUInt16LE(2, 0x10); // ET_EXEC
  h.writeUInt16LE(62, 0x12); // x86-64
  h.writeUInt32LE(1, 0x14);
  h.writeBigUInt64LE(BigInt(shoff), 0x28);
  h.writeUInt16LE(64, 0x34);
  h.writeUInt16LE(64, 0x3a);
  h.writeUInt16LE(placed.length + 1, 0x3c);
  h.writeUInt16LE(placed.length, 0x3e);
  return new Uint8Array(Buffer.concat([h, ...parts, headers]));
}

export const abiSection = (target = 2, version = 2) => ({ name: '.note.solo5.abi', data: note(NOTE_TYPE_ABI, abiDesc(target, version)) });
export const mftSection = (entries: RawEntry[] = [], o = {}) => ({ name: '.note.solo5.manifest', data: note(NOTE_TYPE_MANIFEST, mftDesc(entries, o)) });
export const image = (entries: RawEntry[] = [], target = 2, version = 2) =>
  elf([{ name: '.text', data: Buffer.from('code') }, abiSection(target, version), mftSection(entries)]);
/** A Solo5 image (spt, ABI 2 unless given) declaring the named block and network devices. */
export function solo5Image(o: { blocks?: string[]; nets?: string[]; target?: 'hvt' | 'spt'; abi?: number } = {}): Uint8Array {
  const entries: RawEntry[] = [
    ...(o.blocks ?? []).map((name) => ({ type: MFT_TYPE_BLOCK, name })),
    ...(o.nets ?? []).map((name) => ({ type: MFT_TYPE_NET, name })),
  ];
  return image(entries, o.target === 'hvt' ? 1 : 2, o.abi ?? 2);
}
