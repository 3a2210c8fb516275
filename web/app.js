// The web console of vmmd_web: a page per hash route, all data from the REST API (/api/v1) with
// the session cookie and the CSRF token (X-CSRF-Token on every changing request; every form
// carries it in a hidden field). No library: DOM built with createElement, charts drawn as SVG.
'use strict';

let session = { user: '', path: '', admin: false, csrf: '' };
let instances = [];
/** Closed when the page changes (live streams). */
let cleanups = [];

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const main = () => document.getElementById('main');
const enc = encodeURIComponent;

function show(...nodes) {
  main().replaceChildren(...nodes);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
  }
}

async function api(method, path, body) {
  const headers = { 'x-csrf-token': session.csrf };
  let payload;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: 'same-origin' });
  if (r.status === 401) {
    location.href = '/login';
    throw new ApiError(401, { error: 'not logged in' });
  }
  const j = (r.headers.get('content-type') || '').includes('json') ? await r.json() : undefined;
  if (!r.ok) throw new ApiError(r.status, j);
  return j;
}

/** The hidden CSRF field every form carries. */
const csrfField = () => h('input', { type: 'hidden', name: 'csrf', value: session.csrf });

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));
}

/** Marks the input named by an API error's field. */
function markField(form, e) {
  for (const i of form.querySelectorAll('.invalid')) i.classList.remove('invalid');
  if (e && e.field) {
    const input = form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (input) {
      input.classList.add('invalid');
      const more = input.closest('details');
      if (more) more.open = true;
    }
  }
}

function stream(url, handlers) {
  const es = new EventSource(url);
  for (const [ev, f] of Object.entries(handlers)) es.addEventListener(ev, (m) => f(JSON.parse(m.data)));
  cleanups.push(() => es.close());
  return es;
}

const fmtTime = (t) => (t ? t.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '');
const lines = (s) => s.split('\n').map((x) => x.trim()).filter((x) => x !== '');

/**
 * Runs f for every instance at once and returns a section per instance at once: a placeholder
 * (class loading) that f's section, or the error, replaces when it comes. So a host that is down
 * (up to its connect timeout) is shown as down without holding up the others' rows.
 */
function forEachInstance(f) {
  return instances.map((inst) => {
    const slot = h('section', { 'data-instance': inst.name, class: 'loading' }, h('h2', {}, `${inst.name} `, h('span', { class: 'muted' }, 'loading…')));
    const done = (node) => {
      node.setAttribute('data-instance', inst.name);
      slot.replaceWith(node);
    };
    (async () => f(inst))().then(done, (e) =>
      done(h('section', {}, h('h2', {}, `${inst.name} `, h('span', { class: 'down' }, e.status === 502 ? 'down' : 'unavailable')), errorBox(e))));
    return slot;
  });
}

/**
 * A unikernel's state from vmmd's status (local instances): running since (and how often it
 * failed before), or waiting to restart after N failures with the next start. Unknown (an
 * endpoint that does not relay the status query): running since, and why the state is unknown.
 */
function stateText(st, started, why) {
  if (!st) return `${started ? `running since ${fmtTime(started)}` : 'running'}${why ? ` (state unknown: ${why})` : ''}`;
  if (st.kind === 'restarting') {
    const secs = Math.max(0, Math.round((Date.parse(st.nextStart) - Date.now()) / 1000));
    return `crash loop: restarting after ${st.failures} failure${st.failures === 1 ? '' : 's'}, next start ${fmtTime(st.nextStart)} (in ${secs} s)`;
  }
  const since = st.since || started;
  return `running${st.pid ? ` (pid ${st.pid})` : ''}${since ? ` since ${fmtTime(since)}` : ''}${st.failures ? `, ${st.failures} failure${st.failures === 1 ? '' : 's'} before` : ''}`;
}

function stateCell(st, started, why) {
  return h('span', { class: `state ${st && (st.kind === 'restarting' || st.failures) ? 'down' : ''}` }, stateText(st, started, why));
}

// ------------------------------------------------------------------ pages

