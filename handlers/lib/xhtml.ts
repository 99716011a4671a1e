/**
 * The FHIR narrative rules for `Narrative.div` (https://hl7.org/fhir/R4/narrative.html#xhtml):
 * well-formed XHTML whose root is a `div` in the XHTML namespace, holding
 * only the basic HTML elements and attributes the spec lists (txt-1), with
 * some non-whitespace content (txt-2). No scripts, forms, frames, objects,
 * head/body, event attributes (`onclick`, ...), and here no external
 * references either: `src` must be a fragment (`#id`) or a `data:` image,
 * and a `style` may not load anything (`url(`, `@import`, `expression(`).
 *
 * No XML parser is a dependency of this project, so this is a small strict
 * reader of the subset: anything it does not recognise (a DOCTYPE, a
 * processing instruction, an unknown entity, a namespace prefix) is refused.
 * Returns the reasons (fixed texts, never a piece of the input).
 */

const XHTML_NS = "http://www.w3.org/1999/xhtml";

/** The elements of the XHTML subset (narrative.html#xhtml, the HTML 4.0 basic elements). */
const ELEMENTS = new Set(
  (
    "a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em " +
    "h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td " +
    "tfoot th thead tr tt ul var address bdo del ins kbd s strike u center font"
  ).split(" "),
);

/** Attributes allowed on any element, and per element (FHIR's validator lists the same). */
const COMMON_ATTRIBUTES = new Set(["id", "class", "style", "title", "lang", "xml:lang", "dir"]);
const ELEMENT_ATTRIBUTES: Record<string, string[]> = {
  a: ["href", "name"],
  img: ["src", "alt", "width", "height", "border"],
  table: ["border", "width", "cellpadding", "cellspacing", "summary", "rules", "frame"],
  td: ["colspan", "rowspan", "align", "valign", "width", "headers", "scope", "abbr", "nowrap"],
  th: ["colspan", "rowspan", "align", "valign", "width", "headers", "scope", "abbr", "nowrap"],
  tr: ["align", "valign"],
  col: ["span", "width", "align", "valign"],
  colgroup: ["span", "width", "align", "valign"],
  tbody: ["align", "valign"],
  thead: ["align", "valign"],
  tfoot: ["align", "valign"],
  ol: ["start", "type"],
  ul: ["type"],
  li: ["value", "type"],
  blockquote: ["cite"],
  q: ["cite"],
  del: ["cite", "datetime"],
  ins: ["cite", "datetime"],
  bdo: ["dir"],
  font: ["color", "size", "face"],
  div: ["xmlns", "align"],
  p: ["align"],
  hr: ["align", "width", "size", "noshade"],
  h1: ["align"],
  h2: ["align"],
  h3: ["align"],
  h4: ["align"],
  h5: ["align"],
  h6: ["align"],
  pre: ["width"],
  caption: ["align"],
};

const ENTITIES = new Set(["amp", "lt", "gt", "quot", "apos"]);
const NAME = /^[A-Za-z][A-Za-z0-9_.:-]*$/;

