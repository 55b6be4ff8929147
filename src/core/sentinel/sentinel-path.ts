import {posix} from 'node:path'

const PATH_MAX = 4095

/**
 * Why a path cannot be a sentinel, or undefined when it can. Sentinel paths reach the shell (COMET_SENTINEL)
 * and the seed's `<node>:<mode>:<path>` keys, so they must be absolute, normalised and free of control characters.
 */
export function sentinelPathProblem(path: string): string | undefined {
  // Every key of a large node passes through here (200 000 on a server with 100 000 sentinels), and nearly all
  // are fine: one scan accepts them, and only a suspect path pays for the explanation.
  if (isPlainSentinelPath(path)) return undefined
  if (path.length === 0) return 'is empty'
  if (!path.startsWith('/')) return 'must be an absolute path'
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'contains a control character'
  if (path.split('/').some((part) => part === '..')) return "must not contain '..'"
  if (path === '/' || path.endsWith('/')) return 'must name a file, not a directory'
  if (posix.normalize(path) !== path) return `is not normalised (did you mean ${posix.normalize(path)}?)`
  if (path.length > PATH_MAX) return 'is longer than PATH_MAX'
  return undefined
}

const SLASH = 0x2f
const DOT = 0x2e

/** Absolute, no control character, no empty, `.` or `..` component, no trailing slash, within PATH_MAX. */
function isPlainSentinelPath(path: string): boolean {
  const length = path.length
  if (length < 2 || length > PATH_MAX || path.charCodeAt(0) !== SLASH || path.charCodeAt(length - 1) === SLASH) return false
  let componentStart = 1
  for (let index = 1; index <= length; index++) {
    const code = index < length ? path.charCodeAt(index) : SLASH
    if (code < 0x20 || code === 0x7f) return false
    if (code !== SLASH) continue
    const componentLength = index - componentStart
    if (componentLength === 0) return false
    if (path.charCodeAt(componentStart) === DOT && (componentLength === 1 || (componentLength === 2 && path.charCodeAt(componentStart + 1) === DOT))) return false
    componentStart = index + 1
  }
  return true
}
