/**
 * The error function and its complement to full double precision, after the rational
 * approximations of fdlibm's s_erf.c (Sun Microsystems, freely redistributable). JavaScript has
 * no `Math.erf`; TPE's truncated normals need `erfc` accurate far into the tails.
 */

const erx = 8.45062911510467529297e-1;
const efx = 1.28379167095512586316e-1;
const pp = [1.28379167095512558561e-1, -3.25042107247001499370e-1, -2.84817495755985104766e-2, -5.77027029648944159157e-3, -2.37630166566501626084e-5] as const;
const qq = [3.97917223959155352819e-1, 6.50222499887672944485e-2, 5.08130628187576562776e-3, 1.32494738004321644526e-4, -3.96022827877536812320e-6] as const;
const pa = [
  -2.36211856075265944077e-3, 4.14856118683748331666e-1, -3.72207876035701323847e-1, 3.18346619901161753674e-1, -1.10894694282396677476e-1,
  3.54783043256182359371e-2, -2.16637559486879084300e-3,
] as const;
const qa = [1.06420880400844228286e-1, 5.40397917702171048937e-1, 7.18286544141962662868e-2, 1.26171219808761642112e-1, 1.36370839120290507362e-2, 1.19844998467991074170e-2] as const;
const ra = [
  -9.86494403484714822705e-3, -6.93858572707181764372e-1, -1.05586262253232909814e1, -6.23753324503260060396e1, -1.62396669462573470355e2,
  -1.84605092906711035994e2, -8.12874355063065934246e1, -9.81432934416914548592,
] as const;
const sa = [
  1.96512716674392571292e1, 1.37657754143519042600e2, 4.34565877475229228821e2, 6.45387271733267880336e2, 4.29008140027567833386e2,
  1.08635005541779435134e2, 6.57024977031928170135, -6.04244152148580987438e-2,
] as const;
const rb = [
  -9.86494292470009928597e-3, -7.99283237680523006574e-1, -1.77579549177547519889e1, -1.60636384855821916062e2, -6.37566443368389627722e2,
  -1.02509513161107724954e3, -4.83519191608651397019e2,
] as const;
const sb = [
  3.03380607434824582924e1, 3.25792512996573918826e2, 1.53672958608443695994e3, 3.19985821950859553908e3, 2.55305040643316442583e3,
  4.74528541206955367215e2, -2.24409524465858183362e1,
] as const;

/** `c[0] + s c[1] + s^2 c[2] + ...` */
function polynomial(s: number, c: readonly number[]): number {
  let result = 0;
  for (let i = c.length - 1; i >= 0; i--) result = result * s + (c[i] ?? 0);
  return result;
}

const splitView = new DataView(new ArrayBuffer(8));

/** `x` with the low 32 bits of its mantissa cleared, so that `z * z` is exact. */
function highPart(x: number): number {
  splitView.setFloat64(0, x);
  splitView.setUint32(4, 0);
  return splitView.getFloat64(0);
}

/** erfc(|x|) * |x| for |x| >= 1.25 (the tail form shared by erf and erfc). */
function tailTimesX(ax: number): number {
  const s = 1 / (ax * ax);
  let ratio: number;
  if (ax < 1 / 0.35) ratio = polynomial(s, ra) / (1 + s * polynomial(s, sa));
  else ratio = polynomial(s, rb) / (1 + s * polynomial(s, sb));
  const z = highPart(ax);
  return Math.exp(-z * z - 0.5625) * Math.exp((z - ax) * (z + ax) + ratio);
}

/** The error function. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax < 0.84375) {
    if (ax < 2 ** -28) return x + efx * x;
    const z = x * x;
    return x + x * (polynomial(z, pp) / (1 + z * polynomial(z, qq)));
  }
  if (ax < 1.25) {
    const s = ax - 1;
    const value = erx + polynomial(s, pa) / (1 + s * polynomial(s, qa));
    return x >= 0 ? value : -value;
  }
  if (ax >= 6) return x >= 0 ? 1 : -1;
  const value = 1 - tailTimesX(ax) / ax;
  return x >= 0 ? value : -value;
}

/** The complementary error function `1 - erf(x)`, accurate where it is tiny (x up to ~27). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax < 0.84375) {
    if (ax < 2 ** -56) return 1 - x;
    const z = x * x;
    const y = polynomial(z, pp) / (1 + z * polynomial(z, qq));
    if (x < 0.25) return 1 - (x + x * y);
    return 0.5 - (x * y + (x - 0.5));
  }
  if (ax < 1.25) {
    const s = ax - 1;
    const ratio = polynomial(s, pa) / (1 + s * polynomial(s, qa));
    return x >= 0 ? 1 - erx - ratio : 1 + erx + ratio;
  }
  if (ax >= 28) return x > 0 ? 0 : 2;
  if (x < -6) return 2;
  const tail = tailTimesX(ax) / ax;
  return x > 0 ? tail : 2 - tail;
}
