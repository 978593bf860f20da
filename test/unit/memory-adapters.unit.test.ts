import { layerMemory as journalMemory } from "../../persistence/memory/journal-memory.ts"
import { layerMemory as snapshotMemory } from "../../persistence/memory/snapshot-store-memory.ts"
import { journalContract } from "../contract/journal.contract.ts"
import { snapshotStoreContract } from "../contract/snapshot-store.contract.ts"

journalContract("memory", () => journalMemory())
snapshotStoreContract("memory", () => snapshotMemory())
