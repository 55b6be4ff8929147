import chalk from 'chalk'

/** A plain aligned table; colour only where the terminal takes it (chalk decides). */
export function table(headers: string[], rows: string[][]): string {
  const visible = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '')
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => visible(row[column] ?? '').length)))
  const line = (cells: string[]) => cells.map((cell, column) => cell + ' '.repeat(widths[column] - visible(cell).length)).join('  ').trimEnd()
  return [chalk.bold(line(headers)), ...rows.map(line)].join('\n')
}

export function verdictColour(verdict: string): string {
  switch (verdict) {
    case 'intact':
    case 'found':
    case 'created':
    case 'recorded':
      return chalk.green(verdict)
    case 'tampered':
    case 'failed':
      return chalk.red(verdict)
    default:
      return chalk.yellow(verdict)
  }
}

/** Labels and their values, the labels aligned. */
export function fields(rows: Array<[string, string]>): string {
  const width = Math.max(0, ...rows.map(([label]) => label.length))
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')
}
