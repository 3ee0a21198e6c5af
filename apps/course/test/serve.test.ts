import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseServeArgs, ServeUsageError } from '../scripts/serve.mjs';
import { ensureBuilt } from './site.js';

const SERVE = fileURLToPath(new URL('../scripts/serve.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** This machine's first non-loopback IPv4 address, as another machine on its network would reach it. */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;

describe('serve.mjs options', () => {
  it('defaults to port 4321 on 127.0.0.1', () => {
    expect(parseServeArgs([], {})).toEqual({ port: 4321, host: '127.0.0.1' });
  });
  it('takes --port, --port=N and PORT, the argument winning', () => {
    expect(parseServeArgs(['--port', '8080'], {}).port).toBe(8080);
    expect(parseServeArgs(['--port=8081'], {}).port).toBe(8081);
    expect(parseServeArgs([], { PORT: '8082' }).port).toBe(8082);
    expect(parseServeArgs(['--port', '8083'], { PORT: '8082' }).port).toBe(8083);
  });
  it('listens on every interface with a bare --host, or on the address given', () => {
    expect(parseServeArgs(['--host'], {}).host).toBe('0.0.0.0');
    expect(parseServeArgs(['--host', '--port', '9000'], {})).toEqual({ port: 9000, host: '0.0.0.0' });
    expect(parseServeArgs(['--host', '192.168.1.5'], {}).host).toBe('192.168.1.5');
    expect(parseServeArgs([], { HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });
  it('refuses a bad port or an unknown option with the usage line', () => {
    expect(() => parseServeArgs(['--port', 'eighty'], {})).toThrow(ServeUsageError);
    expect(() => parseServeArgs(['--port', '70000'], {})).toThrow(/integer from 0 to 65535/);
    expect(() => parseServeArgs(['--prot', '80'], {})).toThrow(/unknown argument "--prot".*usage:/);
  });
});

describe('serve.mjs from the command line', () => {
  let child: ChildProcess | undefined;
  beforeAll(() => ensureBuilt());
  afterEach(() => {
    if (child?.pid && child.exitCode === null) child.kill('SIGTERM');
    child = undefined;
  });

  const freePort = () =>
    new Promise<number>((ok) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => ok(port));
      });
    });

  /** Starts a command and resolves with its first line of output. */
  function firstLine(cmd: string, args: string[], cwd: string): Promise<string> {
    return new Promise((ok, fail) => {
      child = spawn(cmd, args, { cwd, env: { ...process.env, PORT: '', HOST: '' } });
      let out = '';
      child.stdout?.on('data', (d) => {
        out += String(d);
        if (out.includes('\n')) ok(out.split('\n')[0]);
      });
      child.stderr?.on('data', (d) => {
        out += String(d);
      });
      child.on('exit', (code) => fail(new Error(`exited with ${code}: ${out}`)));
    });
  }

  it('serves on the --port it is given and says it is reachable from this machine only', async () => {
    const port = await freePort();
    const line = await firstLine(process.execPath, [SERVE, '--port', String(port)], ROOT);
    expect(line).toBe(
      `spf course: http://localhost:${port}/ (this machine only; --host to listen on every interface)`,
    );
    const res = await fetch(`http://127.0.0.1:${port}/labs/`);
    expect(res.status).toBe(200);
    if (outside) await expect(fetch(`http://${outside}:${port}/`)).rejects.toThrow();
  });

  it('with --host, listens on every interface', async () => {
    const port = await freePort();
    const line = await firstLine(process.execPath, [SERVE, '--host', '--port', String(port)], ROOT);
    expect(line).toMatch(new RegExp(`^spf course: http://localhost:${port}/`));
    expect(line).not.toContain('this machine only');
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    if (outside) {
      expect(line).toContain(`http://${outside}:${port}/`);
      expect((await fetch(`http://${outside}:${port}/`)).status).toBe(200);
    }
  });

  it('exits with the usage line on a bad option', async () => {
    await expect(firstLine(process.execPath, [SERVE, '--port', 'x'], ROOT)).rejects.toThrow(
      /exited with 2: spf course: the port must be an integer/,
    );
  });
});
