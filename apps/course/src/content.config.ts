import { docsLoader } from '@astrojs/starlight/loaders';
import { docsSchema } from '@astrojs/starlight/schema';
import { defineCollection, z } from 'astro:content';

/**
 * Every page says what runs today and what is only planned (src/components/ProjectStatus.astro shows it at
 * the top of the page; test/pages.test.ts checks that every page has it).
 */
const status = z.object({
  /** What the reader can run today on this page's subject. `code` spans allowed. */
  runs: z.string(),
  /** What the page talks about that is not built yet (besides the planned packages, listed on every page). */
  planned: z.string().optional(),
});

export const collections = {
  docs: defineCollection({
    loader: docsLoader(),
    schema: docsSchema({ extend: z.object({ status: status.optional() }) }),
  }),
};
