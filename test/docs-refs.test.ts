/**
 * Every citation of the documentation resolves: comments such as `WIRE.md §4.3` or
 * `CERTS.md §5 step 2`, lists such as `SEMANTICS.md §5.3/§5.5` or `§6.2-§6.6`, mentions
 * of `WIRE.md example 7`, and markdown links into docs/ (with their `#anchor`) must name
 * a document of docs/ and, where a section is given, a heading of that document that
 * carries that number. Inside docs/, a bare `§N` refers to the document itself.
 *
 * The checker is a pure function over texts, so that it can be shown to catch a broken
 * citation; the last test runs it over the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What a document offers to citations. */
export interface DocIndex {
  /** Section numbers of its headings: `2`, `2.4`, `5.8`. */
  sections: Set<string>;
  /** Numbers of its `Example N` headings. */
  examples: Set<string>;
  /** GitHub anchors of its headings. */
  anchors: Set<string>;
}

export interface SourceText {
  /** Repository-relative path, `/`-separated. */
  file: string;
  text: string;
}

/** The document names a citation may use; DESIGN (the former name of ARCHITECTURE) is listed so that a citation of it is caught. */
const DOC_NAMES = 'WIRE|CERTS|SEMANTICS|ARCHITECTURE|DESIGN';

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

export function indexDoc(markdown: string): DocIndex {
  const sections = new Set<string>();
  const examples = new Set<string>();
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h === null) continue;
    const text = h[1];
    const num = /^(\d+(?:\.\d+)*)\.?(?:\s|$)/.exec(text);
    if (num !== null) sections.add(num[1]);
    const ex = /^Example\s+(\d+)\b/i.exec(text);
    if (ex !== null) examples.add(ex[1]);
    const base = headingAnchor(text);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return { sections, examples, anchors };
}

const SECTION = String.raw`§\s?(\d+(?:\.\d+)*)`;
/** `WIRE.md §4`, `` `WIRE.md` §4 ``, `[WIRE.md](WIRE.md) §4`, `SEMANTICS §1.1`, then `, §5` / `/§5` / `-§5` / ` and §5` ... */
const CITATION = new RegExp(
  String.raw`\b(${DOC_NAMES})(\.md)?\b` + '`?' + String.raw`(?:\]\([^)\s]*\))?(\s*${SECTION}((?:\s*(?:,|/|-|–|and|or)\s*${SECTION})*))?`,
  'g',
);
const EXAMPLE = new RegExp(String.raw`\b(${DOC_NAMES})\.md\b` + '`?' + String.raw`\s+examples?\s+(\d+)`, 'gi');
const BARE_SECTION = new RegExp(String.raw`(^|[^\w.\`])` + SECTION, 'g');
const LINK = /\]\(([^)\s]+)\)/g;

/**
 * The broken references of `sources`, each as `file:line: what`; `docs` maps a document's
 * file name (`WIRE.md`) to its index. Empty when everything resolves.
 */
export function brokenReferences(sources: readonly SourceText[], docs: ReadonlyMap<string, DocIndex>, assets: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const { file, text } of sources) {
    const inDocs = file.startsWith('docs/');
    const self = inDocs ? docs.get(path.posix.basename(file)) : undefined;
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      const cited = new Set<number>(); // offsets of § already attributed to a named document
      for (const m of line.matchAll(CITATION)) {
        const [, doc, md, , first, rest] = m;
        if (md === undefined && first === undefined) continue; // a word, not a citation
        const name = `${doc}.md`;
        const index = docs.get(name);
        if (index === undefined) {
          out.push(`${where}: ${name} is not a document of docs/`);
          continue;
        }
        if (first === undefined) continue;
        const numbers = [first, ...[...(rest ?? '').matchAll(new RegExp(SECTION, 'g'))].map((x) => x[1])];
        for (const x of line.slice(m.index).matchAll(new RegExp(SECTION, 'g'))) {
          if (x.index >= m[0].length) break;
          cited.add(m.index + x.index);
        }
        for (const n of numbers) if (!index.sections.has(n)) out.push(`${where}: ${name} has no section ${n}`);
      }
      for (const m of line.matchAll(EXAMPLE)) {
        const index = docs.get(`${m[1]}.md`);
        if (index !== undefined && !index.examples.has(m[2])) out.push(`${where}: ${m[1]}.md has no example ${m[2]}`);
      }
      if (self !== undefined) {
        for (const m of line.matchAll(BARE_SECTION)) {
          const at = m.index + m[1].length;
          if (cited.has(at)) continue;
          if (!self.sections.has(m[2])) out.push(`${where}: ${path.posix.basename(file)} has no section ${m[2]} (a bare § refers to this document)`);
        }
      }
      if (file.endsWith('.md')) {
        for (const m of line.matchAll(LINK)) {
          const target = m[1];
          if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
          const [p, anchor] = target.split('#', 2) as [string, string | undefined];
          const resolved = p === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), p));
          if (!resolved.startsWith('docs/') || resolved === 'docs/') continue; // elsewhere, or the folder itself
          if (!resolved.endsWith('.md') && assets.has(resolved)) continue; // a picture or other file of docs/
          const index = docs.get(resolved.slice('docs/'.length));
          if (index === undefined) {
            out.push(`${where}: link to ${resolved}, which is not a document of docs/`);
            continue;
          }
          if (anchor !== undefined && !index.anchors.has(anchor)) out.push(`${where}: ${resolved} has no heading with anchor #${anchor}`);
        }
      }
    });
  }
  return out;
}

