/**
 * Unikernel family (WIRE.md §4 UnikernelCmd, UnikernelConfig and its legacy forms,
 * UnikernelArgs, RestartArgs, UnikernelInfo and the info reply lists).
 *
 * Every wire form is declared once as a `seq` of what is on the wire, and `map`ped to
 * the normalised TypeScript value (UnikernelConfig, UnikernelArgs, UnikernelInfo) with
 * the defaults of WIRE.md §4.1 applied on decode. Encoding maps back and emits what
 * upstream emits (§4.2): `blocks`/`bridges` only when non-empty, `arguments` exactly
 * when defined, `cpus` (and `started` in info) always.
 *
 * The legacy forms exist so that old clients, old certificates and old state files
 * keep working; upstream never emits them. Their encoders are for tests and old
 * peers: a field the legacy form cannot carry (startup, add-name, cpus, boot
 * partition, MACs in V1/V2, ...) is dropped, except that a single-CPU form needs
 * exactly one CPU id (a TypeError otherwise, as upstream aborts).
 */
import {
  type Codec, type Time, type TypeOf, bool, choice, explicit, generalizedTime, int, map, name, octets, opt,
  encodeDer, remembering, seq, seqOf, setOf, tagNull, textToBytes, utf8,
} from '../asn.js';
import { type Name, nameToString } from '../name.js';
import { headerLength, outRaw, put, writeHeader } from '../der.js';
import {
  type UnikernelArgs, type UnikernelConfig, type Typ, type FailBehaviour, type NetDevice, blockDevice, failBehaviour, macAddr,
  netDevice, typName,
} from './common.js';

// ------------------------------------------------------------------ shared pieces

const blocksField = opt(explicit(0, setOf(blockDevice)));
const bridgesField = opt(explicit(1, setOf(netDevice)));
const argumentsField = opt(explicit(2, seqOf(utf8)));

/** The list as carried by an OPTIONAL field: absent when empty. */
const nonEmpty = <T>(xs: T[]): T[] | undefined => (xs.length === 0 ? undefined : xs);

/** Copies the defined entries of `extra` onto `base` (so absent stays absent, not `undefined`). */
function withDefined<T extends object>(base: T, extra: Partial<T>): T {
  const out = base as Record<string, unknown>;
  const add = extra as Record<string, unknown>;
  for (const k in add) if (add[k] !== undefined) out[k] = add[k];
  return base;
}

/** The one CPU id of a single-CPU legacy form. */
function singleCpu(what: string, cpuids: readonly number[]): number {
  if (cpuids.length !== 1) throw new TypeError(`${what} carries exactly one CPU id, got ${cpuids.length}`);
  return cpuids[0];
}

// ------------------------------------------------------------------ UnikernelConfig

/** UnikernelConfig as on the wire (create [20]/[21], state [6]). */
const unikernelConfigWire = seq('UnikernelConfig', {
  typ: typName,
  compressed: bool,
  image: octets,
  startup: opt(int),
  addName: bool,
  failBehaviour,
  cpuids: setOf(int),
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
  cpus: opt(explicit(3, int)),
  linuxBootPartition: opt(explicit(4, utf8)),
});

export const unikernelConfig: Codec<UnikernelConfig> = map(
  unikernelConfigWire,
  'UnikernelConfig',
  (w) =>
    withDefined<UnikernelConfig>(
      {
        typ: w.typ, compressed: w.compressed, image: w.image, addName: w.addName, failBehaviour: w.failBehaviour,
        cpuids: w.cpuids, memory: w.memory, blocks: w.blocks ?? [], bridges: w.bridges ?? [], cpus: w.cpus ?? 1,
      },
      { startup: w.startup, arguments: w.arguments, linuxBootPartition: w.linuxBootPartition },
    ),
  (c) => ({
    typ: c.typ, compressed: c.compressed, image: c.image, startup: c.startup, addName: c.addName,
    failBehaviour: c.failBehaviour, cpuids: c.cpuids, memory: c.memory, blocks: nonEmpty(c.blocks),
    bridges: nonEmpty(c.bridges), arguments: c.arguments, cpus: c.cpus, linuxBootPartition: c.linuxBootPartition,
  }),
);

