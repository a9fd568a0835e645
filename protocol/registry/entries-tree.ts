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

/*
 * The leaves of a whole directory are hashed from their RFC 8785 bytes written straight into one
 * buffer, field by field in sorted key order: the same bytes as canonicalInstitution's text (every
 * string but the free texts matches an ASCII pattern with nothing to escape; names and reasons go
 * through JSON.stringify), without a string per leaf: building 10,000 texts made ~40 MB of
 * short-lived strings, which is what a verifier's peak memory was made of.
 */
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1')
const DEPARTMENTS = latin1('{"departments":[')
const CODE_FIRST = latin1('{"code":"')
const CODE_NEXT = latin1(',{"code":"')
const NAME = latin1('","name":')
const CLOSE = latin1('}')
const KIND = latin1('],"kind":"')
const NODES = latin1(',"nodes":[')
const ADDRESSES = latin1('{"addresses":[')
const ADDRESS_FIRST = latin1('"')
const ADDRESS_NEXT = latin1(',"')
const QUOTE = latin1('"')
const NOT_AFTER = latin1('],"notAfter":"')
const NOT_BEFORE_AFTER_TIME = latin1('","notBefore":"')
const NOT_BEFORE = latin1('],"notBefore":"')
const PEER_ID = latin1('","peerId":"')
const PUBLIC_KEY = latin1('","publicKey":"')
const REVOKED = latin1('","revoked":{"reason":')
const SINCE = latin1(',"since":"')
const REVOKED_END_STATUS = latin1('"},"status":"')
const STATUS = latin1('","status":"')
const NODE_END = latin1('"}')
const COMMA = latin1(',')
const STATUS_OBJECT = latin1('],"status":{')
const REASON = latin1('"reason":')
const SINCE_FIRST = latin1('"since":"')
const STATE = latin1('","state":"')
const URA = latin1('"},"ura":"')
const END = latin1('"}')

let out = Buffer.alloc(64 * 1024)
let at = 0

function room (n: number): void {
  if (at + n <= out.length) return
  const bigger = Buffer.alloc(2 * (at + n))
  out.copy(bigger, 0, 0, at)
  out = bigger
}
function emit (bytes: Buffer): void {
  room(bytes.length)
  out.set(bytes, at)
  at += bytes.length
}
/** A string the schema holds to ASCII with nothing to escape (a URA, key, time, address, code or enum). */
function ascii (s: string): void {
  room(s.length)
  at += out.write(s, at, 'latin1')
}
/** A free text (name, reason); RangeError if it is not well-formed UTF-16 (the caller falls back). */
function text (s: string): void {
  if (!s.isWellFormed()) throw new RangeError('not well-formed')
  const json = JSON.stringify(s)
  room(3 * json.length)
  at += out.write(json, at, 'utf8')
}

function writeNode (n: Institution['nodes'][number]): void {
  emit(ADDRESSES)
  for (let a = 0; a < n.addresses.length; a++) {
    emit(a === 0 ? ADDRESS_FIRST : ADDRESS_NEXT)
    ascii(n.addresses[a]!)
    emit(QUOTE)
  }
  if (n.notAfter !== undefined) {
    emit(NOT_AFTER)
    ascii(n.notAfter)
    emit(NOT_BEFORE_AFTER_TIME)
  } else {
    emit(NOT_BEFORE)
  }
  ascii(n.notBefore)
  emit(PEER_ID)
  ascii(n.peerId)
  emit(PUBLIC_KEY)
  ascii(n.publicKey)
  if (n.revoked !== undefined) {
    emit(REVOKED)
    text(n.revoked.reason)
    emit(SINCE)
    ascii(n.revoked.since)
    emit(REVOKED_END_STATUS)
  } else {
    emit(STATUS)
  }
  ascii(n.status)
  emit(NODE_END)
}

/** 0x00 || the canonical bytes of `inst` into `out[0..at)`. */
function writeLeaf (inst: Institution): void {
  at = 0
  room(1)
  out[at++] = 0
  emit(DEPARTMENTS)
  for (let d = 0; d < inst.departments.length; d++) {
    const dep = inst.departments[d]!
    emit(d === 0 ? CODE_FIRST : CODE_NEXT)
    ascii(dep.code)
    emit(NAME)
    text(dep.name)
    emit(CLOSE)
  }
  emit(KIND)
  ascii(inst.kind)
  emit(NAME)
  text(inst.name)
  emit(NODES)
  for (let n = 0; n < inst.nodes.length; n++) {
    if (n > 0) emit(COMMA)
    writeNode(inst.nodes[n]!)
  }
  emit(STATUS_OBJECT)
  if (inst.status.reason !== undefined) {
    emit(REASON)
    text(inst.status.reason)
    emit(SINCE)
  } else {
    emit(SINCE_FIRST)
  }
  ascii(inst.status.since)
  emit(STATE)
  ascii(inst.status.state)
  emit(URA)
  ascii(inst.ura)
  emit(END)
}

/** The leaf of one institution of many: hashed from its bytes as writeLeaf puts them (the same leaf as entryLeaf's). */
export function entryLeafOfMany (inst: Institution): EntryLeaf {
  try {
    writeLeaf(inst)
  } catch (err) {
    // A free text that is not well-formed UTF-16: the reference canonicaliser decides (or throws).
    if (!(err instanceof RangeError)) throw err
    return entryLeaf(inst)
  }
  return { ura: inst.ura, hash: hash('sha256', new Uint8Array(out.buffer, out.byteOffset, at), 'binary') }
}

/** The leaves of many institutions. */
export function entryLeaves (institutions: readonly Institution[]): EntryLeaf[] {
  const leaves = new Array<EntryLeaf>(institutions.length)
  for (let i = 0; i < institutions.length; i++) leaves[i] = entryLeafOfMany(institutions[i]!)
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
