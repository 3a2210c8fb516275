/**
 * CERTS.md §3: from a chain (leaf first, without the trust anchor) to name, policies and
 * command, and every refusal with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandOfChain, checkDelegations, leafCommandAllowed } from '../src/core/certs.js';
import { nameToString } from '../src/core/name.js';
import type { Command } from '../src/core/wire/wire.js';
import { type Identity, cmd, issue, makeRoot, policy } from './helpers/pki.js';

const ders = (...ids: Identity[]): Uint8Array[] => ids.map((i) => i.der);
const refused = (r: ReturnType<typeof commandOfChain>): string => {
  assert.equal(r.ok, false, 'expected the chain to be refused');
  return (r as { error: string }).error;
};

test('CERTS.md §3.2 examples: names and policies (deepest first)', async () => {
  const root = await makeRoot();
  const test1 = await issue(root, { cn: 'test', ca: true });
  const foo = await issue(test1, { cn: 'foo', command: cmd.consoleSubscribe() });
  let r = commandOfChain(ders(foo, test1));
  assert.ok(r.ok);
  assert.equal(nameToString(r.value.name), ':foo');
  assert.deepEqual(r.value.policies, []);

  const foobar = await issue(test1, { cn: 'Foo.Bar', command: cmd.info() });
  r = commandOfChain(ders(foobar, test1));
  assert.ok(r.ok);
  assert.equal(nameToString(r.value.name), ':foo.bar');

  const P1 = policy({ unikernels: 4n, memory: 1024, cpuids: [0, 1] });
  const P2 = policy({ unikernels: 2n, memory: 512, cpuids: [1] });
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(P1) });
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(P2) });
  const hello = await issue(team, { cn: 'hello', command: cmd.info() });
  r = commandOfChain(ders(hello, team, org), { now: Date.now() });
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(nameToString(r.value.name), 'org:team:hello');
  assert.deepEqual(r.value.policies.map((p) => p.path.join(':')), ['org:team', 'org']);
  assert.deepEqual(r.value.policies[0].policy, P2);
  assert.deepEqual(r.value.policies[1].policy, P1);
  assert.equal(r.value.version, 5);

  for (const cn of ['.', ':', null]) {
    const leaf = await issue(org, { cn, command: cmd.info() });
    r = commandOfChain(ders(leaf, org));
    assert.ok(r.ok);
    assert.equal(nameToString(r.value.name), 'org:', `leaf CN ${String(cn)}`);
  }
  // an intermediate without an extension is not part of the name
  const plain = await issue(org, { cn: 'plain', ca: true });
  const x = await issue(plain, { cn: 'x', command: cmd.info() });
  r = commandOfChain(ders(x, plain, org));
  assert.ok(r.ok);
  assert.equal(nameToString(r.value.name), 'org:x');
});

test('refusals carry upstream reasons', async () => {
  const root = await makeRoot();
  const P = policy();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(P) });

  assert.equal(refused(commandOfChain([])), 'empty chain');

  // no extension in the leaf
  const bare = await issue(org, { cn: 'x' });
  assert.equal(refused(commandOfChain(ders(bare, org))), 'leaf certificate does not contain an albatross extension');

  // commands not allowed in a leaf
  for (const c of [cmd.consoleAdd(), cmd.statsAdd()]) {
    const leaf = await issue(org, { cn: 'x', command: c });
    assert.match(refused(commandOfChain(ders(leaf, org))), /^unexpected command/);
  }
  for (const c of [cmd.info(), cmd.consoleSubscribe(), cmd.statsSubscribe(), cmd.policyInfo(), cmd.blockInfo(), cmd.blockDump()]) {
    assert.ok(leafCommandAllowed(c));
  }

  // empty names
  for (const cn of [null, '.', ':', '']) {
    for (const c of [cmd.policyRemove(), cmd.policyAdd(P)]) {
      const pa = await issue(org, { cn, command: c });
      assert.match(refused(commandOfChain(ders(pa, org))), /^policy (add|remove) may not have an empty name: a leaf certificate adds or removes policies below the path of its chain \(org:\)/);
    }
    if (cn === '') continue;
    const ba = await issue(org, { cn, command: cmd.blockAdd(10) });
    assert.match(refused(commandOfChain(ders(ba, org))), /^block .* may not have an empty name$/);
  }
  const noName = await issue(root, { cn: null, ca: true, command: cmd.policyAdd(P) });
  const l1 = await issue(noName, { cn: 'x', command: cmd.info() });
  assert.equal(refused(commandOfChain(ders(l1, noName))), 'policy add may not have an empty name');

  // an intermediate carrying something else than a policy
  const odd = await issue(root, { cn: 'odd', ca: true, command: cmd.info() });
  const l2 = await issue(odd, { cn: 'x', command: cmd.info() });
  assert.equal(refused(commandOfChain(ders(l2, odd))), 'unexpected wire unikernel info');

  // an extension that does not decode
  const junk = await issue(org, { cn: 'x', extValue: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x04]) });
  assert.match(refused(commandOfChain(ders(junk, org))), /version/);
});

test('policy commands and inactive-consoles in a leaf: the CN is a path below the chain\'s path (upstream\'s client writes the path there)', async () => {
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  const at = async (cn: string | null, c: Command, ...above: Identity[]): Promise<string> => {
    const r = commandOfChain(ders(await issue(above[0], { cn, command: c }), ...above));
    return r.ok ? `${nameToString(r.value.name)} ${r.value.command.kind}` : `refused: ${r.error}`;
  };
  // before, "acme" was the label of org:acme, which vmmd ignores for policies: info listed all of org:
  assert.equal(await at('acme', cmd.policyInfo(), org), 'org:acme: policy');
  assert.equal(await at('acme:team', cmd.policyInfo(), org), 'org:acme:team: policy');
  for (const cn of [null, '', '.', ':']) assert.equal(await at(cn, cmd.policyInfo(), org), 'org: policy');
  assert.equal(await at('', cmd.policyInfo(), root), ': policy', 'the root path, as upstream\'s client asks for it');
  assert.equal(await at('acme', cmd.policyAdd(policy({ unikernels: 1n })), org), 'org:acme: policy');
  assert.equal(await at('acme', cmd.policyRemove(), org), 'org:acme: policy');
  assert.equal(await at('acme', cmd.policyAdd(policy()), root), 'acme: policy');
  assert.equal(await at('team', { kind: 'console', value: { kind: 'list_inactive', value: null } }, org), 'org:team: console');
  assert.match(await at('a!b', cmd.policyInfo(), org), /^refused: invalid path: .*: leaf CN "a!b"$/);
});

test('a certificate holder cannot escape its path', async () => {
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  for (const cn of ['other:web', ':web', 'a:', '', 'x'.repeat(64), 'we b', '../x', 'a/b', '-x']) {
    const leaf = await issue(org, { cn, command: cmd.consoleSubscribe() });
    const e = refused(commandOfChain(ders(leaf, org)));
    assert.match(e, /^invalid label/, `leaf CN ${JSON.stringify(cn)}`);
  }
  const evil = await issue(root, { cn: 'org:team', ca: true, command: cmd.policyAdd(policy()) });
  const leaf = await issue(evil, { cn: 'x', command: cmd.info() });
  assert.match(refused(commandOfChain(ders(leaf, evil))), /^invalid label/);
});

test('a delegation larger than its parent is refused before anything is sent', async () => {
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy({ memory: 512 })) });
  const team = await issue(org, { cn: 'team', ca: true, command: cmd.policyAdd(policy({ memory: 1024 })) });
  const leaf = await issue(team, { cn: 'x', command: cmd.info() });
  assert.equal(
    refused(commandOfChain(ders(leaf, team, org))),
    'delegation to org:team: exceeds the one to org:: policy above allows 512 MB memory, which is fewer than 1024 MB',
  );
  assert.ok(checkDelegations([]).ok);
});

test('chains of 10 or more certificates are refused, 9 are accepted', async () => {
  const root = await makeRoot();
  const cas: Identity[] = [];
  let parent = root;
  for (let i = 0; i < 9; i++) {
    parent = await issue(parent, { cn: `l${i}`, ca: true, command: cmd.policyAdd(policy()) });
    cas.unshift(parent);
  }
  const leaf = await issue(cas[0], { cn: 'x', command: cmd.info() });
  assert.equal(refused(commandOfChain(ders(leaf, ...cas))), 'certificate chain too long');
  const leaf8 = await issue(cas[1], { cn: 'x', command: cmd.info() });
  const r = commandOfChain(ders(leaf8, ...cas.slice(1)));
  assert.ok(r.ok);
  assert.equal(nameToString(r.value.name), 'l0:l1:l2:l3:l4:l5:l6:l7:x');
});

test('expired, not yet valid and non-CA certificates are refused when interpreted', async () => {
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  const expired = await issue(org, { cn: 'x', command: cmd.info(), notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
  assert.match(refused(commandOfChain(ders(expired, org), { now: Date.now() })), /leaf certificate has expired/);
  const future = await issue(org, { cn: 'x', command: cmd.info(), notBefore: new Date(Date.now() + 3600_000) });
  assert.match(refused(commandOfChain(ders(future, org), { now: Date.now() })), /leaf certificate is not yet valid/);
  const notCa = await issue(root, { cn: 'org', ca: true, noBasicConstraints: true, command: cmd.policyAdd(policy()) });
  const leaf = await issue(notCa, { cn: 'x', command: cmd.info() });
  assert.match(refused(commandOfChain(ders(leaf, notCa))), /is not a CA/);
});

test('garbage certificates give an error value, never a throw', () => {
  for (const bytes of [new Uint8Array(0), new Uint8Array([0x30]), new Uint8Array([0x30, 0x00]), new Uint8Array(100).fill(0x30)]) {
    const r = commandOfChain([bytes]);
    assert.equal(r.ok, false);
  }
});

test('mutated certificates never throw: always an error value or a name below the chain path', async () => {
  const fc = await import('fast-check');
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  const leaf = await issue(org, { cn: 'web', command: cmd.consoleSubscribe() });
  const mutate = (der: Uint8Array, at: number, byte: number, cut: boolean): Uint8Array => {
    const b = der.slice();
    const i = at % b.length;
    b[i] = byte;
    return cut ? b.subarray(0, i) : b;
  };
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), fc.boolean(), (at, byte, cut, which) => {
      const chain = which ? [mutate(leaf.der, at, byte, cut), org.der] : [leaf.der, mutate(org.der, at, byte, cut)];
      const r = commandOfChain(chain);
      if (r.ok) assert.ok(r.value.name.path.length <= 1 && (r.value.name.path.length === 0 || r.value.name.path[0] === r.value.path[0]));
    }),
    { numRuns: process.env.FUZZ_RUNS ? Math.ceil(Number(process.env.FUZZ_RUNS) / 20) : 400 },
  );
});

test('beyond upstream: an extension twice (the first Albatross extension does not win), a CA as leaf; critical extensions OpenSSL does not process are named', async () => {
  const { Extension } = await import('@peculiar/x509');
  const { ALBATROSS_OID, encodeCertExtension } = await import('../src/core/wire/wire.js');
  const { unhandledCriticalExtension } = await import('../src/core/certs.js');
  const root = await makeRoot();
  const org = await issue(root, { cn: 'org', ca: true, command: cmd.policyAdd(policy()) });
  const twice = await issue(org, { cn: 'x', command: cmd.info(), extraExtensions: [new Extension(ALBATROSS_OID, false, encodeCertExtension(cmd.destroy()))] });
  assert.equal(refused(commandOfChain(ders(twice, org))), `leaf certificate (CN "x"): extension ${ALBATROSS_OID} (albatross) appears 2 times (RFC 5280 §4.2 allows one instance of each extension)`);
  const caLeaf = await issue(org, { cn: 'x', ca: true, command: cmd.info() });
  assert.equal(refused(commandOfChain(ders(caLeaf, org))), 'leaf certificate (CN "x") is a CA (basicConstraints cA TRUE): a command must come in an end-entity certificate');
  const crit = await issue(org, { cn: 'y', command: cmd.info(), extraExtensions: [new Extension('1.2.3.4.5', true, new Uint8Array([5, 0]))] });
  assert.equal(unhandledCriticalExtension(ders(crit, org)), 'leaf certificate (CN "y") has the unhandled critical extension 1.2.3.4.5');
  // basicConstraints and keyUsage are critical in every certificate here: OpenSSL processes them
  assert.equal(unhandledCriticalExtension(ders(twice, org, root)), undefined);
});