// ------------------------------------------------------------------ the checker itself

const W = 'WIRE.md';
const S = 'SEMANTICS.md';
const sampleDocs = new Map<string, DocIndex>([
  [W, indexDoc('# Wire\n## 1. Transport and framing\n### 1.2 Frame format\n## 4. ASN.1 module (wire version 5)\n### 4.3 Names\n### Example 7 - create\n```\n## 9. not a heading\n```\n')],
  [S, indexDoc('# Semantics\n## 5. Lifecycle\n### 5.3 Force-create\n### 5.5 Restart\n### 6.2 Tender\n### 6.6 MAC\n')],
]);

test('docs references: a citation of a missing section is reported with its file and line', () => {
  const broken = brokenReferences([{ file: 'src/core/x.ts', text: `/**\n * Framing (${W} §1.3): ...\n */` }], sampleDocs);
  assert.deepEqual(broken, [`src/core/x.ts:2: ${W} has no section 1.3`]);
});

test('docs references: every number of a list or range is checked', () => {
  const ok = `(${S} §5.3/§5.5, §6.2-§6.6) and ${'`' + W + '`'} §4.3 and [${W}](${W}) §1.2`;
  assert.deepEqual(brokenReferences([{ file: 'src/a.ts', text: ok }], sampleDocs), []);
  const broken = brokenReferences([{ file: 'src/a.ts', text: `(${S} §5.3, §5.4 and §6.7)` }], sampleDocs);
  assert.deepEqual(broken, [`src/a.ts:1: ${S} has no section 5.4`, `src/a.ts:1: ${S} has no section 6.7`]);
});

test('docs references: a document that is not in docs/, and a missing example', () => {
  const text = `see ${'CERTS'}.md §5 and ${'DESIGN'}.md; ${W} example 8; ${W} example 7; SEMANTICS ${'§'}5.5`;
  assert.deepEqual(brokenReferences([{ file: 'test/t.ts', text }], sampleDocs), [
    `test/t.ts:1: ${'CERTS'}.md is not a document of docs/`,
    `test/t.ts:1: ${'DESIGN'}.md is not a document of docs/`,
    `test/t.ts:1: ${W} has no example 8`,
  ]);
});

test('docs references: words that merely contain a document name are not citations', () => {
  const text = 'WIRE_VERSION, NODE_EXTRA_CA_CERTS, the WIRE format, SEMANTICS of a restart';
  assert.deepEqual(brokenReferences([{ file: 'src/b.ts', text }], sampleDocs), []);
});

test('docs references: markdown links into docs/ need the file and the heading anchor', () => {
  const text = [
    `[wire](docs/${W}#43-names) [ok](docs/${W}) [web](https://example.org/${W}#x) [all](docs/)`,
    `[gone](docs/NOPE.md) [bad](docs/${W}#44-names) [elsewhere](bench/RESULTS.md)`,
  ].join('\n');
  assert.deepEqual(brokenReferences([{ file: 'README.md', text }], sampleDocs), [
    'README.md:2: link to docs/NOPE.md, which is not a document of docs/',
    `README.md:2: docs/${W} has no heading with anchor #44-names`,
  ]);
});

test('docs references: inside docs/, a bare § refers to the document itself; headings in code blocks do not count', () => {
  const text = `as §4.3 says; see also ${S} §5.5 and §6.6; not §9 and not [x](#example-7---create) [y](#nope)`;
  assert.deepEqual(brokenReferences([{ file: `docs/${W}`, text }], sampleDocs), [
    `docs/${W}:1: ${W} has no section 9 (a bare § refers to this document)`,
    `docs/${W}:1: docs/${W} has no heading with anchor #nope`,
  ]);
});

