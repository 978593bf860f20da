/**
 * Line charts as inline SVG strings for the HTML report: no script, no library, readable when the
 * file is opened from disk or attached to an issue. Axes may be linear or logarithmic; the
 * latency spectrum puts percentiles on HdrHistogram's 1/(1-p) axis.
 */

export interface Point {
  readonly x: number
  readonly y: number
}

export interface Series {
  readonly label: string
  readonly points: ReadonlyArray<Point>
  /** Drawn dashed with markers: a baseline known only at a few points. */
  readonly sparse?: boolean
}

export interface Tick {
  readonly value: number
  readonly label: string
}

export interface Axis {
  readonly label: string
  readonly scale: "linear" | "log"
  readonly min: number
  readonly max: number
  readonly ticks: ReadonlyArray<Tick>
}

export interface ChartOptions {
  readonly title: string
  readonly x: Axis
  readonly y: Axis
  readonly series: ReadonlyArray<Series>
}

const width = 760
const height = 340
const margin = { left: 64, right: 16, top: 30, bottom: 44 }
/** Legend rows under the plot area; each takes this many pixels. */
const legendRowPx = 16
/** Colour-blind-safe palette (Okabe-Ito), cycled. */
const palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

export const colorOf = (index: number): string => palette[index % palette.length] ?? "#000000"

export const escapeXml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Maps a value onto [0, 1] of its axis; log axes need positive bounds, values below min are clamped. */
const position = (axis: Axis, value: number): number => {
  if (axis.scale === "linear") return axis.max === axis.min ? 0 : (value - axis.min) / (axis.max - axis.min)
  const low = Math.log10(axis.min)
  const high = Math.log10(axis.max)
  return high === low ? 0 : (Math.log10(Math.max(value, axis.min)) - low) / (high - low)
}

export const formatNumber = (value: number): string => {
  if (value === 0) return "0"
  const magnitude = Math.abs(value)
  if (magnitude >= 1_000_000) return `${(value / 1_000_000).toFixed(magnitude >= 10_000_000 ? 0 : 1)}M`
  if (magnitude >= 10_000) return `${(value / 1000).toFixed(0)}k`
  if (magnitude >= 100) return value.toFixed(0)
  if (magnitude >= 10) return value.toFixed(1).replace(/\.0$/, "")
  if (magnitude >= 1) return value.toFixed(2).replace(/\.?0+$/, "")
  return value.toPrecision(2)
}

/** About five round ticks (1, 2 or 5 times a power of ten apart) from 0 up to `max`. */
export const linearAxis = (label: string, dataMax: number): Axis => {
  const max = dataMax > 0 ? dataMax * 1.05 : 1
  const rough = max / 5
  const power = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? rough
  const ticks: Array<Tick> = []
  for (let value = 0; value <= max + step * 1e-9; value += step) ticks.push({ value, label: formatNumber(value) })
  return { label, scale: "linear", min: 0, max, ticks }
}

/** Decades spanning the data (with 2 and 5 between them when the range is short). */
export const logAxis = (label: string, dataMin: number, dataMax: number): Axis => {
  const low = 10 ** Math.floor(Math.log10(dataMin > 0 ? dataMin : 0.01))
  const high = 10 ** Math.ceil(Math.log10(dataMax > low ? dataMax : low * 10))
  const top = high === low ? high * 10 : high
  const decades = Math.round(Math.log10(top / low))
  const factors = decades <= 3 ? [1, 2, 5] : [1]
  const ticks: Array<Tick> = []
  for (let decade = low; decade <= top * 1.0001; decade *= 10) {
    for (const factor of factors) {
      const value = decade * factor
      if (value <= top * 1.0001) ticks.push({ value, label: formatNumber(value) })
    }
  }
  return { label, scale: "log", min: low, max: top, ticks }
}

