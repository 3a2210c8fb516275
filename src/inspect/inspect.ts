/**
 * The pure part of vmmc_inspect: input forms (raw, hex, framed), wire and log messages
 * to and from their JSON form, the state file as JSON, certificates and requests as
 * text. No IO: the command-line shell reads the files and prints what these return.
 */
import { createHash } from 'node:crypto';
import { type Json, encodeDer, fromJson } from '../core/asn.js';
import { readFrames } from '../core/frame.js';
import { nameToString } from '../core/name.js';
import { type Result, ok, err } from '../core/result.js';
import { policy, type UnikernelConfig } from '../core/wire/common.js';
import { decodeLogWire, logWire } from '../core/wire/log.js';
import { type StateVersion, decodeState } from '../core/wire/state.js';
import { unikernelConfig } from '../core/wire/unikernel.js';
import { ALBATROSS_OID, decodeWire, wire } from '../core/wire/wire.js';
import { decodeLeafExtension, leafExtension } from '../core/wire/leaf.js';
import { certFacts, csrFacts, pemBlocks } from '../core/x509.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

// ------------------------------------------------------------------ input forms

export interface InputForm {
  /** The input is hex text (whitespace ignored). */
  hex: boolean;
  /** The input is one whole frame: 4-byte big-endian length, then the body. */
  frame: boolean;
}

/** Hex text to bytes; whitespace is ignored, anything else that is not a hex digit is an error with its offset. */
export function parseHex(text: string): Result<Uint8Array> {
  const bad = /[^0-9a-fA-F\s]/.exec(text);
  if (bad) return err(`not hex: ${JSON.stringify(bad[0])} at character ${bad.index}`);
  const digits = text.replace(/\s+/g, '');
  if (digits.length % 2 !== 0) return err(`odd number of hex digits (${digits.length})`);
  return ok(new Uint8Array(Buffer.from(digits, 'hex')));
}

/** Applies the input form: hex text to bytes, then the frame (exactly one, nothing after it) to its body. */
export function messageBytes(input: Uint8Array, form: InputForm): Result<Uint8Array> {
  let bytes = input;
  if (form.hex) {
    const h = parseHex(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1'));
    if (!h.ok) return h;
    bytes = h.value;
  }
  if (!form.frame) return ok(bytes);
  if (bytes.length < 4) return err(`frame: truncated length (${bytes.length} of 4 bytes)`);
  const announced = new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0);
  const { frames, last } = readFrames(bytes);
  if (frames.length === 0) {
    if (last.kind === 'error') return err(`frame: ${last.error}`);
    if (last.kind === 'end') return err(`frame: length ${announced} marks the end of a stream, not a message`);
    return err(`frame: truncated (length ${announced}, only ${bytes.length - 4} bytes follow)`);
  }
  const after = bytes.length - 4 - frames[0].length;
  if (after !== 0) return err(`frame: ${after} bytes after the frame of ${frames[0].length} bytes`);
  return ok(frames[0]);
}

// ------------------------------------------------------------------ wire messages

/** Which message family a body belongs to: a version-5 Wire message, or our log protocol's LogWire. */
export type Family = 'wire' | 'log';

/** The JSON key that marks a log message in our JSON form (a Wire message has `header` and `payload`). */
export const LOG_KEY = 'LogWire';

/**
 * Decodes a frame body. A version-5 Wire message is shown as the `wire` codec's JSON; when
 * that fails and the body is a log command or event (payload [4] or [5]), it is shown as
 * `{ "LogWire": ... }`. Otherwise the Wire decoder's error is returned.
 */
export function wireToJson(body: Uint8Array): Result<{ family: Family; json: Json }> {
  const w = decodeWire(body);
  if (w.ok) return ok({ family: 'wire', json: wire.toJson(w.value) });
  const l = decodeLogWire(body);
  if (l.ok && (l.value.payload.kind === 'command' || l.value.payload.kind === 'data'))
    return ok({ family: 'log', json: { [LOG_KEY]: logWire.toJson(l.value) } });
  return w;
}

/** The DER of a message in the JSON form of wireToJson. */
export function jsonToWire(j: Json): Result<{ family: Family; der: Uint8Array }> {
  const isObject = j !== null && typeof j === 'object' && !Array.isArray(j);
  const isLog = isObject && Object.keys(j).length === 1 && LOG_KEY in j;
  try {
    if (isLog) {
      const v = fromJson(logWire, (j as { [k: string]: Json })[LOG_KEY]);
      return v.ok ? ok({ family: 'log', der: encodeDer(logWire, v.value) }) : v;
    }
    const v = fromJson(wire, j);
    return v.ok ? ok({ family: 'wire', der: encodeDer(wire, v.value) }) : v;
  } catch (e) {
    // values the JSON form admits but a wire form cannot carry (e.g. two CPU ids in a legacy config)
    if (e instanceof TypeError || e instanceof RangeError) return err(e.message);
    throw e;
  }
}

/** Parses JSON text with a message that names the position. */
export function parseJson(text: string): Result<Json> {
  try {
    return ok(JSON.parse(text) as Json);
  } catch (e) {
    return err(`invalid JSON: ${(e as Error).message}`);
  }
}

/**
 * Parses a sequence of JSON objects or arrays separated by whitespace (what `wire` prints
 * for several files). Each document is located by balancing brackets outside strings,
 * then parsed; an error names the document and its character offset.
 */
