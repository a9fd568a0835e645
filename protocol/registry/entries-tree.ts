import { hash } from 'node:crypto'
import { canonicalText } from '../canonical.ts'
import { canonicalInstitution, type Institution } from './documents.ts'

/*
 * The directory's entries under one hash (a directory's header signs `entries.root`): a sparse
 * Merkle trie with ten branches a level over the eight digits of the URA.
 *
 *   leaf   = SHA-256(0x00 || RFC 8785 JSON of the institution)       (the URA is inside it)
 *   branch = SHA-256(0x01 || h(child 0) || ... || h(child 9))       (an absent child: 32 zero bytes)
 *   a subtree holding one institution is that institution's leaf; an empty tree is 32 zero bytes.
 *
 * Where an institution sits follows from its URA alone, so the root does not depend on the order
 * entries arrive in, and changing k institutions rehashes at most 8 branches each: a node holding
 * version N checks a delta to N+1 in time proportional to the change. Trees are immutable; `with`
 * copies only the paths it changes, so a refused delta leaves the held tree as it was.
 */

const URA_DIGITS = 8
const BRANCHES = 10
/*
 * Digests are kept as 32-character latin1 strings (one character a byte): node:crypto returns a
 * string several times cheaper than a Buffer, and 10,000 of them take a third of the memory.
 */
const EMPTY = '\0'.repeat(32)

export interface EntryLeaf {
  readonly ura: string
  /** SHA-256 of the leaf, as a latin1 string */
  readonly hash: string
}

interface Branch {
  readonly children: ReadonlyArray<EntryNode | undefined>
  /** leaves below: always 2 or more (one leaf is the leaf itself) */
  readonly count: number
  hash: string | undefined
}

type EntryNode = EntryLeaf | Branch

const isLeaf = (n: EntryNode): n is EntryLeaf => 'ura' in n
const digit = (ura: string, depth: number): number => ura.charCodeAt(depth) - 48
const countOf = (n: EntryNode | undefined): number => n === undefined ? 0 : isLeaf(n) ? 1 : n.count

function leafText (inst: Institution): string {
  try {
    return canonicalInstitution(inst)
  } catch (err) {
    // A name that is not well-formed UTF-16: the reference canonicaliser decides (or throws).
    if (!(err instanceof RangeError)) throw err
    return canonicalText(inst)
  }
}

/** The leaf of one institution; its canonical JSON never holds a raw NUL, so '\0' + text is 0x00 || bytes. */
export function entryLeaf (inst: Institution): EntryLeaf {
  return { ura: inst.ura, hash: hash('sha256', '\0' + leafText(inst), 'binary') }
}

// One buffer the leaves are encoded into in turn (grown for a larger entry): no buffer per leaf.
// Its first byte stays 0x00, the leaf's prefix.
let scratch = Buffer.alloc(0)

/** The leaves of many institutions: each text encoded to UTF-8 into the scratch buffer and hashed from there. */
export function entryLeaves (institutions: readonly Institution[]): EntryLeaf[] {
  const leaves = new Array<EntryLeaf>(institutions.length)
  for (let i = 0; i < institutions.length; i++) {
    const inst = institutions[i]!
    const text = leafText(inst)
    // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (1 + 3 * text.length > scratch.length) scratch = Buffer.alloc(2 * (1 + 3 * text.length))
    const written = scratch.write(text, 1, 'utf8')
    leaves[i] = { ura: inst.ura, hash: hash('sha256', new Uint8Array(scratch.buffer, scratch.byteOffset, 1 + written), 'binary') }
  }
  return leaves
}

function hashOf (node: EntryNode | undefined): string {
  if (node === undefined) return EMPTY
  if (isLeaf(node)) return node.hash
  if (node.hash === undefined) {
    let input = '\x01'
    for (let c = 0; c < BRANCHES; c++) input += hashOf(node.children[c])
    node.hash = hash('sha256', Buffer.from(input, 'latin1'), 'binary')
  }
  return node.hash
}

/** `leaves[lo..hi)`, strictly ascending by URA, all sharing their first `depth` digits. */
function build (leaves: readonly EntryLeaf[], lo: number, hi: number, depth: number): EntryNode | undefined {
  if (hi === lo) return undefined
  if (hi - lo === 1) return leaves[lo]
  const children = new Array<EntryNode | undefined>(BRANCHES).fill(undefined)
  let i = lo
  while (i < hi) {
    const d = digit(leaves[i]!.ura, depth)
    let j = i + 1
    while (j < hi && digit(leaves[j]!.ura, depth) === d) j++
    children[d] = build(leaves, i, j, depth + 1)
    i = j
  }
  return { children, count: hi - lo, hash: undefined }
}

function put (node: EntryNode | undefined, depth: number, leaf: EntryLeaf): EntryNode {
  if (node === undefined) return leaf
  if (isLeaf(node)) {
    if (node.ura === leaf.ura) return leaf
    const children = new Array<EntryNode | undefined>(BRANCHES).fill(undefined)
    children[digit(node.ura, depth)] = node
    const d = digit(leaf.ura, depth)
    children[d] = put(children[d], depth + 1, leaf)
    return { children, count: 2, hash: undefined }
  }
  const children = node.children.slice()
  const d = digit(leaf.ura, depth)
  const before = children[d]
  children[d] = put(before, depth + 1, leaf)
  return { children, count: node.count - countOf(before) + countOf(children[d]), hash: undefined }
}

/** `node` without `ura` (which it holds: the caller checked). */
function remove (node: EntryNode, depth: number, ura: string): EntryNode | undefined {
  if (isLeaf(node)) return undefined
  const children = node.children.slice()
  const d = digit(ura, depth)
  children[d] = remove(children[d]!, depth + 1, ura)
  if (node.count === 2) return children.find((c) => c !== undefined)
  return { children, count: node.count - 1, hash: undefined }
}

function find (node: EntryNode | undefined, ura: string): EntryLeaf | undefined {
  for (let depth = 0; node !== undefined; depth++) {
    if (isLeaf(node)) return node.ura === ura ? node : undefined
    if (depth >= URA_DIGITS) return undefined
    node = node.children[digit(ura, depth)]
  }
  return undefined
}

export class EntriesTree {
  private readonly top: EntryNode | undefined
  private constructor (top: EntryNode | undefined) { this.top = top }

  /** From leaves in strictly ascending URA order (the caller checks the order). */
  static fromSorted (leaves: readonly EntryLeaf[]): EntriesTree {
    return new EntriesTree(build(leaves, 0, leaves.length, 0))
  }

  get count (): number { return countOf(this.top) }

  /** hex of the root hash */
  get root (): string { return Buffer.from(hashOf(this.top), 'latin1').toString('hex') }

  get (ura: string): EntryLeaf | undefined { return find(this.top, ura) }

  /** A new tree with `upserts` put in and `removals` (URAs held) taken out; this one is unchanged. */
  with (upserts: readonly EntryLeaf[], removals: readonly string[] = []): EntriesTree {
    let top = this.top
    for (const ura of removals) {
      if (find(top, ura) === undefined) throw new RangeError(`URA ${ura} is not in the tree`)
      top = remove(top!, 0, ura)
    }
    for (const leaf of upserts) top = put(top, 0, leaf)
    return new EntriesTree(top)
  }
}

/** The root and count of `institutions` (strictly ascending by URA), for a header or a check. */
export function entriesOf (institutions: readonly Institution[]): { tree: EntriesTree, entries: { count: number, root: string } } {
  const tree = EntriesTree.fromSorted(entryLeaves(institutions))
  return { tree, entries: { count: tree.count, root: tree.root } }
}
