// The schema's unit, name and DSCP-name patterns accept what the loader's units parser
// (config/units.h) accepts and reject what it rejects, case by case, so an
// editor neither flags a good policy nor waves a bad one through.
//   node unit_forms.mjs SCHEMA
// Patterns are compiled with the "u" flag, as ajv compiles them.
import { readFileSync } from 'node:fs';

const defs = JSON.parse(readFileSync(process.argv[2], 'utf8')).definitions;
const ok = true;
const bad = false;
const cases = {
  rate: [
    ['10Gbit', ok], ['1.5Gbit', ok], ['.5Gbit', ok], ['100 Mbit', ok], ['100mbit', ok],
    ['250kbit', ok], ['1Tbit', ok], ['0bit', ok], ['100Mbps', ok], ['100kbps', ok], ['+1Gbit', ok],
    // tc reads mbps/gbps as bytes per second; anything with B is bytes.
    ['100mbps', bad], ['1gbps', bad], ['100MBps', bad], ['100MB', bad],
    ['100', bad], ['100Gb', bad], ['-1Gbit', bad], ['1.5.2Gbit', bad], ['Gbit', bad], ['1 G bit', bad],
  ],
  bytes: [
    ['24B', ok], ['64KiB', ok], ['1kB', ok], ['1.5MB', ok], ['2TiB', ok],
    ['24b', bad], ['24', bad], ['1KIB', bad], ['1Kb', bad], ['1Mbit', bad],
  ],
  duration: [
    ['2ms', ok], ['500us', ok], ['500\u00b5s', ok], ['1s', ok], ['100ns', ok], ['0.5ms', ok],
    ['1', bad], ['1m', bad], ['1h', bad], ['1min', bad], ['2 mS', bad],
  ],
  percent: [
    ['98%', ok], ['100%', ok], ['100.0%', ok], ['97.5%', ok], ['0.0001%', ok], ['0%', ok], ['98 %', ok],
    ['0.00001%', bad], ['101%', bad], ['150%', bad], ['100.1%', bad], ['98', bad], ['-1%', bad], ['%', bad],
  ],
  // config/loader.cc ValidName: 1..64 of [A-Za-z0-9_.-].
  name: [
    ['acme', ok], ['pop-east.dc_1', ok], ['x'.repeat(64), ok],
    ['', bad], ['x'.repeat(65), bad], ['my tenant', bad], ['caf\u00e9', bad], ['a/b', bad],
  ],
  // config/loader.cc ParseDscp: names in any case.
  dscpName: [
    ['EF', ok], ['ef', ok], ['Af41', ok], ['cs7', ok], ['LE', ok], ['be', ok],
    ['AF44', bad], ['AF51', bad], ['CS8', bad], ['VA', bad], ['E F', bad],
  ],
};
// The DSCP name pattern is the string branch of the dscp definition.
defs.dscpName = defs.dscp.anyOf.find((b) => b.pattern);
let passed = 0;
let failed = 0;
for (const [kind, list] of Object.entries(cases)) {
  const re = new RegExp(defs[kind].pattern, 'u');
  for (const [text, want] of list) {
    if (re.test(text) === want) {
      passed++;
    } else {
      failed++;
      console.log(`FAIL ${kind} ${JSON.stringify(text)}: schema ${want ? 'rejects' : 'accepts'} it, the loader ${want ? 'accepts' : 'rejects'} it`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
