import {UsageError} from '../errors/index.js'

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/

/** Store paths become file names and URL segments: only plain names, never `..` or a slash of their own. */
export function assertStorePath(path: string): string[] {
  const segments = path.split('/')
  for (const segment of segments)
    if (!SEGMENT.test(segment)) throw new UsageError(`invalid store path ${JSON.stringify(path)}: segment ${JSON.stringify(segment)} must be letters, digits, '.', '_' or '-'`, {culprit: path})
  return segments
}

/** Node and procedure names are single store-path segments. */
export function isValidName(name: string): boolean {
  return SEGMENT.test(name)
}
