/**
 * Solo5 image inspection and tender selection (SEMANTICS.md §5.2, §6.1, §6.2), as upstream does
 * it with ocaml-solo5-elftool: the ABI note (`.note.solo5.abi`) and the device manifest
 * (`.note.solo5.manifest`) of an ELF64 image, the manifest-vs-configuration check, the tender
 * candidates and the check of the tender's `--version` output.
 *
 * The parser trusts nothing in the image: every offset and size is bounds-checked, and every
 * failure is an error value naming what was wrong and where.
 */
import { type Result, ok, err } from './result.js';
import type { UnikernelConfig } from './wire/common.js';

export type Solo5Target = 'hvt' | 'spt' | 'virtio' | 'muen' | 'genode' | 'xen';
export type ExecutableTarget = 'hvt' | 'spt';

export interface Solo5Abi {
  readonly target: Solo5Target;
  /** ABI version (uint32). */
  readonly version: number;
}

export type ManifestEntry = { readonly kind: 'block'; readonly name: string } | { readonly kind: 'net'; readonly name: string };

export interface Manifest {
  readonly version: number;
  /** The devices, in manifest order, without the reserved first entry. */
  readonly entries: readonly ManifestEntry[];
}

export const ABI_SECTION = '.note.solo5.abi';
export const MANIFEST_SECTION = '.note.solo5.manifest';
export const NOTE_OWNER = 'Solo5';
/** "ABI1" little-endian. */
export const NOTE_TYPE_ABI = 0x31494241;
/** "MFT1" little-endian. */
export const NOTE_TYPE_MANIFEST = 0x3154464d;
export const MFT_ENTRY_SIZE = 104;
export const MFT_NAME_SIZE = 68;
export const MFT_MAX_ENTRIES = 64;
export const MFT_TYPE_BLOCK = 1;
export const MFT_TYPE_NET = 2;
export const MFT_TYPE_RESERVED_FIRST = 0x40000000;

const TARGETS: Record<number, Solo5Target> = { 1: 'hvt', 2: 'spt', 3: 'virtio', 4: 'muen', 5: 'genode', 6: 'xen' };

// ------------------------------------------------------------------ ELF

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

interface Section {
  readonly nameOffset: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
}

function u64(v: DataView, at: number, what: string): Result<number> {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) return err(`ELF ${what} 0x${x.toString(16)} out of range`);
  return ok(Number(x));
}

function readSection(img: Uint8Array, shoff: number, entsize: number, i: number): Result<Section> {
  const at = shoff + i * entsize;
  if (at + 64 > img.length) return err(`ELF section header ${i} truncated (ends at ${at + 64}, file has ${img.length} bytes)`);
  const v = view(img);
  const offset = u64(v, at + 24, `section ${i} offset`);
  if (!offset.ok) return offset;
  const size = u64(v, at + 32, `section ${i} size`);
  if (!size.ok) return size;
  return ok({ nameOffset: v.getUint32(at, true), offset: offset.value, size: size.value, link: v.getUint32(at + 40, true) });
}

interface ElfSections {
  readonly sections: Section[];
  readonly names: Section;
}

function readSections(img: Uint8Array): Result<ElfSections> {
  if (img.length < 4 || img[0] !== 0x7f || img[1] !== 0x45 || img[2] !== 0x4c || img[3] !== 0x46) {
    return err('not an ELF file (bad magic)');
  }
  if (img.length < 64) return err(`ELF header truncated (${img.length} of 64 bytes)`);
  if (img[4] !== 2) return err(`not a 64-bit ELF file (class ${img[4]})`);
  if (img[5] !== 1) return err(`not a little-endian ELF file (data encoding ${img[5]})`);
  const v = view(img);
  const shoffR = u64(v, 0x28, 'section header offset');
  if (!shoffR.ok) return shoffR;
  const shoff = shoffR.value;
  const entsize = v.getUint16(0x3a, true);
  let shnum = v.getUint16(0x3c, true);
  let shstrndx = v.getUint16(0x3e, true);
  if (shoff === 0) return err('ELF file has no section headers');
  if (entsize < 64) return err(`ELF section header size ${entsize} is smaller than 64`);
  // Extended numbering: counts that do not fit 16 bits live in section header 0.
  if (shnum === 0 || shstrndx === 0xffff) {
    const s0 = readSection(img, shoff, entsize, 0);
    if (!s0.ok) return s0;
    if (shnum === 0) shnum = s0.value.size;
    if (shstrndx === 0xffff) shstrndx = s0.value.link;
  }
  if (shnum === 0) return err('ELF file has no section headers');
  const end = shoff + shnum * entsize;
  if (end > img.length) return err(`ELF section header table truncated (${shnum} headers end at ${end}, file has ${img.length} bytes)`);
  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const s = readSection(img, shoff, entsize, i);
    if (!s.ok) return s;
    sections.push(s.value);
  }
  if (shstrndx >= shnum) return err(`ELF section name table index ${shstrndx} out of range (${shnum} sections)`);
  const names = sections[shstrndx];
  if (names.offset + names.size > img.length) return err('ELF section name table truncated');
  return ok({ sections, names });
}

