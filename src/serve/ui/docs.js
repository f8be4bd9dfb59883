// Renders /openapi.json as a plain list of operations; no external docs viewer, so it works offline.
'use strict';
(async () => {
  const root = document.getElementById('ops');
  const doc = await (await fetch('/openapi.json')).json();
  const el = (tag, attrs = {}, ...children) => {
    const e = Object.assign(document.createElement(tag), attrs);
    e.append(...children);
    return e;
  };
  root.textContent = '';
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const box = el('div', { className: 'op' },
        el('div', {}, el('span', { className: `method ${method}` }, method.toUpperCase()), ' ', el('code', {}, path), op.security ? ' 🔒 bearer token' : ''),
        el('p', {}, op.summary));
      if (op.parameters.length) {
        const table = el('table', {}, el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'description')));
        for (const p of op.parameters) table.append(el('tr', {}, el('td', {}, el('code', {}, p.name + (p.required ? ' *' : ''))), el('td', {}, p.in), el('td', {}, p.description ?? '')));
        box.append(table);
      }
      for (const sample of op['x-codeSamples'] ?? []) box.append(el('pre', { className: 'curl' }, sample.source));
      for (const [type, body] of Object.entries(op.requestBody?.content ?? {})) {
        const fields = Object.entries(body.schema?.properties ?? {}).map(([name, f]) => `${name}${f.description ? ` — ${f.description}` : ''}`);
        box.append(el('div', {}, `request body (${type}): ${body.schema?.description ?? ''}`), el('ul', {}, ...fields.map((f) => el('li', {}, f))));
      }
      box.append(el('div', {}, 'responses: ' + Object.entries(op.responses).map(([s, r]) => `${s} ${r.description}`).join(' · ')));
      root.append(box);
    }
  }
})().catch((err) => { document.getElementById('ops').textContent = `could not load /openapi.json: ${err}`; });