/** The parts every single-CPU legacy config decodes to the same way. */
function legacyConfig(
  w: { typ: Typ; compressed: boolean; image: Uint8Array; failBehaviour: FailBehaviour; memory: number; arguments?: string[] },
  cpuid: number, startup: number | undefined, addName: boolean,
  blocks: UnikernelConfig['blocks'], bridges: UnikernelConfig['bridges'],
): UnikernelConfig {
  return withDefined<UnikernelConfig>(
    {
      typ: w.typ, compressed: w.compressed, image: w.image, addName, failBehaviour: w.failBehaviour, cpuids: [cpuid],
      memory: w.memory, blocks, bridges, cpus: 1,
    },
    { startup, arguments: w.arguments },
  );
}

/** UnikernelConfigV4 (legacy create [16]/[17], state [5]): one CPU id, no cpus, no boot partition. */
const unikernelConfigV4Wire = seq('UnikernelConfigV4', {
  typ: typName,
  compressed: bool,
  image: octets,
  startup: opt(int),
  addName: bool,
  failBehaviour,
  cpuid: int,
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
});

export const unikernelConfigV4: Codec<UnikernelConfig> = map(
  unikernelConfigV4Wire,
  'UnikernelConfigV4',
  (w) => legacyConfig(w, w.cpuid, w.startup, w.addName, w.blocks ?? [], w.bridges ?? []),
  (c) => ({
    typ: c.typ, compressed: c.compressed, image: c.image, startup: c.startup, addName: c.addName,
    failBehaviour: c.failBehaviour, cpuid: singleCpu('UnikernelConfigV4', c.cpuids), memory: c.memory,
    blocks: nonEmpty(c.blocks), bridges: nonEmpty(c.bridges), arguments: c.arguments,
  }),
);

/** UnikernelConfigV3 (legacy create [9]/[10], state [3]/[4]): no startup, add-name TRUE. */
const unikernelConfigV3Wire = seq('UnikernelConfigV3', {
  typ: typName,
  compressed: bool,
  image: octets,
  failBehaviour,
  cpuid: int,
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
});

export const unikernelConfigV3: Codec<UnikernelConfig> = map(
  unikernelConfigV3Wire,
  'UnikernelConfigV3',
  (w) => legacyConfig(w, w.cpuid, undefined, true, w.blocks ?? [], w.bridges ?? []),
  (c) => ({
    typ: c.typ, compressed: c.compressed, image: c.image, failBehaviour: c.failBehaviour,
    cpuid: singleCpu('UnikernelConfigV3', c.cpuids), memory: c.memory, blocks: nonEmpty(c.blocks),
    bridges: nonEmpty(c.bridges), arguments: c.arguments,
  }),
);

/** UnikernelConfigV2 (legacy state [2]): block names only; bridges with an optional host bridge, no MAC. */
const unikernelConfigV2Wire = seq('UnikernelConfigV2', {
  typ: typName,
  compressed: bool,
  image: octets,
  failBehaviour,
  cpuid: int,
  memory: int,
  blocks: opt(explicit(0, setOf(utf8))),
  bridges: opt(explicit(1, seqOf(seq('NetDeviceV2', { netif: utf8, bridge: opt(utf8) })))),
  arguments: argumentsField,
});

export const unikernelConfigV2: Codec<UnikernelConfig> = map(
  unikernelConfigV2Wire,
  'UnikernelConfigV2',
  (w) =>
    legacyConfig(
      w, w.cpuid, undefined, true,
      (w.blocks ?? []).map((blockName) => ({ blockName })),
      (w.bridges ?? []).map((b) => withDefined<NetDevice>({ netif: b.netif }, { bridge: b.bridge })),
    ),
  (c) => ({
    typ: c.typ, compressed: c.compressed, image: c.image, failBehaviour: c.failBehaviour,
    cpuid: singleCpu('UnikernelConfigV2', c.cpuids), memory: c.memory,
    blocks: nonEmpty(c.blocks.map((b) => b.blockName)),
    bridges: nonEmpty(c.bridges.map((b) => ({ netif: b.netif, bridge: b.bridge }))),
    arguments: c.arguments,
  }),
);

/** UnikernelConfigV1 (legacy state [0]): block and network device names only. */
const unikernelConfigV1Wire = seq('UnikernelConfigV1', {
  typ: typName,
  compressed: bool,
  image: octets,
  failBehaviour,
  cpuid: int,
  memory: int,
  blocks: opt(explicit(0, setOf(utf8))),
  bridges: opt(explicit(1, setOf(utf8))),
  arguments: argumentsField,
});

