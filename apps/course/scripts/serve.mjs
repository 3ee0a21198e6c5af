#!/usr/bin/env node
// Serves the built course (dist/) and prints the address. A plain static server started directly with node,
// so whoever started it can stop it by its process id.
//
//   node scripts/serve.mjs [--port N] [--host [ADDRESS]]
//
// --port N (or PORT=N): the port, 4321 by default; 0 picks a free one.
// --host ADDRESS (or HOST=ADDRESS): the address to listen on, 127.0.0.1 (this machine only) by default;
//   --host alone listens on every interface (0.0.0.0), to reach the site from outside a VM or container.
// `npm start -- --port 8080 --host` passes these through scripts/bootstrap.mjs.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { networkInterfaces } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.pf_meta': 'application/octet-stream',
  '.pf_fragment': 'application/octet-stream',
  '.pf_index': 'application/octet-stream',
  '.pagefind': 'application/octet-stream',
};

/** Starts the server; resolves with it once listening. `port` 0 picks a free port. */
export function serve({
  dir = fileURLToPath(new URL('../dist', import.meta.url)),
  port = 4321,
  host = '127.0.0.1',
} = {}) {
  const rootDir = resolve(dir);
  if (!existsSync(join(rootDir, 'index.html'))) {
    throw new Error(`${rootDir} has no index.html: build the course first (pnpm --filter @spf/course build)`);
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let file = normalize(join(rootDir, decodeURIComponent(url.pathname)));
    if (!file.startsWith(rootDir)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    let status = 200;
    if (!existsSync(file)) {
      status = 404;
      file = join(rootDir, '404.html');
      if (!existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
    }
    res.writeHead(status, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server));
  });
}

/** Thrown for a command line serve.mjs cannot use; the message says what to pass instead. */
export class ServeUsageError extends Error {
  name = 'ServeUsageError';
}

const USAGE = 'usage: node scripts/serve.mjs [--port N] [--host [ADDRESS]]  (or PORT=N, HOST=ADDRESS)';

/**
 * The port and host from the command line and the environment (arguments win). Throws ServeUsageError for
 * an unknown option or a port that is not an integer in 0..65535.
 */
export function parseServeArgs(argv, env = {}) {
  let port = env.PORT;
  let host = env.HOST;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [name, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const next = () =>
      inline !== undefined
        ? inline
        : argv[i + 1] !== undefined && !argv[i + 1].startsWith('-')
          ? argv[++i]
          : undefined;
    if (name === '--port' || name === '-p') {
      port = next();
      if (port === undefined) throw new ServeUsageError(`--port needs a number. ${USAGE}`);
    } else if (name === '--host') {
      host = next() ?? '0.0.0.0';
    } else if (name === '--') {
      // pnpm and npm may pass the separator through
    } else {
      throw new ServeUsageError(`unknown argument ${JSON.stringify(a)}. ${USAGE}`);
    }
  }
  const p = port === undefined || port === '' ? 4321 : Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) {
    throw new ServeUsageError(
      `the port must be an integer from 0 to 65535, not ${JSON.stringify(port)}. ${USAGE}`,
    );
  }
  return { port: p, host: host === undefined || host === '' ? '127.0.0.1' : host };
}

/** The addresses to print for a server listening on `host`. */
function addresses(host, port) {
  const all = host === '0.0.0.0' || host === '::';
  const local = all || host === '127.0.0.1' || host === '::1' || host === 'localhost';
  const out = local ? [`http://localhost:${port}/`] : [];
  if (all) {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        if (!a.internal && a.family === 'IPv4') out.push(`http://${a.address}:${port}/`);
      }
    }
  } else if (!local) {
    out.push(`http://${host.includes(':') ? `[${host}]` : host}:${port}/`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let options;
  try {
    options = parseServeArgs(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`spf course: ${err.message}`);
    process.exit(2);
  }
  serve(options).then(
    (s) => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : options.port;
      const where =
        options.host === '127.0.0.1' ? ' (this machine only; --host to listen on every interface)' : '';
      console.log(`spf course: ${addresses(options.host, port).join('  ')}${where}`);
      const stop = () => s.close(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    },
    (err) => {
      console.error(`spf course: cannot serve: ${err.message}`);
      process.exit(1);
    },
  );
}
