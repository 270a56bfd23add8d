#!/usr/bin/env node
// Generates the parts of charts/credsync/README.md that come from the chart:
// the version line (Chart.yaml) and the values table, one row per value that
// values.yaml documents with a helm-docs "# --" comment (key, type, default,
// description). A key with such a comment is one row even when its value is
// a map (sidecar.resources); a map without one is walked into. The rest of
// the README is written by hand, between the generated blocks:
//
//   <!-- BEGIN chart-readme NAME -->   ...generated...   <!-- END chart-readme NAME -->
//
//   node scripts/chart-readme.mjs              # rewrite the generated blocks
//   node scripts/chart-readme.mjs --check      # exit 1 if README.md is stale
//   node scripts/chart-readme.mjs --chart DIR  # another chart directory
//
// tests/chart runs --check, so the README cannot go stale. The README is
// what `helm show readme` prints and what a chart repository shows: it must
// stand alone, so a repository path named in a description (docs/...md#...)
// becomes an absolute link under the chart's home.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import YAML from 'yaml';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The "# --" block of a comment: from its last line starting with "--" up to
// a blank line or the end, the marker dropped and the lines joined.
function docComment(comment) {
  if (!comment) return null;
  const lines = comment.split('\n');
  let start = -1;
  lines.forEach((l, i) => { if (/^ *-- \S/.test(l)) start = i; });
  if (start < 0) return null;
  const block = [];
  for (const line of lines.slice(start)) {
    if (line.trim() === '') break;
    block.push(line.trim());
  }
  block[0] = block[0].replace(/^-- /, '');
  return block.join(' ');
}

// The schema node of a values key (with $ref resolved), or undefined.
function schemaAt(schema, keys) {
  const resolve = (s) => (s?.$ref ? schema.definitions[s.$ref.split('/').pop()] : s);
  let node = resolve(schema);
  for (const k of keys) node = resolve(node?.properties?.[k]);
  return node;
}

const SCHEMA_TYPES = { boolean: 'bool', integer: 'int', number: 'float', string: 'string', object: 'object', array: 'list' };
function typeOf(value, schemaNode, key) {
  if (value === null) {
    const types = [schemaNode?.type].flat().filter((t) => t && t !== 'null');
    if (types.length !== 1) throw new Error(`chart-readme: ${key} is null and the schema gives no single type for it`);
    return SCHEMA_TYPES[types[0]];
  }
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  return typeof value === 'object' ? 'object' : 'string';
}

// The documented values of values.yaml, in file order:
// [{ key, type, default (the value), description }].
export function valuesRows(valuesText, schema) {
  const doc = YAML.parseDocument(valuesText);
  if (doc.errors.length) throw new Error(`chart-readme: values.yaml: ${doc.errors[0].message}`);
  const rows = [];
  const visit = (map, keys) => map.items.forEach((pair, index) => {
    const here = [...keys, String(pair.key.value)];
    // The `yaml` parser hangs the comment of a map's first key on the map.
    const description = docComment(pair.key.commentBefore) ?? (index === 0 ? docComment(map.commentBefore) : null);
    if (description) {
      const value = pair.value?.toJSON() ?? null;
      rows.push({ key: here.join('.'), type: typeOf(value, schemaAt(schema, here), here.join('.')), default: value, description });
    } else if (YAML.isMap(pair.value)) {
      visit(pair.value, here);
    } else {
      throw new Error(`chart-readme: ${here.join('.')} has no "# --" comment`);
    }
  });
  visit(doc.contents, []);
  return rows;
}

// Markdown for a table cell: pipes escaped everywhere; a bare URL (often a
// placeholder such as https://host[:port]) made a code span, so it is not
// turned into a broken link; outside code spans <, > and * escaped, and
// paths of this repository made absolute links.
const outsideCode = (text, f) => text.split(/(`[^`]*`)/).map((part) => (part.startsWith('`') ? part : f(part))).join('');
function cell(text, home) {
  const urls = outsideCode(text, (part) => part.replace(/https?:\/\/[^\s,;)]*[^\s,;).]/g, '`$&`'));
  return urls.split(/(`[^`]*`)/).map((part) => {
    if (part.startsWith('`')) return part.replace(/\|/g, '\\|');
    return part
      .replace(/\|/g, '\\|')
      .replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/\*/g, '\\*')
      .replace(/\b((?:docs|deploy|charts|scripts)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])(#[a-z0-9-]+)?/g, (m, file, anchor = '') =>
        (fs.existsSync(path.join(repo, file)) ? `[${m}](${home}/blob/main/${file}${anchor})` : m));
  }).join('');
}

export function valuesTable(rows, home) {
  const lines = ['| Key | Type | Default | Description |', '|-----|------|---------|-------------|'];
  for (const r of rows) {
    lines.push(`| \`${r.key}\` | ${r.type} | \`${JSON.stringify(r.default).replace(/\|/g, '\\|')}\` | ${cell(r.description, home)} |`);
  }
  return lines.join('\n');
}

export function versionLine(meta) {
  return `**Chart version** ${meta.version} · **App version** ${meta.appVersion} · ` +
    `**Kubernetes** \`${meta.kubeVersion}\` · **Type** ${meta.type}`;
}

// README text with its generated blocks replaced.
export function generate(readme, chartDir) {
  const meta = YAML.parse(fs.readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'));
  const schema = JSON.parse(fs.readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8'));
  const rows = valuesRows(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8'), schema);
  const blocks = { version: versionLine(meta), values: valuesTable(rows, meta.home) };
  let out = readme;
  for (const [name, body] of Object.entries(blocks)) {
    const begin = `<!-- BEGIN chart-readme ${name} -->`;
    const end = `<!-- END chart-readme ${name} -->`;
    const i = out.indexOf(begin);
    const j = out.indexOf(end);
    if (i < 0 || j < i) throw new Error(`chart-readme: README.md lacks the markers ${begin} ... ${end}`);
    out = `${out.slice(0, i + begin.length)}\n${body}\n${out.slice(j)}`;
  }
  return out;
}

function main(argv) {
  let chartDir = path.join(repo, 'charts', 'credsync');
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--check') check = true;
    else if (argv[i] === '--chart' && argv[i + 1]) chartDir = path.resolve(argv[++i]);
    else {
      console.error('usage: chart-readme.mjs [--check] [--chart DIR]');
      return 2;
    }
  }
  const file = path.join(chartDir, 'README.md');
  const current = fs.readFileSync(file, 'utf8');
  const wanted = generate(current, chartDir);
  const shown = path.relative(process.cwd(), file) || file;
  if (check) {
    if (current === wanted) {
      console.log(`chart-readme: ${shown} is current`);
      return 0;
    }
    console.error(`chart-readme: ${shown} is stale (values.yaml or Chart.yaml changed): run node scripts/chart-readme.mjs`);
    return 1;
  }
  if (current !== wanted) fs.writeFileSync(file, wanted);
  console.log(`chart-readme: ${current === wanted ? 'unchanged' : 'wrote'} ${shown}`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exitCode = 2;
  }
}
