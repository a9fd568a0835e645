// Imports the given paths into a fresh store in its own process, so its peak RSS is the import's alone.
// Prints one JSON line: seconds, files, bytes, stored, rejected, peakRssMb.
import { importFiles } from '../../node/dicom/file-import.ts'
import { StudyStore } from '../../node/store/study-store.ts'

const [dataDir, ...paths] = process.argv.slice(2)
const store = new StudyStore({ dir: dataDir! })
await store.start()
const started = process.hrtime.bigint()
const summary = await importFiles(paths, { store })
const seconds = Number(process.hrtime.bigint() - started) / 1e9
await store.stop()
process.stdout.write(JSON.stringify({
  seconds,
  files: summary.files,
  bytes: summary.bytes,
  stored: summary.stored,
  rejected: summary.rejected.length,
  peakRssMb: process.resourceUsage().maxRSS / 1024
}) + '\n')
