/** How well one ranking of components agrees with another: Spearman's ρ and the top-k overlap. */

/** Ranks 1 … n, ties given their mean rank. */
function ranks(x: readonly number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Pearson's correlation of two equally long series (NaN when either is constant). */
export function pearson(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length < 2) throw new RangeError(`correlation needs two series of the same length ≥ 2, got ${a.length} and ${b.length}`);
  const mean = (x: readonly number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let [sab, saa, sbb] = [0, 0, 0];
  a.forEach((v, i) => {
    const [da, db] = [v - ma, b[i]! - mb];
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  });
  return sab / Math.sqrt(saa * sbb);
}

/** Spearman's rank correlation: Pearson's on the ranks (ties at their mean rank). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  return pearson(ranks(a), ranks(b));
}

/** Indices of the k largest |values|, largest first. */
export function topK(x: readonly number[], k: number): number[] {
  return x.map((v, i) => [Math.abs(v), i] as const).sort((p, q) => q[0] - p[0] || p[1] - q[1]).slice(0, k).map(([, i]) => i);
}

/** How many of the k components largest in |a| are among the k largest in |b|. */
export function topKOverlap(a: readonly number[], b: readonly number[], k: number): number {
  const tb = new Set(topK(b, k));
  return topK(a, k).filter((i) => tb.has(i)).length;
}
