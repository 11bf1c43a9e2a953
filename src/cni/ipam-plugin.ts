/** The `tortie-ipam` CNI IPAM plugin entry point. Implementation lands with issue 6. */
export async function main(_argv: string[]): Promise<number> {
  process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', code: 999, msg: 'tortie-ipam: not implemented yet (issue 6)' }) + '\n');
  return 1;
}
