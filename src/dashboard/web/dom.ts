/**
 * The few DOM facilities the page uses, typed here: the repository's type check runs without the DOM
 * library (adding it would change the types of the Node code it checks), so the page reaches the document
 * through these interfaces. esbuild bundles it for the browser, where they are the real thing.
 */

export interface Element {
  textContent: string | null;
  className: string;
  title: string;
  hidden: boolean;
  readonly clientWidth: number;
  appendChild<T extends Element>(child: T): T;
  replaceChildren(...children: Element[]): void;
  setAttribute(name: string, value: string): void;
  addEventListener(type: string, listener: () => void): void;
}

export interface Document {
  getElementById(id: string): Element | null;
  createElement(tag: string): Element;
}

/** What the page uses of `window`: the hash route and its change event. */
export interface Window {
  /** `search`: the page's own query string (the cost view passes its prices on to /api/cost). */
  location: { hash: string; search: string };
  addEventListener(type: string, listener: () => void): void;
}

export const document = (globalThis as unknown as { document: Document }).document;
export const window = (globalThis as unknown as { window: Window }).window;

/** An element by id, which the page's HTML must have. */
export function byId(id: string): Element {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/** `<tag class=...>text</tag>`. */
export function h(tag: string, text?: string, className?: string): Element {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className !== undefined) el.className = className;
  return el;
}

/** `<a href="#...">text</a>`: the page's links are hash routes. */
export function link(text: string, hash: string, className?: string): Element {
  const a = h('a', text, className);
  a.setAttribute('href', hash);
  return a;
}

/** `<tag>` holding `children`. */
export function wrap(tag: string, children: Element[], className?: string): Element {
  const el = h(tag, undefined, className);
  el.replaceChildren(...children);
  return el;
}
