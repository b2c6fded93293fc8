import { Decimal } from 'decimal.js';

// Invoice arithmetic in exact decimals (decimal.js), never floats. The rule,
// applied per line and then summed (see README "Money"):
//   gross    = round2(quantity x unitPrice)
//   subtotal = gross - discount              (discount is an amount, 2 dp)
//   tax      = round2(subtotal x taxRate / 100)
//   total    = subtotal + tax
// round2 = half-up (away from zero) to 2 decimal places. Invoice totals are
// the sums of the rounded line amounts, so the printed lines always add up.

// 60 significant digits: far beyond any product of the validated inputs, so
// only round2 ever rounds.
const D = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_UP });

export interface LineInput {
  quantity: string;
  unitPrice: string;
  discount: string;
  taxRate: string;
}

export interface LineAmounts {
  subtotal: string;
  tax: string;
  total: string;
}

export interface InvoiceAmounts {
  lines: LineAmounts[];
  subtotal: string;
  taxTotal: string;
  total: string;
}

function round2(value: Decimal): Decimal {
  return value.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
}

/** quantity x unitPrice rounded to 2 dp: the most a line's discount can be. */
export function lineGross(quantity: string, unitPrice: string): string {
  return round2(new D(quantity).times(unitPrice)).toFixed(2);
}

export function isGreater(a: string, b: string): boolean {
  return new D(a).greaterThan(b);
}

export function computeLine(line: LineInput): LineAmounts {
  const gross = round2(new D(line.quantity).times(line.unitPrice));
  const subtotal = gross.minus(line.discount);
  const tax = round2(subtotal.times(line.taxRate).dividedBy(100));
  return { subtotal: subtotal.toFixed(2), tax: tax.toFixed(2), total: subtotal.plus(tax).toFixed(2) };
}

export function computeInvoice(lines: LineInput[]): InvoiceAmounts {
  const amounts = lines.map(computeLine);
  const sum = (pick: (l: LineAmounts) => string) => amounts.reduce((acc, l) => acc.plus(pick(l)), new D(0)).toFixed(2);
  return { lines: amounts, subtotal: sum((l) => l.subtotal), taxTotal: sum((l) => l.tax), total: sum((l) => l.total) };
}

/** A numeric column as Herald prints it: fixed scale, no exponent. */
export function formatDecimal(value: string, scale: number): string {
  return new D(value).toFixed(scale);
}

/** Decimal strings without trailing zeros beyond what matters ("2.5000" -> "2.5"). */
export function normalizeDecimal(value: string): string {
  return new D(value).toFixed();
}
