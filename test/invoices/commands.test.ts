import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';

// The CLI as an operator runs it: real `herald` processes on the test database.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('invoices.commands (herald parties / invoices / apikeys)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);

  const herald = (...args: string[]) => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: t.get().url, LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    return { code: res.status, out: res.stdout, err: res.stderr };
  };

  it('creates parties, generates an invoice from the fixture and shows it, all with --json', () => {
    const supplier = herald('parties', 'create', '--role', 'supplier', '--name', 'Acme Exports Ltd', '--currency', 'GBP', '--tax-rate', '20', '--prefix', 'INV-', '--json');
    expect(supplier.code, supplier.err).to.equal(0);
    expect(JSON.parse(supplier.out)).to.include({ id: 1, role: 'supplier', invoicePrefix: 'INV-', defaultTaxRate: '20.00' });
    expect(herald('parties', 'create', '--role', 'client', '--name', 'Bolt Imports GmbH').out).to.equal('created client 2: Bolt Imports GmbH\n');

    const made = herald('invoices', 'generate', '--file', 'fixtures/invoices/generate-request.json', '--json');
    expect(made.code, made.err).to.equal(0);
    expect(JSON.parse(made.out)).to.include({ invoiceNumber: 'INV-000001', total: '97.17' });
    const shown = herald('invoices', 'show', 'INV-000001', '--json');
    expect(JSON.parse(shown.out)).to.deep.equal(JSON.parse(made.out));
    expect(herald('invoices', 'show', 'INV-000001').out).to.contain('total GBP 97.17');
    expect(JSON.parse(herald('invoices', 'requests', '--json').out)).to.deep.equal({ pending: 0, processing: 0, completed: 0, failed: 0 });
  });

  it('answers bad input with one line naming the option or field, and exit code 2', () => {
    const badCurrency = herald('parties', 'create', '--role', 'client', '--name', 'X', '--currency', 'euro');
    expect(badCurrency.code).to.equal(2);
    expect(badCurrency.err.trim().split('\n')).to.deep.equal(['herald: --currency: must be a 3-letter ISO 4217 code like "EUR"']);
    const badDigits = herald('parties', 'create', '--role', 'supplier', '--name', 'X', '--digits', 'six');
    expect(badDigits.err).to.contain('--digits: must be a whole number');
    const unknownClient = herald('invoices', 'generate', '--file', '-');
    expect(unknownClient.code).to.equal(2);
    expect(unknownClient.err).to.match(/^herald: --file: /);
  });

  it('prints a new API key once, stores only its hash, and refuses a duplicate name', () => {
    const created = herald('apikeys', 'create', 'erp', '--json');
    expect(created.code, created.err).to.equal(0);
    const { key } = JSON.parse(created.out) as { key: string };
    expect(key).to.match(/^hk_[\w-]{43}$/);
    const listed = herald('apikeys', 'list', '--json');
    expect(listed.out).to.not.contain(key.slice(12));
    const again = herald('apikeys', 'create', 'erp');
    expect(again.code).to.equal(1);
    expect(again.err).to.equal('herald: NAME: an API key named "erp" already exists; pick another name or revoke it first\n');
    expect(herald('apikeys', 'revoke', 'erp').out).to.equal('revoked API key "erp"\n');
  });

  it('has --help with a --json option (serve, invoices generate)', () => {
    // Each spawn costs seconds (tsx); two commands stand for the rest.
    for (const cmd of [['serve'], ['invoices', 'generate']]) {
      const res = herald(...cmd, '--help');
      expect(res.code, cmd.join(' ')).to.equal(0);
      expect(res.out, cmd.join(' ')).to.contain('--json');
    }
  });
});
