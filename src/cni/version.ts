/**
 * The CNI versions tortie speaks, in a module that imports nothing: the launchers answer VERSION
 * from it (and the installed shell wrappers from its list) before any of the plugin is loaded,
 * since runtimes call VERSION on every plugin for every command.
 */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;

export function versionResult(cniVersion = '1.0.0'): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/** The VERSION answer for what was on stdin (a config with cniVersion, or nothing). */
export function versionAnswer(stdin: string): string {
  let v = '1.0.0';
  try { v = (JSON.parse(stdin) as { cniVersion?: string }).cniVersion || v; } catch { /* VERSION needs no config */ }
  return JSON.stringify(versionResult(v)) + '\n';
}
