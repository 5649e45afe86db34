/**
 * The bootstrap's `stats_config` (envoy.config.metrics.v3.StatsConfig): which tags Prometheus labels are
 * extracted from stat names. Only tagging is implemented; stat matchers and bucket settings are refused.
 */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { objectItems, onlyFields, optBool, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import type { StatsStoreOptions, TagSpecifier } from '../stats/store.ts';
import { ENVOY_DEFAULT_TAG_SPECIFIERS, TagExtractor } from '../stats/tags.ts';

const NOT_YET = 'not supported by Weft (yet)';

export function compileStatsConfig(obj: JsonObject | undefined, path: string): StatsStoreOptions | undefined {
  if (obj === undefined) return undefined;
  onlyFields(obj, path, ['stats_tags', 'use_all_default_tags'], {
    stats_matcher: NOT_YET,
    histogram_bucket_settings: NOT_YET,
    allow_default_tag_overrides: NOT_YET,
  });
  const statsTags = objectItems(obj, 'stats_tags', path).map(({ item, path: p }): TagSpecifier => {
    onlyFields(item, p, ['tag_name', 'regex', 'fixed_value']);
    const name = optString(item, 'tag_name', p);
    if (!name) throw new ConfigError(fieldPath(p, 'tag_name'), 'required');
    const regex = optString(item, 'regex', p);
    const fixedValue = optString(item, 'fixed_value', p);
    if (fixedValue !== undefined) return { name, fixedValue };
    if (!regex) throw new ConfigError(p, 'needs regex or fixed_value');
    try {
      new TagExtractor([{ name, regex }]);
    } catch (err) {
      throw new ConfigError(fieldPath(p, 'regex'), `does not compile: ${(err as Error).message}`);
    }
    return { name, regex };
  });
  const useAllDefaultTags = optBool(obj, 'use_all_default_tags', path) ?? true;
  if (useAllDefaultTags) {
    const i = statsTags.findIndex((t) => ENVOY_DEFAULT_TAG_SPECIFIERS.some((d) => d.name === t.name));
    if (i >= 0)
      throw new ConfigError(
        fieldPath(`${path}.stats_tags[${i}]`, 'tag_name'),
        `${JSON.stringify(statsTags[i].name)} is one of Envoy's default tags; set use_all_default_tags: false to redefine it`,
      );
  }
  return { useAllDefaultTags, statsTags };
}