export const unikernelConfigV1: Codec<UnikernelConfig> = map(
  unikernelConfigV1Wire,
  'UnikernelConfigV1',
  (w) =>
    legacyConfig(
      w, w.cpuid, undefined, true,
      (w.blocks ?? []).map((blockName) => ({ blockName })),
      (w.bridges ?? []).map((netif) => ({ netif })),
    ),
  (c) => ({
    typ: c.typ, compressed: c.compressed, image: c.image, failBehaviour: c.failBehaviour,
    cpuid: singleCpu('UnikernelConfigV1', c.cpuids), memory: c.memory,
    blocks: nonEmpty(c.blocks.map((b) => b.blockName)), bridges: nonEmpty(c.bridges.map((b) => b.netif)),
    arguments: c.arguments,
  }),
);

/** The image of a V0 config: the tender target is implied by the alternative. */
const imageV0 = choice('ImageV0', {
  hvt_amd64: explicit(0, octets),
  hvt_arm64: explicit(1, octets),
  hvt_amd64_compressed: explicit(2, octets),
});

/** UnikernelConfigV0 (legacy state [1], 2018): at most one block device, network interfaces by name. */
const unikernelConfigV0Wire = seq('UnikernelConfigV0', {
  cpu: int,
  memory: int,
  block: opt(utf8),
  networkInterfaces: opt(seqOf(utf8)),
  image: imageV0,
  arguments: opt(seqOf(utf8)),
});

/**
 * V0 decodes as upstream does: solo5, quit on exit, compressed iff the image is
 * `hvt-amd64-compressed`. The target architecture is not kept, so an `hvt-arm64`
 * image re-encodes as `hvt-amd64` (upstream cannot encode V0 at all).
 */
export const unikernelConfigV0: Codec<UnikernelConfig> = map(
  unikernelConfigV0Wire,
  'UnikernelConfigV0',
  (w) =>
    withDefined<UnikernelConfig>(
      {
        typ: 'solo5', compressed: w.image.kind === 'hvt_amd64_compressed', image: w.image.value, addName: true,
        failBehaviour: { kind: 'quit', value: null }, cpuids: [w.cpu], memory: w.memory,
        blocks: w.block === undefined ? [] : [{ blockName: w.block }],
        bridges: (w.networkInterfaces ?? []).map((netif) => ({ netif })), cpus: 1,
      },
      { arguments: w.arguments },
    ),
  (c) => {
    if (c.blocks.length > 1) throw new TypeError(`UnikernelConfigV0 carries at most one block device, got ${c.blocks.length}`);
    return {
      cpu: singleCpu('UnikernelConfigV0', c.cpuids),
      memory: c.memory,
      block: c.blocks[0]?.blockName,
      networkInterfaces: nonEmpty(c.bridges.map((b) => b.netif)),
      image: { kind: c.compressed ? 'hvt_amd64_compressed' : 'hvt_amd64', value: c.image } as TypeOf<typeof imageV0>,
      arguments: c.arguments,
    };
  },
);

// ------------------------------------------------------------------ UnikernelArgs (restart)

const unikernelArgsWire = seq('UnikernelArgs', {
  failBehaviour,
  startup: opt(int),
  addName: bool,
  cpuids: setOf(int),
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
  cpus: opt(explicit(3, int)),
  linuxBootPartition: opt(explicit(4, utf8)),
});

export const unikernelArgs: Codec<UnikernelArgs> = map(
  unikernelArgsWire,
  'UnikernelArgs',
  (w) =>
    withDefined<UnikernelArgs>(
      {
        failBehaviour: w.failBehaviour, addName: w.addName, cpuids: w.cpuids, memory: w.memory,
        blocks: w.blocks ?? [], bridges: w.bridges ?? [], cpus: w.cpus ?? 1,
      },
      { startup: w.startup, arguments: w.arguments, linuxBootPartition: w.linuxBootPartition },
    ),
  (a) => ({
    failBehaviour: a.failBehaviour, startup: a.startup, addName: a.addName, cpuids: a.cpuids, memory: a.memory,
    blocks: nonEmpty(a.blocks), bridges: nonEmpty(a.bridges), arguments: a.arguments, cpus: a.cpus,
    linuxBootPartition: a.linuxBootPartition,
  }),
);

