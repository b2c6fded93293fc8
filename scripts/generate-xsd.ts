// `npm run xsd`: (re)write xsd/ from the registry. `--check` writes nothing and
// exits 1 when a committed file differs (for CI and pre-commit use).
import fs from 'node:fs';
import path from 'node:path';
import { generateXsdFiles, XSD_DIR } from '../src/taric/envelope/xsd.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const [name, text] of Object.entries(generateXsdFiles())) {
  const file = path.join(XSD_DIR, name);
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (current === text) {
    process.stdout.write(`${name}: up to date\n`);
  } else if (check) {
    stale++;
    process.stdout.write(`${name}: differs from the registry (run npm run xsd)\n`);
  } else {
    fs.mkdirSync(XSD_DIR, { recursive: true });
    fs.writeFileSync(file, text);
    process.stdout.write(`${name}: written (${Buffer.byteLength(text)} bytes)\n`);
  }
}
if (stale) process.exitCode = 1;
