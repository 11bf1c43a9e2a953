import type { CliIO } from './io';
export async function runNode(_binary: string, _argv: readonly string[], _io: CliIO): Promise<number> { return 1; }