async function pageList() {
  const sections = forEachInstance(async (inst) => {
    const us = await api('GET', `/instances/${enc(inst.name)}/unikernels`);
    const rows = us.map((u) => u.state && u.state.kind === 'restarting'
      // waiting out a restart back-off: only its name and state are known
      ? h('tr', { 'data-name': u.name, class: 'restarting' },
        h('td', {}, h('a', { href: `#/u/${enc(inst.name)}/${enc(u.name)}` }, u.name)), h('td', { colspan: 6 }, stateCell(u.state)), h('td', {}))
      : h('tr', { 'data-name': u.name },
        h('td', {}, h('a', { href: `#/u/${enc(inst.name)}/${enc(u.name)}` }, u.name)),
        h('td', {}, u.type), h('td', {}, u.cpuids.join(',')), h('td', {}, `${u.memory} MB`),
        h('td', {}, u.blocks.map((b) => b.name).join(', ') || '–'), h('td', {}, u.bridges.map((b) => `${b.name}→${b.bridge}`).join(', ') || '–'),
        h('td', {}, stateCell(u.state, u.started, u.stateError)), h('td', {}, h('code', {}, (u.arguments || []).join(' ')))));
    return h('section', {},
      h('h2', {}, `${inst.name} `, h('span', { class: 'muted' }, inst.where)),
      us.length === 0 ? h('p', { class: 'muted' }, 'No unikernels.') :
        h('table', { id: `unikernels-${inst.name}` }, h('tr', {}, ['Name', 'Type', 'CPUs', 'Memory', 'Block devices', 'Networks', 'State', 'Arguments'].map((x) => h('th', {}, x))), rows));
  });
  show(h('h1', {}, 'Unikernels'), h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/deploy' }, 'Deploy a unikernel')), ...sections);
}

/** A time-series chart: one or two lines, the latest values in the legend. */
function chart(title, unit, labels) {
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', '0 0 300 110');
  svg.setAttribute('preserveAspectRatio', 'none');
  const paths = labels.map((_, i) => {
    const p = document.createElementNS(svgNs, 'polyline');
    p.setAttribute('fill', 'none');
    p.setAttribute('stroke', i === 0 ? '#1f6feb' : '#d4731a');
    p.setAttribute('stroke-width', '1.5');
    p.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(p);
    return p;
  });
  const legend = h('div', { class: 'legend' });
  const box = h('div', { class: 'chart', 'data-chart': title }, h('h3', {}, title), svg, legend);
  const series = labels.map(() => []);
  const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
  return {
    box,
    points: () => series[0].length,
    add(values) {
      values.forEach((v, i) => {
        series[i].push(v);
        if (series[i].length > 120) series[i].shift();
      });
      const max = Math.max(1e-9, ...series.flat());
      series.forEach((s, i) => {
        const n = s.length;
        paths[i].setAttribute('points', s.map((v, k) => `${(n <= 1 ? 300 : (k * 300) / (n - 1)).toFixed(1)},${(105 - (v / max) * 100).toFixed(1)}`).join(' '));
      });
      legend.replaceChildren(...labels.map((l, i) => h('span', { class: i === 0 ? 'a' : 'b' }, `${l}: ${fmt(values[i])} ${unit}  `)), h('span', {}, `(max ${fmt(max)})`));
    },
  };
}

async function pageUnikernel(instName, name) {
  const base = `/instances/${enc(instName)}/unikernels/${enc(name)}`;
  let u;
  try {
    u = await api('GET', base);
  } catch (e) {
    show(h('h1', {}, name), errorBox(e));
    return;
  }
  const status = h('p', { id: 'action-status', role: 'status' });
  const act = (label, cls, f) => h('button', { class: cls, id: `${label.toLowerCase()}-button`, onclick: async () => {
    status.replaceChildren();
    try {
      const r = await f();
      if (r === null) return;
      status.replaceChildren(h('span', { class: 'ok' }, `${label}: ${r.result}`));
    } catch (e) {
      status.replaceChildren(errorBox(e));
    }
  } }, label);
  const restart = act('Restart', '', () => api('POST', `${base}/restart`));
  const destroy = act('Destroy', 'danger', async () => {
    if (!confirm(`Destroy ${name} on ${instName}?`)) return null;
    const r = await api('DELETE', base);
    location.hash = '#/';
    return r;
  });
  const state = ['State', stateCell(u.state, u.started, u.stateError)];
  const details = h('table', { class: 'details' }, u.type === undefined
    // waiting to restart: vmmd's info does not list it, so only its state is known
    ? [['Instance', instName], state].map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { id: k === 'State' ? 'state' : undefined }, v)))
    : [['Instance', instName], state, ['Type', u.type], ['CPU ids', u.cpuids.join(', ')], ['Memory', `${u.memory} MB`],
      ['Block devices', u.blocks.map((b) => `${b.name} → ${b.hostDevice} (${b.sizeMb} MB, sector ${b.sectorSize})`).join('; ') || '–'],
      ['Networks', u.bridges.map((b) => `${b.name} → ${b.bridge} ${b.mac}`).join('; ') || '–'],
      ['On exit', u.failBehaviour.kind === 'quit' ? 'quit' : `restart${u.failBehaviour.exitCodes.length ? ` on ${u.failBehaviour.exitCodes.join(', ')}` : ''}`],
      ['Image SHA-256', h('code', {}, u.digest)], ['Arguments', h('code', {}, (u.arguments || []).join(' ') || '–')],
      ['Running since', fmtTime(u.started)], ['Start priority', u.startup]]
      .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { id: k === 'State' ? 'state' : undefined }, v))));
  const con = h('pre', { class: 'console', id: 'console', 'aria-live': 'polite' });
  const conState = h('span', { class: 'muted', id: 'console-state' }, 'connecting…');
  const cpu = chart('CPU', '%', ['user+system']);
  const mem = chart('Memory', 'MB', ['resident']);
  const bytes = chart('Network bytes', 'B/s', ['in', 'out']);
  const pkts = chart('Network packets', '/s', ['in', 'out']);
  const statsState = h('span', { class: 'muted', id: 'stats-state' }, 'waiting for samples…');
  show(
    h('h1', {}, name), details, h('div', { class: 'actions' }, restart, destroy, u.type === undefined ? null : h('a', { class: 'button', href: `/api/v1${base}/image` }, 'Download image')), status,
    h('h2', {}, 'Console ', conState), con,
    h('h2', {}, 'Statistics ', statsState), h('div', { class: 'charts', id: 'charts' }, cpu.box, mem.box, bytes.box, pkts.box),
  );
  stream(`/api/v1${base}/console/events?count=200`, {
    subscribed: () => conState.replaceChildren('live'),
    line: (l) => {
      const atEnd = con.scrollTop + con.clientHeight >= con.scrollHeight - 4;
      con.append(h('span', { class: 'time' }, `${fmtTime(l.time)} `), `${l.line}\n`);
      while (con.childNodes.length > 4000) con.removeChild(con.firstChild);
      if (atEnd) con.scrollTop = con.scrollHeight;
    },
    end: (e) => conState.replaceChildren(`ended: ${e.reason}`),
    error: (e) => conState.replaceChildren(h('span', { class: 'error' }, e.error)),
  });
  let prev;
  stream(`/api/v1${base}/stats/events`, {
    stats: (s) => {
      const t = Date.parse(s.time) / 1000;
      const cpuS = s.utime + s.stime;
      const inB = s.net.reduce((a, n) => a + n.inBytes, 0);
      const outB = s.net.reduce((a, n) => a + n.outBytes, 0);
      const inP = s.net.reduce((a, n) => a + n.inPackets, 0);
      const outP = s.net.reduce((a, n) => a + n.outPackets, 0);
      if (prev !== undefined && t > prev.t) {
        const dt = t - prev.t;
        cpu.add([Math.max(0, ((cpuS - prev.cpuS) / dt) * 100)]);
        bytes.add([Math.max(0, (inB - prev.inB) / dt), Math.max(0, (outB - prev.outB) / dt)]);
        pkts.add([Math.max(0, (inP - prev.inP) / dt), Math.max(0, (outP - prev.outP) / dt)]);
      }
      mem.add([s.rssPages === null ? s.maxrssKb / 1024 : (s.rssPages * 4096) / 1048576]);
      prev = { t, cpuS, inB, outB, inP, outP };
      statsState.replaceChildren(`${mem.points()} samples, last ${fmtTime(s.time)}`);
    },
    end: (e) => statsState.replaceChildren(`ended: ${e.reason}`),
    error: (e) => statsState.replaceChildren(h('span', { class: 'error' }, e.error)),
  });
}