/** Compares the NUL-terminated section name at `nameOffset` in the name table with `want`. */
function sectionNameIs(img: Uint8Array, names: Section, nameOffset: number, want: string): boolean {
  if (nameOffset >= names.size) return false;
  const start = names.offset + nameOffset;
  const limit = names.offset + names.size;
  for (let i = 0; i < want.length; i++) {
    if (start + i >= limit || img[start + i] !== want.charCodeAt(i)) return false;
  }
  return start + want.length < limit && img[start + want.length] === 0;
}

/** The body of the first section called `name` (as upstream's find_section). */
function sectionBody(img: Uint8Array, name: string): Result<Uint8Array> {
  const r = readSections(img);
  if (!r.ok) return r;
  const { sections, names } = r.value;
  const s = sections.find((x) => sectionNameIs(img, names, x.nameOffset, name));
  if (s === undefined) return err(`section ${name} not found`);
  if (s.offset + s.size > img.length) {
    return err(`section ${name} truncated (${s.size} bytes at offset ${s.offset}, file has ${img.length} bytes)`);
  }
  return ok(img.subarray(s.offset, s.offset + s.size));
}

/** The descriptor of the single note in a note section, checking owner, type and size. */
function noteDesc(body: Uint8Array, section: string, type: number): Result<Uint8Array> {
  if (body.length < 12) return err(`section ${section}: note header truncated (${body.length} of 12 bytes)`);
  const v = view(body);
  const namesz = v.getUint32(0, true);
  const descsz = v.getUint32(4, true);
  const ntype = v.getUint32(8, true);
  const nameEnd = 12 + namesz;
  const descStart = 12 + Math.ceil(namesz / 4) * 4;
  if (nameEnd > body.length) return err(`section ${section}: note name truncated`);
  const owner = body.subarray(12, nameEnd);
  const expected = NOTE_OWNER + '\0';
  if (namesz !== expected.length || !owner.every((b, i) => b === expected.charCodeAt(i))) {
    return err(`section ${section}: note owner is not ${NOTE_OWNER}`);
  }
  if (ntype !== type) return err(`section ${section}: note type 0x${ntype.toString(16)}, expected 0x${type.toString(16)}`);
  if (descStart + descsz > body.length) {
    return err(`section ${section}: note descriptor truncated (${descsz} bytes announced, ${Math.max(0, body.length - descStart)} present)`);
  }
  if (descStart + descsz !== body.length) return err(`section ${section}: extra data after the note`);
  return ok(body.subarray(descStart, descStart + descsz));
}

// ------------------------------------------------------------------ notes

/** The ABI note: target and ABI version. */
export function readAbi(image: Uint8Array): Result<Solo5Abi> {
  const body = sectionBody(image, ABI_SECTION);
  if (!body.ok) return body;
  const d = noteDesc(body.value, ABI_SECTION, NOTE_TYPE_ABI);
  if (!d.ok) return d;
  if (d.value.length !== 16) return err('abi manifest size mismatch');
  const v = view(d.value);
  const t = v.getUint32(0, true);
  const target = TARGETS[t];
  if (target === undefined) return err(`unknown abi target: ${t | 0}`);
  if (v.getUint32(8, true) !== 0) return err('non-zero reserved0');
  if (v.getUint32(12, true) !== 0) return err('non-zero reserved1');
  return ok({ target, version: v.getUint32(4, true) });
}