function legacyArgs(
  w: { failBehaviour: FailBehaviour; memory: number; blocks?: UnikernelArgs['blocks']; bridges?: UnikernelArgs['bridges']; arguments?: string[] },
  cpuid: number, startup: number | undefined, addName: boolean,
): UnikernelArgs {
  return withDefined<UnikernelArgs>(
    {
      failBehaviour: w.failBehaviour, addName, cpuids: [cpuid], memory: w.memory, blocks: w.blocks ?? [],
      bridges: w.bridges ?? [], cpus: 1,
    },
    { startup, arguments: w.arguments },
  );
}

/** UnikernelArgsV1 (legacy restart [14] [2]): one CPU id. */
const unikernelArgsV1Wire = seq('UnikernelArgsV1', {
  failBehaviour,
  startup: opt(int),
  addName: bool,
  cpuid: int,
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
});

export const unikernelArgsV1: Codec<UnikernelArgs> = map(
  unikernelArgsV1Wire,
  'UnikernelArgsV1',
  (w) => legacyArgs(w, w.cpuid, w.startup, w.addName),
  (a) => ({
    failBehaviour: a.failBehaviour, startup: a.startup, addName: a.addName, cpuid: singleCpu('UnikernelArgsV1', a.cpuids),
    memory: a.memory, blocks: nonEmpty(a.blocks), bridges: nonEmpty(a.bridges), arguments: a.arguments,
  }),
);

/** UnikernelArgsV0 (legacy restart [14] [1]): one CPU id, no startup, add-name TRUE. */
const unikernelArgsV0Wire = seq('UnikernelArgsV0', {
  failBehaviour,
  cpuid: int,
  memory: int,
  blocks: blocksField,
  bridges: bridgesField,
  arguments: argumentsField,
});

export const unikernelArgsV0: Codec<UnikernelArgs> = map(
  unikernelArgsV0Wire,
  'UnikernelArgsV0',
  (w) => legacyArgs(w, w.cpuid, undefined, true),
  (a) => ({
    failBehaviour: a.failBehaviour, cpuid: singleCpu('UnikernelArgsV0', a.cpuids), memory: a.memory,
    blocks: nonEmpty(a.blocks), bridges: nonEmpty(a.bridges), arguments: a.arguments,
  }),
);

/** RestartArgs: restart unchanged ([0], what upstream sends without arguments) or with new settings ([3]). */
export const restartArgs = choice('RestartArgs', {
  no_arguments: tagNull(0),
  arguments_v0: explicit(1, unikernelArgsV0),
  arguments_v1: explicit(2, unikernelArgsV1),
  arguments: explicit(3, unikernelArgs),
});
export type RestartArgs = TypeOf<typeof restartArgs>;

// ------------------------------------------------------------------ UnikernelCmd

/** Tags of commands upstream dropped; what they were is from WIRE.md §8 where known. */
const retired = (n: number, was?: string): string =>
  `UnikernelCmd [${n}]${was === undefined ? '' : ` (${was})`} is retired and no longer supported`;

export const unikernelCmd = choice(
  'UnikernelCmd',
  {
    destroy: tagNull(3),
    create_v3: explicit(9, unikernelConfigV3),
    force_create_v3: explicit(10, unikernelConfigV3),
    /** Compression level of the returned image (0 = uncompressed). */
    get: explicit(11, int),
    restart: explicit(14, restartArgs),
    info_v4: tagNull(15),
    create_v4: explicit(16, unikernelConfigV4),
    force_create_v4: explicit(17, unikernelConfigV4),
    info_v5: tagNull(18),
    info: tagNull(19),
    create: explicit(20, unikernelConfig),
    force_create: explicit(21, unikernelConfig),
  },
  {
    0: retired(0, 'info of 2021 and before'),
    1: retired(1, 'create with a V1 configuration'),
    2: retired(2, 'force-create with a V1 configuration'),
    4: retired(4, 'create with a V2 configuration'),
    5: retired(5, 'force-create with a V2 configuration'),
    6: retired(6, 'get of 2021 and before'),
    7: retired(7, 'info of 2021'),
    8: retired(8, 'get of 2021'),
    12: retired(12),
    13: retired(13),
  },
);
export type UnikernelCmd = TypeOf<typeof unikernelCmd>;

