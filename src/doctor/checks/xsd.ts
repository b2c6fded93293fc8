import { spawn } from 'node:child_process';
import { HERALD_ENVELOPE_XSD } from '../../taric/envelope/xsd.js';
import { XMLLINT, XMLLINT_MISSING, xmllintAvailable } from '../../taric/envelope/xmllint.js';
import { fail, ok, skip, type Check } from '../check.js';

// Which validator the export will use (EXPORTER_XSD_VALIDATOR,
// docs/decisions/0019), and that xmllint, when it is the one, compiles
// Herald's envelope schema: an envelope that is not one is fed to it, and
// "not valid" (exit 3) is the answer a working xmllint gives.

const INSTALL = 'apt-get install libxml2-utils (Debian/Ubuntu), or set EXPORTER_XSD_VALIDATOR=wasm';

export const xsdCheck: Check = {
  name: 'xsd-validator',
  async run({ config, signal }) {
    const choice = config.EXPORTER_XSD_VALIDATOR;
    if (choice === 'wasm') return ok('libxml2-wasm in a worker thread validates envelopes (EXPORTER_XSD_VALIDATOR=wasm)');
    if (!xmllintAvailable()) {
      if (choice === 'xmllint') return fail(XMLLINT_MISSING, INSTALL);
      return skip(`${XMLLINT} not found: exports fall back to libxml2-wasm (about twice the validation CPU, in the worker's memory)`, INSTALL);
    }
    const r = await schemaCompiles(signal);
    if (r.code !== 3) return fail(`${XMLLINT} could not use Herald's schema ${HERALD_ENVELOPE_XSD}: ${r.stderr.trim().split('\n')[0] ?? `exit ${r.code}`}`, INSTALL);
    return ok(`${XMLLINT} (${r.version}) validates envelopes, streaming, in its own process`);
  },
};

function schemaCompiles(signal: AbortSignal): Promise<{ code: number | null; stderr: string; version: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(XMLLINT, ['--version', '--noout', '--nonet', '--stream', '--schema', HERALD_ENVELOPE_XSD, '-'], { signal, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr.length < 10_000 ? (stderr += d) : undefined));
    child.on('error', reject);
    child.on('close', (code) => {
      const version = /using libxml version (\d+)/.exec(stderr)?.[1] ?? 'unknown version';
      const rest = stderr
        .split('\n')
        .filter((l) => !l.startsWith(XMLLINT + ':') && !/^\s+compiled with/i.test(l) && !/^-/.test(l))
        .join('\n');
      resolve({ code, stderr: rest, version: `libxml ${version}` });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end('<not-an-envelope/>\n');
  });
}
