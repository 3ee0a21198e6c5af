import { transform } from 'sucrase';
import { StudentSyntaxError } from './lab-errors.js';

/**
 * Transpiles one student TypeScript file to JavaScript with sucrase: types are erased, imports stay ES
 * imports, and line numbers are preserved so that runtime errors point at the student's own lines. Type
 * errors are not reported (sucrase only parses); syntax errors throw {@link StudentSyntaxError}.
 */
export function transpileStudent(file: string, source: string): string {
  try {
    return transform(source, { transforms: ['typescript'], disableESTransforms: true, filePath: file }).code;
  } catch (err) {
    const e = err as { message?: string; loc?: { line: number; column: number } };
    const reason = String(e.message ?? err)
      .replace(/^Error transforming [^:]*: /, '')
      .replace(/\s*\(\d+:\d+\)\s*$/, '');
    throw new StudentSyntaxError(file, e.loc?.line ?? 1, (e.loc?.column ?? 0) + 1, reason);
  }
}
