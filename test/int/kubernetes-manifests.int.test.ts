/**
 * The Kubernetes manifests validate offline against the Kubernetes API schemas (kubernetes-validate,
 * strict: an unknown or misspelt field fails), and the validator does catch a broken manifest.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { manifestsDirectory, validateManifests } from "../../scripts/kubernetes/validate-manifests.ts"

const directory = mkdtempSync(join(tmpdir(), "payments-manifests-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

describe("Kubernetes manifests", () => {
  it("validate against the Kubernetes schemas", () => {
    const result = validateManifests()
    expect(result.output).toMatch(/passed for resource statefulset\/payments/)
    expect(result).toMatchObject({ ok: true })
  }, 300_000)

  it("fail validation with a misspelt field", () => {
    const broken = join(directory, "broken.yaml")
    const text = readFileSync(join(manifestsDirectory, "payments.yaml"), "utf8")
    writeFileSync(broken, text.replace("terminationGracePeriodSeconds:", "terminationGracePeriod:"))
    const result = validateManifests([broken])
    expect(result.ok).toBe(false)
    expect(result.output).toMatch(/terminationGracePeriod/)
  }, 300_000)
})