function pageDeploy() {
  const f = (label, input, hint) => [h('label', { for: input.id }, label), h('div', {}, input, hint ? h('div', { class: 'hint' }, hint) : null)];
  const progress = h('progress', { id: 'upload-progress', max: 100, value: 0, hidden: true });
  const status = h('div', { id: 'deploy-status', role: 'status' });
  const form = h('form', { class: 'grid', id: 'deploy' },
    csrfField(),
    ...f('Instance', h('select', { name: 'instance', id: 'f-instance' }, instances.map((i) => h('option', { value: i.name }, i.name)))),
    ...f('Name', h('input', { name: 'name', id: 'f-name', required: true, placeholder: session.path ? `${session.path}:web` : 'web' }),
      `name as path:label; yours are at or below ${session.path || 'the root'}`),
    ...f('Image', h('input', { name: 'image', id: 'f-image', type: 'file', required: true }), 'a Solo5 unikernel (hvt or spt)'),
    ...f('Memory (MB)', h('input', { name: 'mem', id: 'f-mem', type: 'number', min: 1, value: 32 })),
    ...f('CPU ids', h('input', { name: 'cpu', id: 'f-cpu', value: '0' }), 'comma-separated'),
    ...f('Arguments', h('textarea', { name: 'arg', id: 'f-arg', rows: 3 }), 'one boot argument per line'),
    ...f('Block devices', h('textarea', { name: 'block', id: 'f-block', rows: 2 }), 'one per line: name[:hostdev][@sector]'),
    ...f('Networks', h('textarea', { name: 'net', id: 'f-net', rows: 2 }), 'one per line: [name:]bridge[@mac]'),
    ...f('Restart on failure', h('input', { name: 'restart-on-fail', id: 'f-restart', type: 'checkbox' })),
    ...f('Restart exit codes', h('input', { name: 'exit-code', id: 'f-exit' }), 'comma-separated; empty: any'),
    ...f('Start priority', h('input', { name: 'startup', id: 'f-startup', type: 'number' }), 'lower starts first (default 50)'),
    ...f('Replace an existing one', h('input', { name: 'force', id: 'f-force', type: 'checkbox' })),
    h('details', { class: 'full', id: 'f-more' }, h('summary', {}, 'More options'),
      h('div', { class: 'grid' },
        ...f('Pass its name', h('input', { name: 'add-name', id: 'f-add-name', type: 'checkbox', checked: true }), 'boot argument --name=<label>'),
        ...f('Type', h('select', { name: 'typ', id: 'f-typ' }, h('option', { value: 'solo5' }, 'solo5'), h('option', { value: 'bhyve' }, 'bhyve')), 'solo5 (hvt or spt), or a bhyve virtual machine'),
        ...f('vCPUs', h('input', { name: 'cpus', id: 'f-cpus', type: 'number', min: 1 }), 'bhyve only (default 1)'),
        ...f('Linux boot partition', h('input', { name: 'linux-boot', id: 'f-linux-boot' }), 'bhyve only'),
        ...f('Compression level', h('input', { name: 'compression-level', id: 'f-compression', type: 'number', min: 0 }), 'zlib 0-9 for the image on its way (default 0 locally, 9 remote)'))),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit', id: 'deploy-button' }, 'Deploy'), ' ', progress),
    h('div', { class: 'full' }, status),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    markField(form, undefined);
    const v = (n) => form.elements[n].value.trim();
    const fd = new FormData();
    fd.append('mem', v('mem'));
    for (const c of v('cpu').split(',').map((x) => x.trim()).filter((x) => x)) fd.append('cpu', c);
    for (const a of lines(form.elements.arg.value)) fd.append('arg', a);
    for (const b of lines(form.elements.block.value)) fd.append('block', b);
    for (const n of lines(form.elements.net.value)) fd.append('net', n);
    if (form.elements['restart-on-fail'].checked) fd.append('restart-on-fail', 'true');
    for (const c of v('exit-code').split(',').map((x) => x.trim()).filter((x) => x)) fd.append('exit-code', c);
    if (v('startup')) fd.append('startup', v('startup'));
    if (form.elements.force.checked) fd.append('force', 'true');
    if (!form.elements['add-name'].checked) fd.append('add-name', 'false');
    if (v('typ') !== 'solo5') fd.append('typ', v('typ'));
    for (const n of ['cpus', 'linux-boot', 'compression-level']) if (v(n)) fd.append(n, v(n));
    const file = form.elements.image.files[0];
    if (file) fd.append('image', file, file.name);
    const inst = v('instance');
    const name = v('name');
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/instances/${enc(inst)}/unikernels/${enc(name)}`);
    xhr.setRequestHeader('x-csrf-token', form.elements.csrf.value);
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = () => {
      let j;
      try {
        j = JSON.parse(xhr.responseText);
      } catch {
        j = { error: `HTTP ${xhr.status}` };
      }
      if (xhr.status === 201) {
        progress.value = 100;
        location.hash = `#/u/${enc(inst)}/${enc(j.name)}`;
      } else {
        const e = new ApiError(xhr.status, j);
        markField(form, e);
        status.replaceChildren(errorBox(e));
      }
    };
    xhr.onerror = () => status.replaceChildren(errorBox('the upload failed (connection closed)'));
    xhr.send(fd);
  });
  show(h('h1', {}, 'Deploy a unikernel'), form);
}

