// The page's runner of data sources for forms (see `form/sources.ts`):
// calls go through the SDK with the template's id, which is what lets a
// viewer execute the sources its form binds. One runner per template for
// the page's life, so the editor and the preview of one template share
// the answers already fetched.
import { client } from "./client";
import { cachedRunner, type SourceRunner } from "./form/sources";

const runners = new Map<string, SourceRunner>();

/** The runner of template `templateId`'s bound sources. */
export function sourceRunner(templateId: string): SourceRunner {
  let r = runners.get(templateId);
  if (r === undefined) {
    r = cachedRunner((id, params) => client.dataSources.execute(id, { params, templateId }).then((res) => res.data));
    runners.set(templateId, r);
  }
  return r;
}
