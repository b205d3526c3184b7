// Validates shaper policy files against config/policy.schema.json with ajv and
// prints one line per file, then one line per error as
// `file:line:col: path: message`, the loader's format, so a schema error and a
// loader error about the same mistake read alike.
//
//   node validate.mjs --modules DIR SCHEMA [--expect valid|invalid] FILE...
//
// DIR is a node_modules directory holding ajv and yaml (tests/schema/run.sh
// installs them there with `npm ci`); it is passed in because the packages
// live in the build directory, not next to this script, and ESM imports do
// not honour NODE_PATH. Exit status: 0 when every file met the expectation
// (valid by default), 1 otherwise, 2 on a usage error.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

function usage(msg) {
  console.error(`validate.mjs: ${msg}`);
  console.error('usage: node validate.mjs --modules DIR SCHEMA [--expect valid|invalid] FILE...');
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = null;
let expect = 'valid';
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--modules') modules = args[++i];
  else if (args[i] === '--expect') expect = args[++i];
  else positional.push(args[i]);
}
if (!modules) usage('--modules DIR is required');
if (expect !== 'valid' && expect !== 'invalid') usage(`--expect ${expect}: want valid or invalid`);
if (positional.length < 2) usage('need a schema and at least one file');
const [schemaPath, ...files] = positional;

const require = createRequire(path.resolve(modules) + path.sep);
const Ajv = require('ajv').default;
const YAML = require('yaml');

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
let validate;
try {
  validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
} catch (e) {
  // A schema that does not compile fails every file: say so once, loudly.
  console.error(`${schemaPath}: schema does not compile: ${e.message}`);
  process.exit(1);
}

// "/tenants/1/match/vlan" -> "tenants[1].match.vlan", the loader's spelling;
// "" (the document itself) -> "", which the message then leaves out.
function fieldPath(pointer) {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^[0-9]+$/.test(part) ? `[${part}]` : (out ? `.${part}` : part);
  }
  return out;
}

// Where the value at `pointer` starts in the file, as "line:col" (1-based).
// With atKey, where its key starts instead (an unknown key is pointed at
// itself, as the loader does).
function position(doc, lines, pointer, atKey) {
  const keys = pointer.split('/').slice(1).map((p) => {
    const k = p.replaceAll('~1', '/').replaceAll('~0', '~');
    return /^[0-9]+$/.test(k) ? Number(k) : k;
  });
  const at = (offset) => {
    const { line, col } = lines.linePos(offset);
    return `${line}:${col}`;
  };
  if (atKey && keys.length) {
    const parent = keys.length === 1 ? doc.contents : doc.getIn(keys.slice(0, -1), true);
    const pair = parent?.items?.find((p) => p.key?.value === keys[keys.length - 1]);
    if (pair?.key?.range) return at(pair.key.range[0]);
  }
  // Walk up until a node exists (a missing key is reported at the mapping
  // that lacks it).
  for (let n = keys.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true);
    if (node && node.range) return at(node.range[0]);
  }
  return '1:1';
}

function show(value) {
  return value !== null && typeof value === 'object' ? '' : `${JSON.stringify(value)}: `;
}

function describe(err) {
  const p = err.params;
  switch (err.keyword) {
    case 'additionalProperties': return `unknown key '${p.additionalProperty}'`;
    case 'required': return `missing required key '${p.missingProperty}'`;
    case 'enum': return `${show(err.data)}not one of ${p.allowedValues.join(', ')}`;
    case 'const': return `${show(err.data)}must be ${JSON.stringify(p.allowedValue)}`;
    case 'contains': return 'needs at least one class with priority: bulk';
    case 'false schema': return 'key not allowed here (weight is for bulk classes, max_share for latency classes)';
    case 'pattern':
    case 'anyOf': {
      const want = err.parentSchema.description ?? err.message;
      return `${show(err.data)}expected ${want[0].toLowerCase()}${want.slice(1)}`;
    }
    default: return `${show(err.data)}${err.message}`;
  }
}

// Ajv reports every failed branch of an anyOf (a burst that is neither a
// duration nor bytes fails both). Keep one line per value: the anyOf's own
// description says what was expected. Errors below a failed anyOf and the
// summarising "if" errors are dropped.
function summarise(errors) {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  return errors.filter((e) => {
    // "if" only summarises its "then"; errors inside "contains" are about
    // the items that did not match, not mistakes of their own.
    if (e.keyword === 'if' || e.schemaPath.includes('/contains/')) return false;
    if (e.keyword === 'anyOf') return true;
    return !anyOfPaths.has(e.instancePath);
  });
}

// An unknown key is named by its own path (tenants[0].guarenteed), as the
// loader names it; a missing key by its mapping's path (tenants[0]: missing
// required key 'match'), again as the loader does.
function errorPointer(e) {
  if (e.keyword !== 'additionalProperties') return e.instancePath;
  return `${e.instancePath}/${e.params.additionalProperty.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

// Bad files name the field their mistake is in: `# expect-error: tenants[0].match.vlan`.
// The test then fails if the file is rejected for some other reason.
function expectedPaths(text) {
  return [...text.matchAll(/^#\s*expect-error:\s*(\S+)\s*$/gm)].map((m) => m[1]);
}

let failures = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    console.log(`ERROR ${file}: ${e.message}`);
    failures++;
    continue;
  }
  const lines = new YAML.LineCounter();
  // Duplicate keys are errors and alias expansion is bounded, as in the
  // loader (config/loader.h Limits::max_aliases).
  const doc = YAML.parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const messages = [];
  const errorPaths = new Set();
  if (doc.errors.length) {
    errorPaths.add('(yaml)');
    // A syntax error has no field path, as in the loader.
    for (const e of doc.errors) messages.push(`${file}:${e.linePos?.[0]?.line ?? 1}:${e.linePos?.[0]?.col ?? 1}: ${e.message.split('\n')[0]}`);
  } else if (!validate(doc.toJS({ maxAliasCount: 1000 }))) {
    const seen = new Set();
    for (const e of summarise(validate.errors)) {
      const pointer = errorPointer(e);
      errorPaths.add(fieldPath(pointer));
      // `# expect-error: tenants[0].match` also matches a missing match:.
      if (e.keyword === 'required') errorPaths.add(fieldPath(`${pointer}/${e.params.missingProperty}`));
      const where = position(doc, lines, pointer, e.keyword === 'additionalProperties');
      const field = fieldPath(pointer);
      const line = `${file}:${where}: ${field ? `${field}: ` : ''}${describe(e)}`;
      if (!seen.has(line)) { seen.add(line); messages.push(line); }
    }
  }
  const valid = messages.length === 0;
  let ok = valid === (expect === 'valid');
  let why = `${valid ? 'valid' : 'invalid'} (expected ${expect})`;
  if (ok && expect === 'invalid') {
    const wanted = expectedPaths(text);
    const missing = wanted.filter((w) => !errorPaths.has(w));
    if (missing.length) {
      ok = false;
      why += `, but no error names ${missing.join(', ')}`;
    }
  }
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${file}: ${why}`);
  for (const m of messages) console.log(`  ${m}`);
}
console.log(`${files.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
