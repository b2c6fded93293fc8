import { expect } from 'chai';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import { computeInvoice, computeLine } from '../../src/invoices/money.js';

describe('invoices.money', () => {
  it('rounds each line half-up to 2 dp (0.125 -> 0.13, 1.005 -> 1.01), where floats would not', () => {
    // 1.005 as a float is 1.00499999999999989..., so Math.round(x*100)/100 gives 1.00.
    expect(Math.round(1.005 * 100) / 100).to.equal(1);
    expect(computeLine({ quantity: '1', unitPrice: '1.005', discount: '0', taxRate: '0' }).subtotal).to.equal('1.01');
    expect(computeLine({ quantity: '1', unitPrice: '0.125', discount: '0', taxRate: '0' }).subtotal).to.equal('0.13');
    // tax 10% of 0.25 = 0.025 -> 0.03
    expect(computeLine({ quantity: '1', unitPrice: '0.25', discount: '0', taxRate: '10' })).to.deep.equal({ subtotal: '0.25', tax: '0.03', total: '0.28' });
  });

  it('takes the discount off the rounded gross before tax', () => {
    // gross 3 x 33.333 = 99.999 -> 100.00; - 10.00 = 90.00; tax 21% = 18.90
    expect(computeLine({ quantity: '3', unitPrice: '33.333', discount: '10', taxRate: '21' })).to.deep.equal({ subtotal: '90.00', tax: '18.90', total: '108.90' });
  });

  it('sums rounded lines, so three lines of 0.005 tax each make 0.03, not round(0.015)', () => {
    const line = { quantity: '1', unitPrice: '0.05', discount: '0', taxRate: '10' };
    const inv = computeInvoice([line, line, line]);
    expect(inv).to.deep.include({ subtotal: '0.15', taxTotal: '0.03', total: '0.18' });
  });

  it('keeps totals exact for large amounts (no float drift near 10^18)', () => {
    const inv = computeInvoice([
      { quantity: '999999999.9999', unitPrice: '999999999.9999', discount: '0', taxRate: '0' },
      { quantity: '1', unitPrice: '0.01', discount: '0', taxRate: '0' },
    ]);
    // (10^9 - 10^-4)^2 = 10^18 - 2x10^5 + 10^-8 -> rounds to ...800000.00
    expect(inv.total).to.equal('999999999999800000.01');
  });

  it('always has total = subtotal + tax, per line and per invoice, with 2 dp (property)', () => {
    const dec = (int: number, scale: number) =>
      fc.tuple(fc.bigInt({ min: 0n, max: 10n ** BigInt(int) - 1n }), fc.bigInt({ min: 0n, max: 10n ** BigInt(scale) - 1n })).map(([i, f]) => `${i}.${f.toString().padStart(scale, '0')}`);
    const line = fc.record({ quantity: dec(6, 4), unitPrice: dec(6, 4), taxRate: fc.integer({ min: 0, max: 100 }).map(String) }).map((l) => ({ ...l, discount: '0' }));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), (lines) => {
        const inv = computeInvoice(lines);
        for (const l of inv.lines) {
          expect(new Decimal(l.subtotal).plus(l.tax).toFixed(2)).to.equal(l.total);
          expect(l.total).to.match(/^\d+\.\d{2}$/);
        }
        expect(new Decimal(inv.subtotal).plus(inv.taxTotal).toFixed(2)).to.equal(inv.total);
        const sum = inv.lines.reduce((a, l) => a.plus(l.total), new Decimal(0));
        expect(sum.toFixed(2)).to.equal(inv.total);
      }),
      { numRuns: 300 },
    );
  });
});
