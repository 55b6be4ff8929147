import {StoreDataError} from '../errors/index.js'
import {MAX_PROCEDURE_BYTES} from '../fence/procedure-run.js'

/** The seed's `fencing/<name>` document: the shell command, base64-encoded. */
export interface FencingDocument {
  base64code: string
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Why the kernel would refuse to run `command` as a procedure, or undefined. */
export function procedureSizeProblem(command: string): string | undefined {
  const bytes = Buffer.byteLength(command, 'utf8')
  if (bytes <= MAX_PROCEDURE_BYTES) return undefined
  return `is ${bytes} bytes: a procedure runs as one argument of sh -c, which Linux limits (${MAX_PROCEDURE_BYTES} bytes at most); put the commands in a script (owned by root, not writable by others) and call it`
}

export function encodeProcedure(command: string): FencingDocument {
  return {base64code: Buffer.from(command, 'utf8').toString('base64')}
}

/** Node's base64 decoder skips what it does not understand; a procedure that does not round-trip is refused instead. */
export function decodeProcedure(storeKey: string, data: Record<string, unknown>): string {
  const code = data.base64code
  if (typeof code !== 'string') throw new StoreDataError(storeKey, 'has no base64code string')
  const compact = code.replace(/\s+/g, '')
  if (compact.length === 0) throw new StoreDataError(storeKey, 'base64code is empty')
  if (!BASE64.test(compact) || compact.length % 4 !== 0) throw new StoreDataError(storeKey, 'base64code is not valid base64')
  const command = Buffer.from(compact, 'base64').toString('utf8')
  if (Buffer.from(command, 'utf8').toString('base64') !== compact) throw new StoreDataError(storeKey, 'base64code does not decode to UTF-8 text')
  if (command.includes('\u0000')) throw new StoreDataError(storeKey, 'the decoded command contains a NUL byte')
  const tooLong = procedureSizeProblem(command)
  if (tooLong) throw new StoreDataError(storeKey, `the decoded command ${tooLong}`)
  return command
}
