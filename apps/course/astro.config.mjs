// @ts-check
import starlight from '@astrojs/starlight';
import { defineConfig } from 'astro/config';

const packages = [
  'machine',
  'pagetable',
  'locks',
  'vma',
  'fault-classic',
  'fault-spec',
  'file-backed',
  'kernel',
  'bench',
  'labs',
];

export default defineConfig({
  site: 'http://localhost:4321',
  integrations: [
    starlight({
      title: 'spf course',
      description: 'The Linux page-fault path, rebuilt on a simulated SMP machine, measured and taught.',
      favicon: '/favicon.svg',
      // Every page starts with what runs today and what is planned (src/components/ProjectStatus.astro).
      components: { MarkdownContent: './src/components/MarkdownContent.astro' },
      sidebar: [
        { label: 'The story', link: '/' },
        { label: 'Playground', link: '/playground/' },
        { label: 'Contributing a patch', link: '/contributing/' },
        {
          label: 'Packages',
          // Every package but labs, which the Labs section covers.
          items: packages
            .filter((p) => p !== 'labs')
            .map((p) => ({
              label: `@spf/${p}`,
              link: `/packages/${p}/`,
            })),
        },
        {
          label: 'Labs',
          items: [
            { label: 'All labs and your progress', link: '/labs/' },
            { label: 'Lab 1: walk the page tables', link: '/labs/lab1/' },
            { label: 'Lab 2: seqcount and rwsem', link: '/labs/lab2/' },
            { label: 'Lab 3: the classic fault', link: '/labs/lab3/' },
            { label: 'Lab 4: the speculative fault', link: '/labs/lab4/' },
            { label: 'Lab 5: per-VMA locks', link: '/labs/lab5/' },
            { label: 'Lab 6: file faults and the retry', link: '/labs/lab6/' },
            { label: 'Lab 7: make it scale', link: '/labs/lab7/' },
            { label: 'For instructors: hidden tests', link: '/labs/instructors/' },
          ],
        },
        {
          label: 'Benchmarks',
          items: [
            { label: 'The six questions, answered', link: '/bench/six-questions/' },
            ...['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8'].map((e) => ({
              label: `${e.toUpperCase()}`,
              link: `/bench/${e}/`,
            })),
            { label: 'Calibration and the cost model', link: '/bench/calibrate/' },
          ],
        },
        {
          label: 'API reference',
          items: packages.map((p) => ({
            label: `@spf/${p}`,
            link: `/api/${p}/`,
            attrs: { target: '_self' },
          })),
        },
      ],
    }),
  ],
  vite: {
    // Workspace packages are consumed from their TypeScript sources, as in the packages' own tests.
    resolve: { conditions: ['@spf/source', 'module', 'browser', 'development|production'] },
    ssr: { resolve: { conditions: ['@spf/source', 'module', 'node', 'development|production'] } },
    worker: { format: 'es' },
    build: { chunkSizeWarningLimit: 2000 },
  },
});