async function pageBlocks() {
  const status = h('div', { role: 'status', id: 'blocks-status' });
  const sections = forEachInstance(async (inst) => {
    const bs = await api('GET', `/instances/${enc(inst.name)}/blocks`);
    return h('section', {}, h('h2', {}, inst.name),
      bs.length === 0 ? h('p', { class: 'muted' }, 'No block devices.') :
        h('table', {}, h('tr', {}, ['Name', 'Size', 'In use', ''].map((x) => h('th', {}, x))),
          bs.map((b) => h('tr', {}, h('td', {}, b.name), h('td', {}, `${b.sizeMb} MB`), h('td', {}, b.active ? 'yes' : 'no'),
            h('td', {}, h('a', { class: 'button', href: `/api/v1/instances/${enc(inst.name)}/blocks/${enc(b.name)}/data` }, 'Download'), ' ',
              h('button', { class: 'danger', onclick: async () => {
                if (!confirm(`Destroy block device ${b.name}?`)) return;
                try {
                  await api('DELETE', `/instances/${enc(inst.name)}/blocks/${enc(b.name)}`);
                  route();
                } catch (e) {
                  status.replaceChildren(errorBox(e));
                }
              } }, 'Destroy'))))));
  });
  const form = h('form', { class: 'grid', id: 'block-create' }, csrfField(),
    h('label', {}, 'Instance'), h('select', { name: 'instance' }, instances.map((i) => h('option', { value: i.name }, i.name))),
    h('label', {}, 'Name'), h('input', { name: 'name', required: true, placeholder: session.path ? `${session.path}:data` : 'data' }),
    h('label', {}, 'Size (MB)'), h('input', { name: 'size', type: 'number', min: 1, required: true }),
    h('label', {}, 'Initial content'), h('input', { name: 'data', type: 'file' }),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit' }, 'Create')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    markField(form, undefined);
    const inst = form.elements.instance.value;
    const name = form.elements.name.value.trim();
    const file = form.elements.data.files[0];
    const url = `/api/v1/instances/${enc(inst)}/blocks/${enc(name)}?size=${enc(form.elements.size.value)}`;
    const headers = { 'x-csrf-token': form.elements.csrf.value };
    const r = file ? await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: file })
      : await fetch(url, { method: 'POST', headers });
    const j = await r.json();
    if (r.ok) route();
    else {
      const e = new ApiError(r.status, j);
      markField(form, e);
      status.replaceChildren(errorBox(e));
    }
  });
  show(h('h1', {}, 'Block devices'), status, ...sections, h('h2', {}, 'Create a block device'), form);
}

