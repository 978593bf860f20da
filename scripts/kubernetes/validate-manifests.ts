/**
 * Validates the Kubernetes manifests in `deploy/kubernetes/` offline against the Kubernetes API
 * schemas, with the PyPI package kubernetes-validate installed into a virtual environment under the
 * stack directory (`.stack/`, once; later runs reuse it). `npm run k8s:validate` runs it; the test
 * suite calls `validateManifests`.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { stackDirectory } from "../local-stack/process-control.ts"

/** The schema version the manifests are written for: EKS's current line. */
export const kubernetesVersion = "1.33"
const validatorVersion = "1.37.0"

const repositoryRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)))
export const manifestsDirectory = join(repositoryRoot, "deploy", "kubernetes")

const run = (command: string, args: ReadonlyArray<string>) => {
  const result = spawnSync(command, [...args], { encoding: "utf8", timeout: 300_000 })
  if (result.error !== undefined) throw result.error
  return result
}

/** The validator's executable, installing it first when the virtual environment lacks it. */
const validatorPath = (): string => {
  const environment = join(stackDirectory(), `kubernetes-validate-${validatorVersion}`)
  const executable = join(environment, "bin", "kubernetes-validate")
  if (existsSync(executable)) return executable
  const created = run("python3", ["-m", "venv", environment])
  if (created.status !== 0) throw new Error(`python3 -m venv failed: ${created.stderr}`)
  const installed = run(join(environment, "bin", "pip"), [
    "install",
    "--quiet",
    "--disable-pip-version-check",
    `kubernetes-validate==${validatorVersion}`,
  ])
  if (installed.status !== 0) throw new Error(`installing kubernetes-validate failed: ${installed.stderr}`)
  return executable
}

export interface ValidationResult {
  readonly ok: boolean
  readonly output: string
}

/** Validates files (every manifest of `deploy/kubernetes/` by default), strictly: unknown fields are errors. */
export const validateManifests = (
  files: ReadonlyArray<string> = readdirSync(manifestsDirectory)
    .filter((name) => /\.ya?ml$/.test(name))
    .map((name) => join(manifestsDirectory, name)),
): ValidationResult => {
  const result = run(validatorPath(), ["--strict", "--kubernetes-version", kubernetesVersion, ...files])
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const result = validateManifests()
  console.log(result.output.trim())
  process.exit(result.ok ? 0 : 1)
}
