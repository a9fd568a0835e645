// Drives one URL with autocannon from its own process, so the load generator shares no heap or
// event loop with the benchmark that set the scene. Prints autocannon's result as one JSON line.
import autocannon from 'autocannon'

const [url, connections, seconds] = process.argv.slice(2)
const result = await autocannon({ url: url!, connections: Number(connections), duration: Number(seconds), headers: { 'accept-encoding': 'gzip' } })
process.stdout.write(JSON.stringify(result) + '\n')
