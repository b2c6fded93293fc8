import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Where Herald's package.json is: two folders up from src/lib when run
// through tsx, three from dist/src/lib when compiled. Found by looking, so
// both layouts reach fixtures/ and the version.

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
