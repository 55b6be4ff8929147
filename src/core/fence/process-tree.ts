import {readdirSync, readFileSync} from 'node:fs'

/** Every process's children, by the parent's pid, as /proc shows them now. */
export function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name may hold spaces and parentheses; the fields after its last ')' are fixed.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(entry))
      children.set(ppid, list)
    } catch {}
  }
  return children
}

/** Kills a process and everything it started, so that a hung procedure leaves nothing running behind. */
export function killProcessTree(root: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  const children = childrenByParent()
  const victims: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    victims.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  for (const pid of victims) {
    try {
      process.kill(pid, signal)
    } catch {}
  }
}
