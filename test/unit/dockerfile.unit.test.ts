/**
 * The container image builds what the node is built from: every folder and file of the build's
 * tsconfig is copied into the Dockerfile's build stage (a folder added to the build and not to the
 * image once broke the image).
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"

const root = new URL("../../", import.meta.url)
const build = JSON.parse(readFileSync(new URL("tsconfig.build.json", root), "utf8")) as { include: Array<string> }
const dockerfile = readFileSync(new URL("deploy/Dockerfile", root), "utf8")
const copied = new Set(
  dockerfile
    .split("\n")
    .filter((line) => line.startsWith("COPY ") && !line.includes("--from"))
    .flatMap((line) => line.slice("COPY ".length).trim().split(/\s+/).slice(0, -1)),
)

describe("the Dockerfile", () => {
  it.each(build.include)("copies %s into the build stage", (path) => {
    expect(copied.has(path)).toBe(true)
  })
})
