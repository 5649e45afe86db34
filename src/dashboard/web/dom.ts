/**
 * The few DOM facilities the page uses, typed here: the repository's type check runs without the DOM
 * library (adding it would change the types of the Node code it checks), so the page reaches the document
 * through these interfaces. esbuild bundles it for the browser, where they are the real thing.
 */

export interface Element {
  textContent: string | null;
  className: string;
  title: string;
  appendChild<T extends Element>(child: T): T;
  replaceChildren(...children: Element[]): void;
  setAttribute(name: string, value: string): void;
}

export interface Document {
  getElementById(id: string): Element | null;
  createElement(tag: string): Element;
}

export const document = (globalThis as unknown as { document: Document }).document;

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
