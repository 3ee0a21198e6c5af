/** A file system, device or file was configured with a value that cannot work (the message says which). */
export class FileBackedConfigError extends Error {
  override name = 'FileBackedConfigError';
}
