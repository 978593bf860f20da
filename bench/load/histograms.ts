/**
 * Latency histograms in microseconds (HdrHistogram, 3 significant digits, up to 60 s): built in the
 * generator workers, shipped to the parent compressed in base64, merged and summarized there.
 */
import * as hdr from "hdr-histogram-js"

/** Longest latency a histogram holds; larger values are recorded as this (a run is bounded well below it). */
export const latencyMicrosMax = 60_000_000

export const newLatencyHistogram = (): hdr.Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyMicrosMax, numberOfSignificantValueDigits: 3 })

/** Records a latency given in milliseconds (performance.now differences). */
export const recordLatencyMs = (histogram: hdr.Histogram, latencyMs: number): void => {
  histogram.recordValue(Math.min(latencyMicrosMax, Math.max(1, Math.round(latencyMs * 1000))))
}

export const encodeHistogram = (histogram: hdr.Histogram): string => hdr.encodeIntoCompressedBase64(histogram)

/** One histogram holding every value of the encoded ones. */
export const mergeHistograms = (encoded: ReadonlyArray<string>): hdr.Histogram => {
  const merged = newLatencyHistogram()
  for (const base64 of encoded) {
    if (base64 === "") continue
    const part = hdr.decodeFromCompressedBase64(base64)
    merged.add(part)
    part.destroy()
  }
  return merged
}

const millisecondsOf = (micros: number): number => Math.round(micros) / 1000

export const latencySummaryOf = (histogram: hdr.Histogram) => ({
  p50: millisecondsOf(histogram.getValueAtPercentile(50)),
  p90: millisecondsOf(histogram.getValueAtPercentile(90)),
  p99: millisecondsOf(histogram.getValueAtPercentile(99)),
  p999: millisecondsOf(histogram.getValueAtPercentile(99.9)),
  max: millisecondsOf(histogram.maxValue),
  mean: histogram.totalCount === 0 ? 0 : millisecondsOf(histogram.mean),
})

/**
 * The percentile spectrum on the 1/(1-p) ladder HdrHistogram plots: `ticksPerHalf` points per
 * halving of the distance to 100 %, from 0 up to the percentile of the last recorded value.
 */
export const spectrumOf = (
  histogram: hdr.Histogram,
  ticksPerHalf = 5,
): Array<{ readonly percentile: number; readonly latencyMs: number }> => {
  if (histogram.totalCount === 0) return []
  const points: Array<{ percentile: number; latencyMs: number }> = []
  // Beyond the percentile where one sample remains, every point would read the max.
  const lastPercentile = 100 * (1 - 1 / histogram.totalCount)
  // Percentile values are the highest equivalent value of their bucket, so the end point is read the same way.
  const lastPoint = { percentile: 100, latencyMs: millisecondsOf(histogram.getValueAtPercentile(100)) }
  for (let halvings = 0; halvings < 40; halvings++) {
    const remaining = 100 / 2 ** halvings
    for (let tick = 0; tick < ticksPerHalf; tick++) {
      const percentile = 100 - remaining * (1 - tick / (2 * ticksPerHalf))
      if (percentile > lastPercentile) {
        points.push(lastPoint)
        return points
      }
      points.push({ percentile, latencyMs: millisecondsOf(histogram.getValueAtPercentile(percentile)) })
    }
  }
  points.push(lastPoint)
  return points
}