function usageBar(label, used, max, unit) {
  const pct = max > 0 ? Math.min(100, (used / max) * 100) : used > 0 ? 100 : 0;
  const fill = h('span', {});
  fill.style.width = `${pct}%`;
  return h('tr', {}, h('th', {}, label), h('td', {}, h('span', { class: `bar${pct >= 100 ? ' full' : ''}`, role: 'meter', 'aria-valuenow': used, 'aria-valuemax': max }, fill)),
    h('td', {}, `${used} of ${max}${unit}`));
}

async function pagePolicies() {
  const sections = forEachInstance(async (inst) => {
    const ps = await api('GET', `/instances/${enc(inst.name)}/policies`);
    return h('section', {}, h('h2', {}, inst.name),
      ps.length === 0 ? h('p', { class: 'muted' }, 'No policies at or below your path.') :
        ps.map((p) => h('div', { class: 'policy', 'data-path': p.path }, h('h3', {}, p.path || '(root)'),
          h('table', {},
            usageBar('Unikernels', p.used.unikernels, p.policy.unikernels, ''),
            usageBar('Memory', p.used.memory, p.policy.memory, ' MB'),
            p.policy.block === null ? h('tr', {}, h('th', {}, 'Block storage'), h('td', {}, 'none allowed'), h('td', {})) : usageBar('Block storage', p.used.block, p.policy.block, ' MB'),
            h('tr', {}, h('th', {}, 'CPU ids'), h('td', {}, `allowed ${p.policy.cpuids.join(', ')}`), h('td', {}, `used ${p.used.cpuids.join(', ') || '–'}`)),
            h('tr', {}, h('th', {}, 'Bridges'), h('td', {}, `allowed ${p.policy.bridges.join(', ') || '–'}`), h('td', {}, `used ${p.used.bridges.join(', ') || '–'}`))))));
  });
  show(h('h1', {}, 'Policies'), ...sections);
}

async function pageLog() {
  // remote instances: through their TLS endpoint; one that does not relay the event log is said so in the error
  const inst = h('select', { name: 'instance', id: 'log-instance' }, instances.map((i) => h('option', { value: i.name }, i.name)));
  const note = null;
  const name = h('input', { name: 'name', placeholder: 'all names at or below your path' });
  const body = h('tbody', { id: 'log-rows' });
  const state = h('span', { class: 'muted' });
  const form = h('form', { class: 'grid', id: 'log-filter' }, csrfField(), h('label', {}, 'Instance'), inst, h('label', {}, 'Unikernel'), name,
    h('div', { class: 'full' }, h('button', { type: 'submit' }, 'Show')));
  const start = () => {
    for (const c of cleanups) c();
    cleanups = [];
    body.replaceChildren();
    const q = `count=200${name.value.trim() ? `&name=${enc(name.value.trim())}` : ''}`;
    stream(`/api/v1/instances/${enc(inst.value)}/log/events?${q}`, {
      subscribed: () => state.replaceChildren('live'),
      event: (e) => body.prepend(h('tr', {}, h('td', {}, fmtTime(e.time)), h('td', {}, e.name || '–'), h('td', {}, e.event), h('td', {}, h('code', {}, e.text)))),
      end: (e) => state.replaceChildren(`ended: ${e.reason}`),
      error: (e) => state.replaceChildren(h('span', { class: 'error' }, e.error)),
    });
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    start();
  });
  show(h('h1', {}, 'Event log ', state), note, form, h('table', {}, h('thead', {}, h('tr', {}, ['Time', 'Name', 'Event', 'Details'].map((x) => h('th', {}, x)))), body));
  start();
}