export function xhtmlProblems(div: string): string[] {
  const problems = new Set<string>();
  const stack: string[] = [];
  let text = "";
  let seenRoot = false;
  let i = 0;
  const n = div.length;
  const checkEntities = (s: string) => {
    for (const m of s.matchAll(/&([^;&\s]*);?/g)) {
      const name = m[1];
      if (!m[0].endsWith(";")) problems.add("a bare '&' (escape it as &amp;)");
      else if (
        !(ENTITIES.has(name) || /^#[0-9]{1,7}$/.test(name) || /^#x[0-9a-fA-F]{1,6}$/.test(name))
      )
        problems.add(
          "an entity XML does not define (only &amp; &lt; &gt; &quot; &apos; and numeric ones)",
        );
    }
  };
  while (i < n) {
    const lt = div.indexOf("<", i);
    const chunk = div.slice(i, lt === -1 ? n : lt);
    if (chunk) {
      if (stack.length === 0 && chunk.trim()) problems.add("text outside the root div");
      if (chunk.includes(">")) problems.add("a bare '>' is tolerated by XML but not expected");
      checkEntities(chunk);
      text += chunk;
    }
    if (lt === -1) break;
    if (div.startsWith("<!--", lt)) {
      const end = div.indexOf("-->", lt + 4);
      if (end === -1) return ["an unterminated comment"];
      i = end + 3;
      continue;
    }
    if (div.startsWith("<![CDATA[", lt)) {
      const end = div.indexOf("]]>", lt + 9);
      if (end === -1) return ["an unterminated CDATA section"];
      if (stack.length === 0) problems.add("text outside the root div");
      text += div.slice(lt + 9, end);
      i = end + 3;
      continue;
    }
    if (div.startsWith("<!", lt) || div.startsWith("<?", lt)) {
      if (div.startsWith("<?xml ", lt) && lt === 0) {
        const end = div.indexOf("?>", lt);
        if (end === -1) return ["an unterminated XML declaration"];
        i = end + 2;
        continue;
      }
      return ["a DOCTYPE or processing instruction (not allowed in a narrative)"];
    }
    const gt = findTagEnd(div, lt + 1);
    if (gt === -1) return ["an unterminated tag"];
    const tag = div.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) return ["elements that are not properly nested or closed"];
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([^\s/>]+)([\s\S]*)$/.exec(body);
    const name = m?.[1] ?? "";
    if (!NAME.test(name)) return ["a malformed tag"];
    if (stack.length === 0) {
      if (seenRoot) problems.add("more than one root element");
      seenRoot = true;
      if (name !== "div") problems.add("a root element other than div");
    }
    if (!ELEMENTS.has(name)) {
      problems.add(
        /^(script|style|link|meta|base|iframe|frame|frameset|object|embed|applet|form|input|button|select|textarea|head|body|html|svg|math)$/i.test(
          name,
        )
          ? "an element FHIR forbids in narrative (script, form, frame, object, head or body, ...)"
          : "an element outside the FHIR XHTML subset",
      );
    }
    const attrs = parseAttributes(m?.[2] ?? "");
    if (!attrs) return ["malformed attributes"];
    const allowed = ELEMENT_ATTRIBUTES[name] ?? [];
    const seen = new Set<string>();
    for (const [attr, value] of attrs) {
      if (seen.has(attr)) problems.add("an attribute given twice on one element");
      seen.add(attr);
      checkEntities(value);
      if (/^on/i.test(attr)) {
        problems.add("an event attribute (onclick, onload, ...)");
        continue;
      }
      if (!COMMON_ATTRIBUTES.has(attr) && !allowed.includes(attr)) {
        problems.add("an attribute outside the FHIR XHTML subset");
        continue;
      }
      if (attr === "xmlns" && value !== XHTML_NS) problems.add("a namespace other than XHTML");
      if (attr === "src" && !/^(#|data:image\/)/i.test(value.trim()))
        problems.add("an external reference (src must be #id or a data: image)");
      if (attr === "href" && /^\s*(javascript|vbscript|data):/i.test(value))
        problems.add("a script or data link");
      if (
        attr === "style" &&
        /url\s*\(|@import|expression\s*\(|behavior\s*:|-moz-binding/i.test(value)
      )
        problems.add("a style that loads or runs something");
    }
    if (
      stack.length === 0 &&
      name === "div" &&
      attrs.find(([a]) => a === "xmlns")?.[1] !== XHTML_NS
    )
      problems.add("a root div without the XHTML namespace");
    if (!selfClosing) stack.push(name);
  }
  if (stack.length) problems.add("elements that are not closed");
  if (!seenRoot) problems.add("no root div");
  // txt-2: "The narrative SHALL have some non-whitespace content" (text or an image).
  if (!text.trim() && !/<img\b/.test(div)) problems.add("no non-whitespace content (txt-2)");
  return [...problems];
}

/** Index of the `>` closing a tag that starts at `from`, skipping quoted attribute values. */
function findTagEnd(s: string, from: number): number {
  let quote = "";
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "<") return -1;
    else if (c === ">") return i;
  }
  return -1;
}

function parseAttributes(s: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  const re = /\s+([^\s=/>]+)\s*=\s*("([^"<]*)"|'([^'<]*)')/gy;
  let at = 0;
  for (;;) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) break;
    out.push([m[1], m[3] ?? m[4] ?? ""]);
    at = re.lastIndex;
  }
  return s.slice(at).trim() === "" ? out : undefined;
}
