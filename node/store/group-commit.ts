/*
 * Group commit: requests that arrive while a commit is under way wait and are then committed
 * together, in one go (one directory fsync per directory, one synced index batch), and every
 * waiter is answered once that one commit is durable. Concurrent associations and STOW requests
 * share the cost of durability instead of queueing one fsync chain each. A lone request is not
 * held back: it is committed on the next turn of the event loop, with whatever joined it by then.
 */

export interface GroupCommitInit<Item, Result> {
  /**
   * Commits one group; answers each item in order with its result or the error that failed it.
   * A throw fails every item of the group.
   */
  commit: (items: Item[]) => Promise<Array<Result | GroupItemFailure>>
  /** at most this many items go into one group */
  maxItems: number
  /**
   * Keys (SOP Instance UIDs, say) an item must not share with another item of its group: the group
   * ends before an item sharing one, which then leads the next group (later items wait behind it)
   */
  keysOf?: (item: Item) => Iterable<string>
}

/** An item of a group that failed on its own (the others of its group may have committed). */
export class GroupItemFailure {
  readonly error: unknown
  constructor (error: unknown) { this.error = error }
}

interface Waiter<Item, Result> {
  item: Item
  resolve: (result: Result) => void
  reject: (err: unknown) => void
}

export class GroupCommitter<Item, Result> {
  private readonly init: GroupCommitInit<Item, Result>
  private pending: Array<Waiter<Item, Result>> = []
  private running = false
  private current = 0
  /** groups committed and items they held, for tests and metrics */
  readonly stats = { groups: 0, items: 0, largestGroup: 0 }

  constructor (init: GroupCommitInit<Item, Result>) {
    this.init = init
  }

  /** Items waiting for a group to start (not counting the group being committed). */
  get waiting (): number {
    return this.pending.length
  }

  /** Items of the group being committed (0 when none is). */
  get committing (): number {
    return this.current
  }

  /** Resolves once `item` is committed (durable), with its own result. */
  async submit (item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ item, resolve, reject })
      this.schedule()
    })
  }

  private schedule (): void {
    if (this.running) return
    this.running = true
    // One turn of the event loop lets requests answered in the same tick (a STOW body's last parts,
    // instances finishing together) join the first group.
    setImmediate(() => { void this.drain() })
  }

  private async drain (): Promise<void> {
    while (this.pending.length > 0) {
      const group = this.take()
      this.current = group.length
      this.stats.groups++
      this.stats.items += group.length
      this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length)
      try {
        const results = await this.init.commit(group.map((w) => w.item))
        for (const [i, w] of group.entries()) {
          const result = results[i]
          if (result instanceof GroupItemFailure) w.reject(result.error)
          else w.resolve(result as Result)
        }
      } catch (err) {
        for (const w of group) w.reject(err)
      }
    }
    this.current = 0
    this.running = false
  }

  /** The next group: pending items in order, up to the first that would not fit; the rest keep their order. */
  private take (): Array<Waiter<Item, Result>> {
    const keys = new Set<string>()
    let n = 0
    for (const w of this.pending) {
      if (n >= this.init.maxItems) break
      const own = [...(this.init.keysOf?.(w.item) ?? [])]
      if (n > 0 && own.some((k) => keys.has(k))) break
      for (const k of own) keys.add(k)
      n++
    }
    return this.pending.splice(0, n)
  }
}
