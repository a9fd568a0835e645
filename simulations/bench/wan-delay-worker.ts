// bench:wan's delay forwarder as a process of its own, started in a network namespace
// (`ip netns exec <ns> node wan-delay-worker.ts`): see wan-delay.ts for what it does. Driven over
// IPC: {cmd:'route', route} (answered {type:'routed', port}), {cmd:'set', delayMs, maxQueuedBytes}
// ({type:'set'}), {cmd:'stats', resetPeak?} ({type:'stats', ...ForwarderStats}), {cmd:'stop'}.
import { DelayForwarder, type Route } from './wan-delay.ts'

type Command =
  | { cmd: 'route', route: Route }
  | { cmd: 'set', delayMs: number, maxQueuedBytes: number }
  | { cmd: 'stats', resetPeak?: boolean }
  | { cmd: 'stop' }

const forwarder = new DelayForwarder({ delayMs: 0, maxQueuedBytes: 4 * 1024 * 1024 })
process.send!({ type: 'ready' })

process.on('message', (command: Command) => {
  void (async () => {
    try {
      if (command.cmd === 'route') {
        process.send!({ type: 'routed', port: await forwarder.add(command.route) })
      } else if (command.cmd === 'set') {
        forwarder.set(command)
        process.send!({ type: 'set' })
      } else if (command.cmd === 'stats') {
        process.send!({ type: 'stats', ...forwarder.stats() })
        if (command.resetPeak === true) forwarder.resetPeak()
      } else if (command.cmd === 'stop') {
        await forwarder.close()
        process.send!({ type: 'stopped' }, () => process.exit(0))
      }
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message })
    }
  })()
})
