import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The aws-mode tests need Kafka, the DynamoDB API server and Redis: the setup starts whichever
    // is not running yet and stops, at the end, what it started.
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/support/stop-nodes.ts"],
    pool: "forks",
    // Two cores serve the test workers, the node processes under test and the local stack's JVM.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 180_000,
    // `.ci/run` prints its totals from the JSON report.
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
  },
})