async function pageTokens() {
  const ts = await api('GET', '/tokens');
  const out = h('div', { role: 'status' });
  const form = h('form', { class: 'grid', id: 'token-create' }, csrfField(), h('label', {}, 'Label'), h('input', { name: 'label', required: true }),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit' }, 'Create a token')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const t = await api('POST', '/tokens', { label: form.elements.label.value });
      out.replaceChildren(h('p', {}, 'Your new token (shown only now): ', h('code', { id: 'new-token' }, t.token)));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  });
  show(h('h1', {}, 'API tokens'), h('p', { class: 'muted' }, 'Use as "Authorization: Bearer TOKEN" with the REST API under /api/v1.'),
    h('table', {}, h('tr', {}, ['Id', 'Label', 'Created', ''].map((x) => h('th', {}, x))),
      ts.map((t) => h('tr', {}, h('td', {}, h('code', {}, t.id)), h('td', {}, t.label), h('td', {}, fmtTime(t.created)),
        h('td', {}, h('button', { class: 'danger', onclick: async () => {
          await api('DELETE', `/tokens/${enc(t.id)}`);
          route();
        } }, 'Revoke'))))),
    h('h2', {}, 'New token'), form, out);
}

/**
 * Instances, listed at once, each with its status asked on its own and filled in when it comes
 * (`loading…` until then): a host that is down holds up only its own row, for its connect timeout.
 * The list it shows becomes the app's `instances` (after an add or a removal too). The
 * administrator adds and removes remote ones. `known`: statuses already measured, by instance
 * name (one just added, with its connection test), shown without asking again.
 */
async function pageInstances(known = {}) {
  const list = instances = await api('GET', '/instances');
  const statusOf = (i) => i.up === false
    ? h('span', { class: 'down' }, `down: ${i.error}`)
    : i.error ? h('span', { class: 'error' }, i.error) : h('span', { class: 'ok' }, `up, ${i.unikernels} unikernel${i.unikernels === 1 ? '' : 's'}`);
  const statusCell = (i) => {
    if (Object.hasOwn(known, i.name)) return h('td', { class: 'status' }, statusOf(known[i.name]));
    const cell = h('td', { class: 'status loading' }, h('span', { class: 'muted' }, 'loading…'));
    api('GET', `/instances/${enc(i.name)}?status=1`).then((s) => statusOf(s), (e) => h('span', { class: 'error' }, e.message))
      .then((node) => {
        cell.className = 'status';
        cell.replaceChildren(node);
      });
    return cell;
  };
  const table = h('table', { id: 'instances' }, h('tr', {}, ['Name', 'Kind', 'Where', 'Your path', 'Status', ''].map((x) => h('th', {}, x))),
    list.map((i) => h('tr', { 'data-instance': i.name }, h('td', {}, i.name), h('td', {}, i.kind), h('td', {}, i.where), h('td', {}, i.path || '(root)'),
      statusCell(i),
      h('td', {}, session.admin && i.kind === 'remote' ? h('button', { class: 'danger', onclick: async () => {
        if (!confirm(`Remove instance ${i.name}? (Its unikernels keep running there.)`)) return;
        await api('DELETE', `/instances/${enc(i.name)}`);
        route();
      } }, 'Remove') : ''))));
  if (!session.admin) return show(h('h1', {}, 'Instances'), table);
  const out = h('div', { role: 'status', id: 'instance-status' });
  const input = (name, placeholder, hint) => [h('label', { for: `i-${name}` }, hint[0]),
    h('div', {}, h('input', { id: `i-${name}`, name, placeholder }), hint[1] ? h('div', { class: 'hint' }, hint[1]) : null)];
  const form = h('form', { class: 'grid', id: 'instance-add' }, csrfField(),
    input('name', 'b', ['Name', 'used in URLs: a-z 0-9 . _ -']),
    input('destination', 'host.example:1025', ['Destination', 'the TLS endpoint (vmmd_tls), HOST[:PORT]']),
    input('ca', '/etc/albatross/b/team.pem', ['CA certificate', 'file on this host: the delegation CA (vmmp_ca) with its chain']),
    input('caKey', '/etc/albatross/b/team.key', ['CA key', 'file on this host; it stays here']),
    input('serverCa', '/etc/albatross/b/cacert.pem', ['Server CA', 'file on this host: the CA of the endpoint\'s certificate']),
    input('path', 'team', ['Path', 'the path the CA stands for on that host']),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit', id: 'instance-add-button' }, 'Add and test the connection')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    markField(form, undefined);
    out.replaceChildren(h('p', { class: 'muted' }, 'adding and connecting…'));
    const body = {};
    for (const k of ['name', 'destination', 'ca', 'caKey', 'serverCa', 'path']) body[k] = form.elements[k].value.trim();
    try {
      const r = await api('POST', '/instances', body);
      const t = r.test;
      await pageInstances({ [r.name]: t });
      document.getElementById('instance-status').replaceChildren(h('p', { id: 'instance-test' }, `Added ${r.name} (${r.where}). Connection test: `,
        t.up && !t.error ? h('span', { class: 'ok' }, `connected, ${t.unikernels} unikernel${t.unikernels === 1 ? '' : 's'} there`) : h('span', { class: 'error' }, `failed: ${t.error}`)));
    } catch (e) {
      markField(form, e);
      out.replaceChildren(errorBox(e));
    }
  });
  show(h('h1', {}, 'Instances'), table, h('h2', {}, 'Add a remote instance'), form, out);
}

