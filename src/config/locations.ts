/**
 * Lines of fields inside loaded resources, for diagnostics that point at a field rather than at the
 * start of its document. The loader registers a locator per resource; it lives as long as the
 * resource (a WeakMap), and only when asked for (LoadOptions.fieldLines), because it keeps the
 * document's syntax tree alive.
 */
import type { IstioResource } from '../api/istio/resource.ts';
import type { PathSegment } from './diagnostic.ts';

export type FieldLocator = (path: readonly PathSegment[]) => number;

const locators = new WeakMap<IstioResource, FieldLocator>();

export function setFieldLocator(resource: IstioResource, locator: FieldLocator): void {
  locators.set(resource, locator);
}

/** The line of a field (path from the document root, e.g. ['spec', 'http', 0]), or the document's first line when unknown. */
export function lineOfField(resource: IstioResource, path: readonly PathSegment[]): number {
  return locators.get(resource)?.(path) ?? resource.source.line;
}