// ------------------------------------------------------------------ UnikernelInfo

export const blockInfo = seq('BlockInfo', {
  unikernelDevice: utf8,
  /** block-device-name, or block-name if absent. */
  hostDevice: utf8,
  /** Configured sector size, or 512. */
  sectorSize: int,
  /** Size of the host block device in MB (0 if unknown). */
  blockSize: int,
});
export type BlockInfo = TypeOf<typeof blockInfo>;

export const netInfo = seq('NetInfo', {
  unikernelDevice: utf8,
  /** bridge, or netif if absent. */
  hostDevice: utf8,
  /** The MAC actually used. */
  mac: macAddr,
});
export type NetInfo = TypeOf<typeof netInfo>;

/** A running unikernel as reported by `info`, normalised like UnikernelConfig. */
export interface UnikernelInfo {
  typ: Typ;
  startup?: number;
  failBehaviour: FailBehaviour;
  cpuids: number[];
  memory: number;
  /** solo5: SHA-256 of the uncompressed image; bhyve: the VM name in ASCII. */
  digest: Uint8Array;
  blocks: BlockInfo[];
  bridges: NetInfo[];
  arguments?: string[];
  /** Start time; 0 (1970-01-01) when absent on the wire. */
  started: Time;
  cpus: number;
  linuxBootPartition?: string;
}

const infoBlocksField = opt(explicit(0, setOf(blockInfo)));
const infoBridgesField = opt(explicit(1, setOf(netInfo)));
const startedField = opt(explicit(3, generalizedTime));

const unikernelInfoWire = seq('UnikernelInfo', {
  typ: typName,
  startup: opt(int),
  failBehaviour,
  cpuids: setOf(int),
  memory: int,
  digest: octets,
  blocks: infoBlocksField,
  bridges: infoBridgesField,
  arguments: argumentsField,
  started: startedField,
  cpus: opt(explicit(4, int)),
  linuxBootPartition: opt(explicit(5, utf8)),
});

export const unikernelInfo: Codec<UnikernelInfo> = map(
  unikernelInfoWire,
  'UnikernelInfo',
  (w) =>
    withDefined<UnikernelInfo>(
      {
        typ: w.typ, failBehaviour: w.failBehaviour, cpuids: w.cpuids, memory: w.memory, digest: w.digest,
        blocks: w.blocks ?? [], bridges: w.bridges ?? [], started: w.started ?? 0, cpus: w.cpus ?? 1,
      },
      { startup: w.startup, arguments: w.arguments, linuxBootPartition: w.linuxBootPartition },
    ),
  (i) => ({
    typ: i.typ, startup: i.startup, failBehaviour: i.failBehaviour, cpuids: i.cpuids, memory: i.memory,
    digest: i.digest, blocks: nonEmpty(i.blocks), bridges: nonEmpty(i.bridges), arguments: i.arguments,
    started: i.started, cpus: i.cpus, linuxBootPartition: i.linuxBootPartition,
  }),
);

function legacyInfo(
  w: {
    typ: Typ; failBehaviour: FailBehaviour; cpuid: number; memory: number; digest: Uint8Array;
    blocks?: BlockInfo[]; bridges?: NetInfo[]; arguments?: string[]; started?: Time;
  },
  startup: number | undefined,
): UnikernelInfo {
  return withDefined<UnikernelInfo>(
    {
      typ: w.typ, failBehaviour: w.failBehaviour, cpuids: [w.cpuid], memory: w.memory, digest: w.digest,
      blocks: w.blocks ?? [], bridges: w.bridges ?? [], started: w.started ?? 0, cpus: 1,
    },
    { startup, arguments: w.arguments },
  );
}

/** UnikernelInfoV5 (legacy reply [11] to info-v5 [18]): one CPU id. */
const unikernelInfoV5Wire = seq('UnikernelInfoV5', {
  typ: typName,
  startup: opt(int),
  failBehaviour,
  cpuid: int,
  memory: int,
  digest: octets,
  blocks: infoBlocksField,
  bridges: infoBridgesField,
  arguments: argumentsField,
  started: startedField,
});