/** One's own account: path(s) and a new password (the current one is asked). */
function pageAccount() {
  const out = h('div', { role: 'status', id: 'account-status' });
  const pw = (name, label, ac) => [h('label', { for: `a-${name}` }, label), h('input', { id: `a-${name}`, name, type: 'password', autocomplete: ac, required: true })];
  const form = h('form', { class: 'grid', id: 'password-change' }, csrfField(),
    ...pw('current', 'Current password', 'current-password'), ...pw('password', 'New password', 'new-password'), ...pw('repeat', 'New password again', 'new-password'),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit' }, 'Change password')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    markField(form, undefined);
    if (form.elements.password.value !== form.elements.repeat.value) {
      markField(form, { field: 'repeat' });
      out.replaceChildren(errorBox('the two new passwords differ'));
      return;
    }
    try {
      await api('PUT', `/users/${enc(session.user)}/password`, { current: form.elements.current.value, password: form.elements.password.value });
      form.reset();
      out.replaceChildren(h('p', { class: 'ok' }, 'Password changed.'));
    } catch (e) {
      markField(form, e);
      out.replaceChildren(errorBox(e));
    }
  });
  const paths = Object.entries(session.paths || {});
  show(h('h1', {}, 'Account'),
    h('table', { class: 'details' }, h('tr', {}, h('th', {}, 'User'), h('td', {}, session.user)),
      h('tr', {}, h('th', {}, 'Path'), h('td', {}, session.path || '(root)', paths.length ? ` (${paths.map(([i, p]) => `${p || '(root)'} on ${i}`).join(', ')})` : '')),
      h('tr', {}, h('th', {}, 'Administrator'), h('td', {}, session.admin ? 'yes' : 'no'))),
    h('h2', {}, 'Change your password'), form, out);
}