const utf8 = new TextDecoder('utf-8');

function parseEntry(e: Uint8Array): Result<{ type: number; name: string }> {
  const v = view(e);
  const nul = e.subarray(0, MFT_NAME_SIZE).indexOf(0);
  if (nul < 0) return err('unterminated device name');
  if (!e.subarray(72, 88).every((b) => b === 0)) return err('non-zero mft_entry.u');
  if (!e.subarray(88, 96).every((b) => b === 0)) return err('non-zero mft_entry.b');
  if (e[96] !== 0) return err('non-zero mft_entry.attached');
  const type = v.getUint32(MFT_NAME_SIZE, true);
  if (type !== MFT_TYPE_BLOCK && type !== MFT_TYPE_NET && type !== MFT_TYPE_RESERVED_FIRST) {
    return err(`unknown manifest entry type: ${type | 0}`);
  }
  if (type === MFT_TYPE_RESERVED_FIRST && !e.subarray(0, MFT_NAME_SIZE).every((b) => b === 0)) {
    return err('non-zero RESERVED_FIRST');
  }
  return ok({ type, name: utf8.decode(e.subarray(0, nul)) });
}

/**
 * The device manifest. Layout of the descriptor: 4 bytes padding (the note header is 20 bytes,
 * the manifest struct is 8-aligned), uint32 version (1), uint32 entry count (1..64), then
 * 104-byte entries, the first of them the reserved one. Messages are ocaml-solo5-elftool's.
 */
export function readManifest(image: Uint8Array): Result<Manifest> {
  const body = sectionBody(image, MANIFEST_SECTION);
  if (!body.ok) return body;
  const d = noteDesc(body.value, MANIFEST_SECTION, NOTE_TYPE_MANIFEST);
  if (!d.ok) return d;
  const desc = d.value;
  if (desc.length < 4 + 8 + MFT_ENTRY_SIZE) return err('manifest too small');
  const v = view(desc);
  const version = v.getUint32(4, true);
  const count = v.getUint32(8, true);
  if (version !== 1) return err('unsupported manifest version');
  if (count === 0) return err('zero manifest entries');
  if (count > MFT_MAX_ENTRIES) return err('too many manifest entries');
  if (desc.length - 12 !== count * MFT_ENTRY_SIZE) return err('unexpected note size');
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < count; i++) {
    const e = parseEntry(desc.subarray(12 + i * MFT_ENTRY_SIZE, 12 + (i + 1) * MFT_ENTRY_SIZE));
    if (i === 0) {
      if (!e.ok || e.value.type !== MFT_TYPE_RESERVED_FIRST) return err('expected RESERVED_FIRST');
      continue;
    }
    if (!e.ok) return e;
    if (e.value.type === MFT_TYPE_RESERVED_FIRST) return err('found RESERVED_FIRST not as first entry');
    entries.push({ kind: e.value.type === MFT_TYPE_BLOCK ? 'block' : 'net', name: e.value.name });
  }
  return ok({ version, entries });
}

/** Only hvt and spt images can be run (`unsupported solo5 target <t>`). */
export function executableTarget(abi: Solo5Abi): Result<ExecutableTarget> {
  return abi.target === 'hvt' || abi.target === 'spt' ? ok(abi.target) : err(`unsupported solo5 target ${abi.target}`);
}

// ------------------------------------------------------------------ manifest vs configuration

/** OCaml's `%S`: a double-quoted string literal with OCaml escapes (bytes >= 0x7f as \ddd). */
export function ocamlQuote(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += '\\\\';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x08) out += '\\b';
    else if (b < 0x20 || b >= 0x7f) out += '\\' + String(b).padStart(3, '0');
    else out += String.fromCharCode(b);
  }
  return out + '"';
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/**
 * The configured unikernel-side device names must equal, as sets, the manifest's block and
 * network devices (SEMANTICS.md §5.2), block devices checked first; messages are upstream's.
 */