const gridAndTicks = (options: ChartOptions, plotWidth: number, plotHeight: number): Array<string> => {
  const parts: Array<string> = []
  for (const tick of options.x.ticks) {
    const x = margin.left + position(options.x, tick.value) * plotWidth
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${margin.top}" x2="${x.toFixed(1)}" y2="${margin.top + plotHeight}" class="grid"/>`,
      `<text x="${x.toFixed(1)}" y="${margin.top + plotHeight + 16}" text-anchor="middle">${escapeXml(tick.label)}</text>`,
    )
  }
  for (const tick of options.y.ticks) {
    const y = margin.top + (1 - position(options.y, tick.value)) * plotHeight
    parts.push(
      `<line x1="${margin.left}" y1="${y.toFixed(1)}" x2="${margin.left + plotWidth}" y2="${y.toFixed(1)}" class="grid"/>`,
      `<text x="${margin.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escapeXml(tick.label)}</text>`,
    )
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotWidth}" height="${plotHeight}" class="frame"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${margin.top + plotHeight + 36}" text-anchor="middle">${escapeXml(options.x.label)}</text>`,
    `<text transform="translate(14 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.y.label)}</text>`,
  )
  return parts
}

const seriesPath = (options: ChartOptions, series: Series, color: string, plotWidth: number, plotHeight: number) => {
  const coordinates = series.points
    .filter((point) => Number.isFinite(point.x) && Number.isFinite(point.y))
    .map((point) => {
      const x = margin.left + Math.min(1, Math.max(0, position(options.x, point.x))) * plotWidth
      const y = margin.top + (1 - Math.min(1, Math.max(0, position(options.y, point.y)))) * plotHeight
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
  if (coordinates.length === 0) return ""
  const dash = series.sparse === true ? ` stroke-dasharray="6 4"` : ""
  const line = `<polyline points="${coordinates.join(" ")}" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>`
  if (series.sparse !== true) return line
  const markers = coordinates.map((pair) => {
    const [x, y] = pair.split(",")
    return `<circle cx="${x}" cy="${y}" r="3" fill="${color}"/>`
  })
  return line + markers.join("")
}

/** One chart: grid, ticks, axis labels, a polyline per series and a legend under the plot. */
export const lineChart = (options: ChartOptions): string => {
  const plotWidth = width - margin.left - margin.right
  const plotHeight = height - margin.top - margin.bottom
  const legendColumns = 3
  const legendRows = Math.ceil(options.series.length / legendColumns)
  const totalHeight = height + 12 + legendRows * legendRowPx + 6
  const parts: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${totalHeight}" viewBox="0 0 ${width} ${totalHeight}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<style>text{font:11px sans-serif;fill:#333}.grid{stroke:#e4e4e4}.frame{fill:none;stroke:#999}.title{font:bold 13px sans-serif}</style>`,
    `<text x="${margin.left}" y="18" class="title">${escapeXml(options.title)}</text>`,
    ...gridAndTicks(options, plotWidth, plotHeight),
  ]
  options.series.forEach((series, index) => {
    parts.push(seriesPath(options, series, colorOf(index), plotWidth, plotHeight))
    const column = index % legendColumns
    const row = Math.floor(index / legendColumns)
    const x = margin.left + column * (plotWidth / legendColumns)
    const y = height + 12 + row * legendRowPx
    const dash = series.sparse === true ? ` stroke-dasharray="6 4"` : ""
    parts.push(
      `<line x1="${x}" y1="${y - 4}" x2="${x + 22}" y2="${y - 4}" stroke="${colorOf(index)}" stroke-width="2"${dash}/>`,
      `<text x="${x + 28}" y="${y}">${escapeXml(series.label)}</text>`,
    )
  })
  if (options.series.length === 0) {
    parts.push(
      `<text x="${margin.left + plotWidth / 2}" y="${margin.top + plotHeight / 2}" text-anchor="middle">no data</text>`,
    )
  }
  parts.push("</svg>")
  return parts.join("\n")
}