export function parseJsonDocuments(text: string): Result<Json[]> {
  const out: Json[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    while (i < n && /\s/.test(text[i])) i++;
    if (i === n) break;
    const start = i;
    if (text[i] !== '{' && text[i] !== '[') return err(`invalid JSON: document ${out.length + 1} at character ${i} does not start with { or [`);
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = text[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        if (--depth === 0) break;
      }
    }
    if (i === n) return err(`invalid JSON: document ${out.length + 1} at character ${start} is not closed`);
    i++;
    const j = parseJson(text.slice(start, i));
    if (!j.ok) return err(`document ${out.length + 1} at character ${start}: ${j.error}`);
    out.push(j.value);
  }
  if (out.length === 0) return err('no JSON document in the input');
  return ok(out);
}

// ------------------------------------------------------------------ state file

/** The context tag of each state file alternative (WIRE.md §4 State). */
export const STATE_TAGS: Record<StateVersion, number> = {
  v1_unikernels: 0,
  v0_unikernels: 1,
  v2_unikernels: 2,
  v3_unikernels: 3,
  v3_unikernels_and_policies: 4,
  v4_unikernels_and_policies: 5,
  unikernels_and_policies: 6,
};

/** An image shown by its size and SHA-256. */
export function imageSummary(image: Uint8Array): Json {
  return { bytes: image.length, sha256: createHash('sha256').update(image).digest('hex') };
}

function configJson(c: UnikernelConfig, images: boolean): Json {
  const j = unikernelConfig.toJson(c) as { [k: string]: Json };
  if (!images) j.image = imageSummary(c.image);
  return j;
}

/** The state file as JSON: the alternative it used, the unikernels (images summarised unless `images`), the policies. */
export function stateToJson(bytes: Uint8Array, images: boolean): Result<Json> {
  const r = decodeState(bytes);
  if (!r.ok) return r;
  const { version, dump } = r.value;
  return ok({
    format: `[${STATE_TAGS[version]}] ${version}`,
    unikernels: dump.unikernels.map((u) => ({ name: nameToString(u.name), config: configJson(u.config, images) })),
    policies: dump.policies.map((p) => ({ name: nameToString(p.name), policy: policy.toJson(p.policy) })),
  });
}

// ------------------------------------------------------------------ certificates

/** Replaces every `"image": "<hex>"` in a JSON value by its size and SHA-256. */
export function summariseImages(j: Json): Json {
  if (Array.isArray(j)) return j.map(summariseImages);
  if (j === null || typeof j !== 'object') return j;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(j)) {
    out[k] = k === 'image' && typeof v === 'string' && /^([0-9a-f]{2})*$/.test(v)
      ? imageSummary(new Uint8Array(Buffer.from(v, 'hex')))
      : summariseImages(v);
  }
  return out;
}

const when = (t: number | undefined): string => (t === undefined || !Number.isFinite(t) ? 'unknown' : new Date(t).toISOString());

function extensionLines(exts: { oid: string; value: Uint8Array }[], images: boolean): Result<string[]> {
  const ext = exts.find((e) => e.oid === ALBATROSS_OID);
  if (ext === undefined) return ok(['  no albatross extension']);
  // upstream's commands and our status and log leaves (WIRE.md §8.3)
  const r = decodeLeafExtension(ext.value);
  if (!r.ok) return err(`albatross extension ${hexOf(ext.value).slice(0, 64)}: ${r.error}`);
  const j = leafExtension.toJson(r.value) as { version: Json; command: Json };
  const cmd = images ? j.command : summariseImages(j.command);
  return ok([`  albatross extension: version ${String(j.version)}`, `  command: ${JSON.stringify(cmd)}`]);
}

/**
 * Describes every certificate and certificate request of a PEM text (or one DER
 * certificate when the input has no PEM block): subject CN, issuer, validity, CA flag,
 * and the albatross extension. Other PEM blocks (keys) are named and skipped.
 */
export function describeCertificates(input: Uint8Array, images: boolean): Result<string> {
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
  let blocks = pemBlocks(text);
  const pem = blocks.length > 0;
  if (!pem) {
    if (text.includes('-----BEGIN')) return err('no complete PEM block (BEGIN without a matching END)');
    if (input.length === 0) return err('empty input');
    blocks = [{ label: 'CERTIFICATE', der: input }];
  }
  const out: string[] = [];
  for (const [i, b] of blocks.entries()) {
    const where = pem ? `block ${i + 1} (${b.label})` : 'no PEM block, and not a DER certificate';
    if (b.label === 'CERTIFICATE') {
      const f = certFacts(b.der);
      if (!f.ok) return err(`${where}: ${f.error}`);
      const ext = extensionLines(f.value.extensions, images);
      if (!ext.ok) return err(`${where}: ${ext.error}`);
      out.push(
        `certificate ${i + 1}: CN=${f.value.subjectCN ?? '(none)'}`,
        `  issuer: CN=${f.value.issuerCN ?? '(none)'}`,
        `  valid: ${when(f.value.notBefore)} to ${when(f.value.notAfter)}`,
        `  CA: ${f.value.isCA ? 'yes' : 'no'}`,
        ...ext.value,
      );
    } else if (b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST') {
      const f = csrFacts(b.der);
      if (!f.ok) return err(`${where}: ${f.error}`);
      const ext = extensionLines(f.value.extensions, images);
      if (!ext.ok) return err(`${where}: ${ext.error}`);
      out.push(`certificate request ${i + 1}: CN=${f.value.subjectCN ?? '(none)'}`, ...ext.value);
    } else {
      out.push(`block ${i + 1}: ${b.label} (skipped)`);
    }
  }
  return ok(`${out.join('\n')}\n`);
}

