/**
 * "1 entry", "2 entries": a count with its noun, for messages people read. `many` defaults to
 * `one` + "s"; pass it for irregular plurals.
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
