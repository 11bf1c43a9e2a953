/** tortiectl entry point (calicoctl-compatible CLI). Implementation lands with issue 5. */
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write('tortiectl: not implemented yet (issue 5)\n');
  return 1;
}
