// Figures the benchmarks print.

// Nearest-rank percentile `p` (0-100) of sorted `values`.
export const percentile = (values, p) =>
  values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)];
