// Imports the transfer benchmark's studies into a node's store before the node starts, in a process
// of its own (so the node's peak RSS is not the import's). Prints one JSON line: files, bytes,
// stored, rejected (with codes).
import { importFiles } from '../../node/dicom/file-import.ts'
import { StudyStore } from '../../node/store/study-store.ts'

const [dataDir, ...paths] = process.argv.slice(2)
const store = new StudyStore({ dir: dataDir! })
await store.start()
try {
  const summary = await importFiles(paths, { store })
  process.stdout.write(JSON.stringify({ files: summary.files, bytes: summary.bytes, stored: summary.stored, rejected: summary.rejected }) + '\n')
} finally {
  await store.stop()
}