export const unikernelInfoV5: Codec<UnikernelInfo> = map(
  unikernelInfoV5Wire,
  'UnikernelInfoV5',
  (w) => legacyInfo(w, w.startup),
  (i) => ({
    typ: i.typ, startup: i.startup, failBehaviour: i.failBehaviour, cpuid: singleCpu('UnikernelInfoV5', i.cpuids),
    memory: i.memory, digest: i.digest, blocks: nonEmpty(i.blocks), bridges: nonEmpty(i.bridges),
    arguments: i.arguments, started: i.started,
  }),
);

/** UnikernelInfoV4 (legacy reply [9] to info-v4 [15]): one CPU id, no startup. */
const unikernelInfoV4Wire = seq('UnikernelInfoV4', {
  typ: typName,
  failBehaviour,
  cpuid: int,
  memory: int,
  digest: octets,
  blocks: infoBlocksField,
  bridges: infoBridgesField,
  arguments: argumentsField,
  started: startedField,
});

export const unikernelInfoV4: Codec<UnikernelInfo> = map(
  unikernelInfoV4Wire,
  'UnikernelInfoV4',
  (w) => legacyInfo(w, undefined),
  (i) => ({
    typ: i.typ, failBehaviour: i.failBehaviour, cpuid: singleCpu('UnikernelInfoV4', i.cpuids), memory: i.memory,
    digest: i.digest, blocks: nonEmpty(i.blocks), bridges: nonEmpty(i.bridges), arguments: i.arguments,
    started: i.started,
  }),
);

export interface NamedInfo {
  /** Relative to the queried path, or the header name for a single unikernel (WIRE.md §4.3). */
  name: Name;
  info: UnikernelInfo;
}

const namedList = (what: string, info: Codec<UnikernelInfo>): Codec<NamedInfo[]> =>
  seqOf(seq(what, { name, info }));

/**
 * UnikernelInfo whose encoding can be kept with the value: vmmd remembers the info of each
 * running unikernel when it starts, so an info reply copies those octets and encodes only
 * the names.
 */
export const rememberedUnikernelInfo = remembering(unikernelInfo);

/** Reply [13] unikernel-info (to info [19]) as the combinators build it (namedInfoList encodes the same octets). */
export const namedInfoListGeneric: Codec<NamedInfo[]> = namedList('NamedInfo', rememberedUnikernelInfo);

/**
 * The octets of `SEQUENCE OF SEQUENCE { name UTF8String, info UnikernelInfo }`, written
 * straight into one buffer: per entry the name and the info's remembered octets (or its
 * encoding when it has none). An info reply of thousands of unikernels then holds no tree of
 * pieces per entry while it is written, which keeps vmmd's garbage collector out of the way.
 */
function encodeNamedInfos(list: readonly NamedInfo[]): Uint8Array {
  const names: Uint8Array[] = new Array(list.length);
  const infos: Uint8Array[] = new Array(list.length);
  let body = 0;
  for (let i = 0; i < list.length; i++) {
    const n = textToBytes(nameToString(list[i].name));
    const info = rememberedUnikernelInfo.encoded(list[i].info) ?? encodeDer(unikernelInfo, list[i].info);
    names[i] = n;
    infos[i] = info;
    const inner = headerLength(n.length) + n.length + info.length;
    body += headerLength(inner) + inner;
  }
  const out = new Uint8Array(headerLength(body) + body);
  let p = writeHeader(out, 0, 0x30, body);
  for (let i = 0; i < list.length; i++) {
    const n = names[i];
    p = writeHeader(out, p, 0x30, headerLength(n.length) + n.length + infos[i].length);
    p = put(n, out, writeHeader(out, p, 0x0c, n.length));
    p = put(infos[i], out, p);
  }
  return out;
}

/** Reply [13] unikernel-info (to info [19]). */
export const namedInfoList: Codec<NamedInfo[]> = { ...namedInfoListGeneric, encode: (list) => outRaw(encodeNamedInfos(list)) };
/** Reply [11] unikernel-info-v5 (to info-v5 [18]). */
export const namedInfoV5List: Codec<NamedInfo[]> = namedList('NamedInfoV5', unikernelInfoV5);
/** Reply [9] unikernel-info-v4 (to info-v4 [15]). */
export const namedInfoV4List: Codec<NamedInfo[]> = namedList('NamedInfoV4', unikernelInfoV4);
