import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { definitionsWith } from '../helpers/wiring.js';

// docs/retry-schedules.md is written by hand (each kind's notes matter); this
// keeps its headings true to the definitions the composition root registers.

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/retry-schedules.md');
const UNIT_MS: Record<string, number> = { s: 1000, min: 60_000, h: 3_600_000 };

function ms(text: string): number {
  const m = /^([\d.]+) (s|min|h)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

describe('docs.retry-schedules', () => {
  const doc = fs.readFileSync(DOC, 'utf8');
  const headings = new Map([...doc.matchAll(/^### `([a-z-]+)` \([^)]*\)(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

  it('has a section for every registered kind and none for a kind that does not exist', () => {
    const kinds = definitionsWith().map((d) => d.kind as string);
    expect([...headings.keys()].sort()).to.deep.equal([...kinds].sort());
  });

  it("states each kind's base, cap and attempts as its definition has them", () => {
    let checked = 0;
    for (const def of definitionsWith()) {
      const m = /base ([\d.]+ (?:s|min|h)), cap ([\d.]+ (?:s|min|h)), (\d+) attempts/.exec(headings.get(def.kind) ?? '');
      if (!m) continue; // recurring and schedule-driven kinds describe themselves in prose
      expect({ kind: def.kind, baseMs: ms(m[1]!), capMs: ms(m[2]!), attempts: Number(m[3]) }).to.deep.equal({
        kind: def.kind, baseMs: def.backoff.baseMs, capMs: def.backoff.capMs, attempts: def.maxAttempts,
      });
      checked++;
    }
    expect(checked, 'kinds whose heading states their schedule').to.be.at.least(7);
  });
});
