import type { Knex } from 'knex';

// Migrations are written as plain SQL scripts so the schema reads as SQL.
// PGlite (the embedded database) takes one statement per call, so a script is
// split on semicolons that end a line outside dollar-quoted bodies.
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let current = '';
  let inDollar = false;
  for (const line of script.split('\n')) {
    current += `${line}\n`;
    const dollars = line.match(/\$\$/g)?.length ?? 0;
    if (dollars % 2 === 1) inDollar = !inDollar;
    if (!inDollar && /;\s*$/.test(line)) {
      if (current.trim()) out.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

export async function runScript(knex: Knex, script: string): Promise<void> {
  for (const statement of splitStatements(script)) await knex.raw(statement);
}