export function checkManifest(m: Manifest, c: Pick<UnikernelConfig, 'blocks' | 'bridges'>): Result<void> {
  const present = m.entries.map((e) => `${e.kind} ${ocamlQuote(e.name)}`).join(', ');
  const mBlock = m.entries.filter((e) => e.kind === 'block').map((e) => e.name);
  const mNet = m.entries.filter((e) => e.kind === 'net').map((e) => e.name);
  if (!sameSet(mBlock, c.blocks.map((b) => b.blockName))) {
    return err(`specified block device(s) does not match with manifest. Devices present in manifest: ${present}`);
  }
  if (!sameSet(mNet, c.bridges.map((b) => b.netif))) {
    return err(`specified bridge(s) does not match with the manifest. Devices present in manifest: ${present}`);
  }
  return ok(undefined);
}

// ------------------------------------------------------------------ tender selection

export const tenderBase = (t: ExecutableTarget): string => (t === 'hvt' ? 'solo5-hvt' : 'solo5-spt');

/** Where to look for a tender: an executable file in dbdir, or a command name looked up in $PATH. */
export type TenderCandidate = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'path'; readonly command: string };

/**
 * Candidates in upstream's order, first match wins (SEMANTICS.md §6.2):
 * `<dbdir>/<base>.<v>`, `<base>.<v>` in $PATH, `<dbdir>/<base>`, `<base>` in $PATH.
 */
export function tenderCandidates(base: string, abi: Solo5Abi | number, dbdir: string): TenderCandidate[] {
  const v = typeof abi === 'number' ? abi : abi.version;
  const dir = dbdir.endsWith('/') ? dbdir : `${dbdir}/`;
  const out: TenderCandidate[] = [];
  for (const n of [`${base}.${v}`, base]) out.push({ kind: 'file', path: dir + n }, { kind: 'path', command: n });
  return out;
}

export const candidateText = (c: TenderCandidate): string => (c.kind === 'file' ? c.path : c.command);

/** The failure when no candidate exists. */
export function tenderNotFound(candidates: readonly TenderCandidate[]): string {
  return `tender does not exist, looked for ${candidates.map(candidateText).join(', ')}`;
}

/** OCaml's int_of_string for the forms a tender could plausibly print (decimal, 0x, 0o, 0b, `_`). */
function ocamlInt(s: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F][0-9a-fA-F_]*|0[oO][0-7][0-7_]*|0[bB][01][01_]*|[0-9][0-9_]*)$/.exec(s);
  if (m === null) return undefined;
  const digits = m[2].replace(/_/g, '');
  const n = /^0[xXoObB]/.test(digits) ? Number(digits.toLowerCase()) : Number(digits);
  return m[1] === '-' ? -n : n;
}

/**
 * The tender's `--version` output must contain a line that is exactly `ABI version <N>` with N
 * the image's ABI version (SEMANTICS.md §6.2).
 */
export function checkTenderVersionOutput(output: string, abi: Solo5Abi | number): Result<void> {
  const v = typeof abi === 'number' ? abi : abi.version;
  const lines = (output.endsWith('\n') ? output.slice(0, -1) : output).split('\n');
  const found = lines.some((l) => {
    const w = l.split(' ');
    return w.length === 3 && w[0] === 'ABI' && w[1] === 'version' && ocamlInt(w[2]) === v;
  });
  if (found) return ok(undefined);
  return err(`unexpected solo5 tender --version output, expected one line with 'ABI version ${v}', got ${lines.join('\n')}`);
}

/** Everything create needs from an image: the ABI (executable target) and the manifest. */
export interface ImageInfo {
  readonly abi: Solo5Abi;
  readonly target: ExecutableTarget;
  readonly manifest: Manifest;
}

/** Reads the ABI note (refusing non-executable targets) and the manifest, in upstream's order. */
export function inspectImage(image: Uint8Array): Result<ImageInfo> {
  const abi = readAbi(image);
  if (!abi.ok) return abi;
  const target = executableTarget(abi.value);
  if (!target.ok) return target;
  const manifest = readManifest(image);
  if (!manifest.ok) return manifest;
  return ok({ abi: abi.value, target: target.value, manifest: manifest.value });
}