// ------------------------------------------------------------------ the repository

const root = path.resolve(__dirname, '..', '..');
const SCANNED = ['src', 'test', 'bench', 'scripts', 'bin', 'lib'];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...filesUnder(rel));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

function readSources(): { sources: SourceText[]; docs: Map<string, DocIndex>; assets: Set<string> } {
  const docs = new Map<string, DocIndex>();
  const assets = new Set(filesUnder('docs').filter((f) => !f.endsWith('.md')));
  const sources: SourceText[] = [];
  for (const f of fs.readdirSync(path.join(root, 'docs'))) {
    if (!f.endsWith('.md')) continue;
    const text = fs.readFileSync(path.join(root, 'docs', f), 'utf8');
    docs.set(f, indexDoc(text));
    sources.push({ file: `docs/${f}`, text });
  }
  sources.push({ file: 'README.md', text: fs.readFileSync(path.join(root, 'README.md'), 'utf8') });
  for (const dir of SCANNED) {
    for (const file of filesUnder(dir)) {
      const bytes = fs.readFileSync(path.join(root, file));
      if (bytes.includes(0)) continue; // recorded wire messages and other binary files
      sources.push({ file, text: bytes.toString('utf8') });
    }
  }
  return { sources, docs, assets };
}

test('docs references: a link to a picture of docs/ needs that file', () => {
  const text = '![list](docs/web/list.png) ![gone](docs/web/gone.png)';
  assert.deepEqual(brokenReferences([{ file: 'README.md', text }], sampleDocs, new Set(['docs/web/list.png'])), [
    'README.md:1: link to docs/web/gone.png, which is not a document of docs/',
  ]);
});

test('docs references: every citation in src, test, bench, scripts, bin, lib, README and docs/ resolves', () => {
  const { sources, docs, assets } = readSources();
  for (const d of ['WIRE.md', 'CERTS.md', 'SEMANTICS.md', 'ARCHITECTURE.md']) assert.ok(docs.has(d), `docs/${d} exists`);
  assert.ok(sources.length > 100, `scanned ${sources.length} files`);
  assert.deepEqual(brokenReferences(sources, docs, assets), []);
});

test('docs/ARCHITECTURE.md §4 has a row for every named limit of src/core/limits.ts', async () => {
  const { limits } = await import('../src/core/limits.js');
  const text = fs.readFileSync(path.join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const section = text.slice(text.indexOf('## 4. Limits'), text.indexOf('\n## 5.'));
  const rows = new Set([...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]));
  const undocumented = Object.keys(limits).filter((k) => !rows.has(k));
  const stale = [...rows].filter((k) => !(k in limits));
  assert.deepEqual({ undocumented, stale }, { undocumented: [], stale: [] });
});

test('docs/ARCHITECTURE.md §3: every folder of src/ imports only the folders its row names', () => {
  const text = fs.readFileSync(path.join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const section = text.slice(text.indexOf('## 3. '), text.indexOf('\n## 4.'));
  const allowed = new Map<string, Set<string> | 'any'>();
  for (const m of section.matchAll(/^\| (`src\/[^|]*) \| [^|]* \| ([^|]*) \|$/gm)) {
    const imports = m[2].trim();
    const names = imports === 'everything' ? 'any' : new Set([...imports.matchAll(/`(\w+)`/g)].map((x) => x[1]));
    for (const folder of m[1].matchAll(/`src\/(\w+)\/`/g)) allowed.set(folder[1], names);
  }
  assert.ok(allowed.size >= 10, `rows read: ${[...allowed.keys()].join(', ')}`);
  const wrong: string[] = [];
  for (const folder of fs.readdirSync(path.join(root, 'src'))) {
    const rule = allowed.get(folder);
    if (rule === undefined) {
      wrong.push(`src/${folder}/ has no row`);
      continue;
    }
    for (const file of filesUnder(`src/${folder}`).filter((f) => f.endsWith('.ts'))) {
      const depth = file.split('/').length - 2; // src/core/wire/x.ts: two levels up to src/
      const up = '\\.\\./'.repeat(depth);
      const re = new RegExp(`from '${up}(\\w+)/`, 'g');
      for (const m of fs.readFileSync(path.join(root, file), 'utf8').matchAll(re)) {
        if (m[1] !== folder && rule !== 'any' && !rule.has(m[1])) wrong.push(`${file} imports src/${m[1]}/`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});
