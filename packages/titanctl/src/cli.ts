/** titanctl entry point; replaced by the real CLI. */
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`titanctl: not built yet (${argv.join(' ')})\n`);
  return 1;
}
