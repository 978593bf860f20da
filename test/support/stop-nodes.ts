/** Runs with every test file: whatever node a failed test left running is killed when the file ends. */
import { afterAll } from "vitest"
import { killRunningNodes } from "./node-process.ts"

afterAll(killRunningNodes)