/** `instance=path` lines to {instance: path}. */
function pathsOf(text) {
  const o = {};
  for (const l of lines(text)) {
    const i = l.indexOf('=');
    if (i < 0) throw Object.assign(new Error(`paths: expected INSTANCE=PATH, got ${JSON.stringify(l)}`), { field: 'paths' });
    o[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return o;
}

async function pageUsers() {
  const us = await api('GET', '/users');
  const out = h('div', { role: 'status', id: 'user-status' });
  const form = h('form', { class: 'grid', id: 'user-create' }, csrfField(),
    h('label', {}, 'User name'), h('input', { name: 'name', required: true }),
    h('label', {}, 'Path'), h('div', {}, h('input', { name: 'path', placeholder: 'acme' }), h('div', { class: 'hint' }, 'the user sees and acts at or below this path (empty: everything)')),
    h('label', {}, 'Paths per instance'), h('div', {}, h('textarea', { name: 'paths', rows: 2, placeholder: 'b=globex:acme' }), h('div', { class: 'hint' }, 'INSTANCE=PATH, one a line, where the user\'s path differs on that instance')),
    h('label', {}, 'Administrator'), h('input', { name: 'admin', type: 'checkbox' }),
    h('div', { class: 'full' }, h('button', { class: 'primary', type: 'submit' }, 'Create user')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    markField(form, undefined);
    try {
      const u = await api('POST', '/users', { name: form.elements.name.value.trim(), path: form.elements.path.value.trim(), paths: pathsOf(form.elements.paths.value), admin: form.elements.admin.checked });
      await pageUsers();
      document.getElementById('user-status').replaceChildren(h('p', {}, `Created ${u.name}; password (shown only now): `, h('code', { id: 'new-password' }, u.password)));
    } catch (e) {
      markField(form, e);
      out.replaceChildren(errorBox(e));
    }
  });
  show(h('h1', {}, 'Users'),
    h('table', {}, h('tr', {}, ['Name', 'Path', 'Administrator', 'Created', ''].map((x) => h('th', {}, x))),
      us.map((u) => h('tr', { 'data-user': u.name }, h('td', {}, u.name),
        h('td', {}, u.path || '(root)', ...Object.entries(u.paths || {}).map(([i, p]) => h('div', { class: 'muted' }, `${p || '(root)'} on ${i}`))),
        h('td', {}, u.admin ? 'yes' : 'no'), h('td', {}, fmtTime(u.created)),
        h('td', {}, u.name === session.user ? '' : h('div', { class: 'actions' },
          h('button', { class: 'reset', onclick: async () => {
            if (!confirm(`Reset the password of ${u.name}? A new one is generated and shown once.`)) return;
            try {
              const r = await api('PUT', `/users/${enc(u.name)}/password`, {});
              out.replaceChildren(h('p', {}, `New password of ${u.name} (shown only now): `, h('code', { id: 'reset-password' }, r.password)));
            } catch (e) {
              out.replaceChildren(errorBox(e));
            }
          } }, 'Reset password'),
          h('button', { class: 'danger', onclick: async () => {
            if (!confirm(`Delete user ${u.name}?`)) return;
            await api('DELETE', `/users/${enc(u.name)}`);
            route();
          } }, 'Delete')))))),
    h('h2', {}, 'Paths per instance'), userPaths(us),
    h('h2', {}, 'New user'), form, out);
}

/**
 * Each user's path on each instance (its own there, or the default), and a form to set or clear
 * one: the whole `paths` object goes to PUT /users/NAME, checked there as on creation.
 */
function userPaths(us) {
  const names = [...new Set([...instances.map((i) => i.name), ...us.flatMap((u) => Object.keys(u.paths || {}))])];
  const table = h('table', { id: 'user-paths' }, h('tr', {}, h('th', {}, 'User'), names.map((n) => h('th', {}, n))),
    us.map((u) => h('tr', { 'data-user': u.name }, h('td', {}, u.name), names.map((n) => {
      const own = u.paths && Object.prototype.hasOwnProperty.call(u.paths, n);
      const p = own ? u.paths[n] : u.path;
      return h('td', { 'data-instance': n, class: own ? 'own' : 'muted' }, p || '(root)', own ? '' : ' (default)');
    }))));
  const out = h('div', { role: 'status', id: 'user-path-status' });
  const form = h('form', { class: 'grid', id: 'user-path' }, csrfField(),
    h('label', { for: 'p-user' }, 'User'), h('select', { id: 'p-user', name: 'user' }, us.map((u) => h('option', { value: u.name }, u.name))),
    h('label', { for: 'p-instance' }, 'Instance'), h('select', { id: 'p-instance', name: 'instance' }, names.map((n) => h('option', { value: n }, n))),
    h('label', { for: 'p-path' }, 'Path there'), h('div', {}, h('input', { id: 'p-path', name: 'path', placeholder: 'globex:acme' }),
      h('div', { class: 'hint' }, 'the user sees and acts at or below this path on that instance (empty: everything); Clear: the user\'s path again')),
    h('div', { class: 'full actions' }, h('button', { class: 'primary', type: 'submit', id: 'user-path-set' }, 'Set'),
      h('button', { type: 'button', id: 'user-path-clear', onclick: () => save(false) }, 'Clear')));
  async function save(set) {
    markField(form, undefined);
    const user = form.elements.user.value;
    const instance = form.elements.instance.value;
    const u = us.find((x) => x.name === user);
    const paths = { ...(u && u.paths) };
    if (set) paths[instance] = form.elements.path.value.trim();
    else delete paths[instance];
    try {
      const r = await api('PUT', `/users/${enc(user)}`, { paths });
      await pageUsers();
      document.getElementById('p-user').value = user;
      document.getElementById('p-instance').value = instance;
      const there = Object.prototype.hasOwnProperty.call(r.paths, instance) ? r.paths[instance] : undefined;
      document.getElementById('user-path-status').replaceChildren(h('p', { class: 'ok' }, there === undefined
        ? `${user} is at ${r.path || '(root)'} on ${instance} again.` : `${user} is at ${there || '(root)'} on ${instance}.`));
    } catch (e) {
      // the API names the field "paths": the path typed here
      markField(form, e.field === 'paths' ? { field: 'path' } : e);
      out.replaceChildren(errorBox(e));
    }
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    save(true);
  });
  return h('div', {}, table, h('p', { class: 'hint muted' }, 'Set a user\'s path on one instance where it differs from the user\'s path (globex:acme on b for a user at acme).'), form, out);
}

// ------------------------------------------------------------------ routing

async function route() {
  for (const c of cleanups) c();
  cleanups = [];
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  try {
    switch (parts[0]) {
      case '':
        return await pageList();
      case 'u':
        return await pageUnikernel(parts[1], parts[2]);
      case 'deploy':
        return pageDeploy();
      case 'blocks':
        return await pageBlocks();
      case 'policies':
        return await pagePolicies();
      case 'log':
        return await pageLog();
      case 'tokens':
        return await pageTokens();
      case 'users':
        return await pageUsers();
      case 'instances':
        return await pageInstances();
      case 'account':
        return pageAccount();
      default:
        show(h('h1', {}, 'Not found'));
    }
  } catch (e) {
    show(errorBox(e));
  }
}

async function start() {
  const r = await fetch('/session', { credentials: 'same-origin' });
  if (!r.ok) {
    location.href = '/login';
    return;
  }
  session = await r.json();
  document.getElementById('who').textContent = `${session.user} · ${session.path || 'root'}`;
  document.querySelector('#logout input[name=csrf]').value = session.csrf;
  document.getElementById('nav-users').hidden = !session.admin;
  instances = await api('GET', '/instances');
  window.addEventListener('hashchange', route);
  await route();
}

start();
