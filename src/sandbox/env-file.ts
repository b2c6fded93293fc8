import fs from 'node:fs';
import path from 'node:path';

// `herald sandbox --write-env-file PATH`: the printed settings as a .env file that
// systemd (EnvironmentFile=), docker compose (env_file:), `node --env-file`
// and `set -a; . ./.env` all read the same way. That holds only for plain
// values: quoting rules differ between those readers, so a value that would
// need quotes is refused rather than written in a form one of them misreads.

const PLAIN_VALUE = /^[\w.,:/@%+=~-]*$/;
const KEY = /^[A-Z][A-Z0-9_]*$/;

export class EnvFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvFileError';
  }
}

/** KEY=value lines under `#` header lines. */
export function formatEnvFile(env: Record<string, string>, header: readonly string[] = []): string {
  const lines = header.map((h) => `# ${h}`);
  for (const [key, value] of Object.entries(env)) {
    if (!KEY.test(key)) throw new EnvFileError(`${key}: not a valid setting name`);
    if (!PLAIN_VALUE.test(value)) throw new EnvFileError(`${key}: its value needs quoting, which .env readers disagree on`);
    lines.push(`${key}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

function describeKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Throws unless `file` can be written: missing (in an existing directory) or
 * a regular file, which is replaced. A symbolic link is refused too: the file
 * holds secrets, and Herald does not write through a link it did not make.
 */
export function checkEnvFileTarget(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EnvFileError(`${file}: ${(err as Error).message}`, { cause: err });
    const dir = path.dirname(path.resolve(file));
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new EnvFileError(`${file}: directory ${dir} does not exist; create it first`);
    return;
  }
  if (!st.isFile()) throw new EnvFileError(`${file} is ${describeKind(st)}; name a regular file (it is replaced) or a new one`);
}

/**
 * Writes `text` to `file` with mode 0600 whatever the umask, replacing a
 * regular file in one rename: a reader sees the old file or the new one,
 * never half of it, and never a moment with wider permissions.
 */
export function writeEnvFile(file: string, text: string): void {
  checkEnvFileTarget(file);
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600);
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new EnvFileError(`could not write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
