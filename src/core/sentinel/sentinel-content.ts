import {randomBytes} from 'node:crypto'
import {extname} from 'node:path'

/** What a file of each type starts with, and a size typical of one, so that a sentinel looks worth encrypting. */
const LOOKS: Record<string, {header: Buffer; size: number}> = {
  '.pdf': {header: Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), size: 48 * 1024},
  '.docx': {header: Buffer.from('504b0304140006000800', 'hex'), size: 24 * 1024},
  '.xlsx': {header: Buffer.from('504b0304140006000800', 'hex'), size: 20 * 1024},
  '.pptx': {header: Buffer.from('504b0304140006000800', 'hex'), size: 64 * 1024},
  '.odt': {header: Buffer.from('504b0304140000080000', 'hex'), size: 16 * 1024},
  '.ods': {header: Buffer.from('504b0304140000080000', 'hex'), size: 16 * 1024},
  '.zip': {header: Buffer.from('504b0304', 'hex'), size: 64 * 1024},
  '.doc': {header: Buffer.from('d0cf11e0a1b11ae1', 'hex'), size: 32 * 1024},
  '.xls': {header: Buffer.from('d0cf11e0a1b11ae1', 'hex'), size: 32 * 1024},
  '.db': {header: Buffer.from('SQLite format 3\0', 'latin1'), size: 64 * 1024},
  '.sqlite': {header: Buffer.from('SQLite format 3\0', 'latin1'), size: 64 * 1024},
  '.sql': {header: Buffer.from('-- PostgreSQL database dump\n\n', 'utf8'), size: 16 * 1024},
  '.jpg': {header: Buffer.from('ffd8ffe000104a464946', 'hex'), size: 96 * 1024},
  '.png': {header: Buffer.from('89504e470d0a1a0a', 'hex'), size: 64 * 1024},
  '.bak': {header: Buffer.alloc(0), size: 128 * 1024},
}

const TEXT = new Set(['.txt', '.csv', '.md', '.log', '.sql', '.json', '.xml', '.yaml'])

export const DEFAULT_SENTINEL_SIZE = 4096

/** Random content with the header and typical size of the path's file type (4 KiB of random bytes otherwise). */
export function sentinelContent(path: string): Buffer {
  const extension = extname(path).toLowerCase()
  const look = LOOKS[extension]
  const size = look?.size ?? DEFAULT_SENTINEL_SIZE
  const header = look?.header ?? Buffer.alloc(0)
  const body = TEXT.has(extension) ? Buffer.from(randomBytes(Math.ceil((size - header.length) * 0.75)).toString('base64').replace(/(.{76})/g, '$1\n'), 'utf8') : randomBytes(size - header.length)
  return Buffer.concat([header, body]).subarray(0, Math.max(size, header.length))
}
