/**
 * Codec throughput: decode and encode of a typical create with a 100 KB image, of an info
 * reply with 1,000 unikernels (10,000 for reference), decodeWire of a small command, and
 * where decoding time goes: the strict DER check (der.ts), asn1js parsing, and our
 * codec walk over the parsed tree.
 */
import * as asn1js from 'asn1js';
import { randomBytes } from 'node:crypto';
import { parseDer } from '../src/core/der.js';
import { limits } from '../src/core/limits.js';
import { type Name, parseName } from '../src/core/name.js';
import { unwrap } from '../src/core/result.js';
import { type UnikernelConfig } from '../src/core/wire/common.js';
import { type NamedInfo } from '../src/core/wire/unikernel.js';
import { type Wire, command, decodeWire, encodeWire, makeHeader, reply, wire } from '../src/core/wire/wire.js';

const nm = (s: string): Name => unwrap(parseName(s));

/** Runs `f` for at least `ms` milliseconds (after a warm-up) and returns operations per second. */
export function opsPerSecond(f: () => unknown, ms = 600): number {
  const warm = performance.now();
  do f();
  while (performance.now() - warm < ms / 4);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    f();
    n++;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const fmt = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

function line(what: string, size: number, op: string, ops: number): void {
  const mbs = (size * ops) / 1e6;
  process.stdout.write(`  ${what.padEnd(44)} ${op.padEnd(7)} ${fmt(ops).padStart(9)} ops/s ${fmt(mbs).padStart(8)} MB/s\n`);
}

/** A typical create: solo5, 100 KB image (incompressible), one block, one network, arguments. */
export function createMessage(imageBytes = 100 * 1024): Wire {
  const config: UnikernelConfig = {
    typ: 'solo5', compressed: false, image: new Uint8Array(randomBytes(imageBytes)), startup: 10, addName: true,
    failBehaviour: { kind: 'restart', value: [1, 2] }, cpuids: [0], memory: 64,
    blocks: [{ blockName: 'storage' }], bridges: [{ netif: 'service', bridge: 'br0' }],
    arguments: ['--ipv4=10.0.0.2/24', '--ipv4-gateway=10.0.0.1'], cpus: 1,
  };
  return command(nm('org:web'), { kind: 'unikernel', value: { kind: 'create', value: config } });
}

/** An info reply as vmmd sends it for `n` running unikernels. */
export function infoReply(n: number): Wire {
  const infos: NamedInfo[] = [];
  for (let i = 0; i < n; i++) {
    infos.push({
      name: nm(`org${i % 20}:unikernel-${i}`),
      info: {
        typ: 'solo5', startup: 50, failBehaviour: { kind: 'quit', value: null }, cpuids: [i % 8], memory: 32,
        digest: new Uint8Array(32).fill(i & 0xff),
        blocks: [{ unikernelDevice: 'storage', hostDevice: `org${i % 20}:data-${i}`, sectorSize: 512, blockSize: 100 }],
        bridges: [{ unikernelDevice: 'service', hostDevice: 'br0', mac: new Uint8Array([0x02, 0, 0, 0, (i >> 8) & 0xff, i & 0xff]) }],
        arguments: ['--ipv4=10.0.0.2/24'], started: Date.UTC(2024, 0, 2, 3, 4, 5, 678), cpus: 1,
      },
    });
  }
  return reply(makeHeader(nm('org:')), { kind: 'unikernel_info', value: infos });
}

/**
 * Time in decodeWire split into its stages, each measured on its own: the strict DER
 * parse into a tree (der.ts) and our codec walk over that tree; for reference, what
 * asn1js.fromBER alone takes on the same bytes (the codec decoded through asn1js before).
 */
function split(what: string, bytes: Uint8Array, ms: number): void {
  const lim = { maxDepth: limits.maxDerDepth, maxElements: limits.maxDerElements, maxBytes: limits.maxFrameBytes };
  const opts = { parseEmbedded: false, copyInput: false, maxDepth: lim.maxDepth + 1, maxNodes: lim.maxElements + 1, maxContentLength: lim.maxBytes };
  const tree = parseDer(bytes, lim);
  if (!tree.ok) throw new Error(`${what}: ${tree.error}`);
  const parse = 1 / opsPerSecond(() => parseDer(bytes, lim), ms);
  const walk = 1 / opsPerSecond(() => wire.decode(tree.value, 'Wire'), ms);
  const full = 1 / opsPerSecond(() => decodeWire(bytes), ms);
  const viaAsn1js = 1 / opsPerSecond(() => asn1js.fromBER(bytes, opts), ms);
  const us = (x: number): string => (x >= 0.01 ? `${fmt(x * 1e3)} ms` : `${fmt(x * 1e6)} µs`);
  const pct = (x: number): string => `${Math.round((x / full) * 100)}%`;
  process.stdout.write(
    `  ${what}: decodeWire ${us(full)} = DER parse ${us(parse)} (${pct(parse)}) + codec walk ${us(walk)} (${pct(walk)});` +
      ` asn1js.fromBER alone: ${us(viaAsn1js)} (${fmt(viaAsn1js / full)}x decodeWire)\n`,
  );
}

export function run(): void {
  const cases: [string, Wire, number][] = [
    ['small command (unikernel info)', command(nm(':hello'), { kind: 'unikernel', value: { kind: 'info', value: null } }), 600],
    ['create, 100 KB image', createMessage(), 600],
    ['info reply, 1,000 unikernels', infoReply(1000), 800],
    ['info reply, 10,000 unikernels', infoReply(10000), 1000],
  ];
  const encoded: [string, Uint8Array, number][] = [];
  for (const [what, w, ms] of cases) {
    const bytes = encodeWire(w);
    if (!decodeWire(bytes).ok) throw new Error(`${what}: does not decode`);
    const label = `${what} (${fmt(bytes.length)} B)`;
    line(label, bytes.length, 'decode', opsPerSecond(() => decodeWire(bytes), ms));
    line(label, bytes.length, 'encode', opsPerSecond(() => encodeWire(w), ms));
    encoded.push([label, bytes, ms]);
  }
  process.stdout.write('where decoding time goes:\n');
  for (const [label, bytes, ms] of encoded.slice(0, 3)) split(label, bytes, ms / 2);
}
