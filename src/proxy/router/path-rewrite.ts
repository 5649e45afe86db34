/**
 * Path rewriting shared by forwarding (RouteAction) and redirects (RedirectAction), as Envoy's
 * rewritePathByPrefixOrRegex:
 * - prefix_rewrite replaces the matched part of the path: the configured prefix / path /
 *   path_separated_prefix (its length), or for safe_regex routes the whole path before `?`/`#`;
 *   the rest (including the query) is kept.
 * - regex_rewrite replaces every match in the path before `?`/`#` and keeps the query; an empty result
 *   leaves the path unchanged.
 */
import { replaceAll } from './regex.ts';
import type { Re2Regex, Substitution } from './regex.ts';
import { pathEnd } from './strings.ts';

export class PathRewriter {
  /** Length of the matched part replaced by prefix_rewrite; -1 means "the path before ? or #". */
  private readonly matchedLength: number;
  private readonly prefix: string | undefined;
  private readonly regex: { readonly regex: Re2Regex; readonly substitution: Substitution } | undefined;

  constructor(
    matchedLength: number,
    prefix: string | undefined,
    regex: { regex: Re2Regex; substitution: Substitution } | undefined,
  ) {
    this.matchedLength = matchedLength;
    this.prefix = prefix;
    this.regex = regex;
  }

  get rewrites(): boolean {
    return this.prefix !== undefined || this.regex !== undefined;
  }

  rewrite(path: string): string {
    if (this.prefix !== undefined) {
      const matched = this.matchedLength >= 0 ? this.matchedLength : pathEnd(path);
      return this.prefix + path.slice(matched);
    }
    if (this.regex !== undefined) {
      const end = pathEnd(path);
      const rewritten = replaceAll(
        this.regex.regex,
        end === path.length ? path : path.slice(0, end),
        this.regex.substitution,
      );
      if (rewritten === '') return path;
      return end === path.length ? rewritten : rewritten + path.slice(end);
    }
    return path;
  }
}

/** A rewriter that changes nothing. */
export const NO_REWRITE = new PathRewriter(-1, undefined, undefined);
