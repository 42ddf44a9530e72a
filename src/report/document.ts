/**
 * A report as a list of blocks, rendered twice: Markdown (index.md, PNGs beside it) and one
 * self-contained HTML page (index.html, the same PNGs embedded as data URIs). Building the content
 * once keeps the two pages saying the same thing.
 *
 * Inline text may use `code` and **bold**; nothing else is interpreted.
 */
export type Align = 'left' | 'right';

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; header: string[]; rows: string[][]; align?: Align[]; caption?: string }
  | { kind: 'image'; file: string; alt: string; png: Buffer };

export interface ReportDocument {
  title: string;
  blocks: Block[];
}

/** The PNG files a document refers to (file name -> bytes). */
export function documentImages(doc: ReportDocument): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const b of doc.blocks) if (b.kind === 'image') out.set(b.file, b.png);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function mdCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function mdTable(b: Extract<Block, { kind: 'table' }>): string {
  const align = b.header.map((_, i) => b.align?.[i] ?? 'left');
  const lines = [
    `| ${b.header.map(mdCell).join(' | ')} |`,
    `| ${align.map((a) => (a === 'right' ? '---:' : '---')).join(' | ')} |`,
    ...b.rows.map((row) => `| ${b.header.map((_, i) => mdCell(row[i] ?? '')).join(' | ')} |`),
  ];
  return (b.caption === undefined ? '' : `${b.caption}\n\n`) + lines.join('\n');
}

export function renderMarkdown(doc: ReportDocument): string {
  const parts = [`# ${doc.title}`];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        parts.push(`${'#'.repeat(b.level + 1)} ${b.text}`);
        break;
      case 'paragraph':
        parts.push(b.text);
        break;
      case 'list':
        parts.push(b.items.map((item) => `- ${item}`).join('\n'));
        break;
      case 'table':
        parts.push(mdTable(b));
        break;
      case 'image':
        parts.push(`![${b.alt}](${b.file})`);
        break;
    }
  }
  return `${parts.join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// HTML

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Escapes, then turns `code` and **bold** into elements. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1, h2, h3, h4 { line-height: 1.2; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 0.3em; }
code { background: #f3f3f3; padding: 0 0.2em; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }
`;

function htmlTable(b: Extract<Block, { kind: 'table' }>): string {
  const cls = (i: number): string => (b.align?.[i] === 'right' ? ' class="r"' : '');
  const head = `<tr>${b.header.map((h, i) => `<th${cls(i)}>${inline(h)}</th>`).join('')}</tr>`;
  const body = b.rows.map((row) => `<tr>${b.header.map((_, i) => `<td${cls(i)}>${inline(row[i] ?? '')}</td>`).join('')}</tr>`).join('\n');
  const caption = b.caption === undefined ? '' : `<caption>${inline(b.caption)}</caption>`;
  return `<table>${caption}\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export function renderHtml(doc: ReportDocument): string {
  const body: string[] = [`<h1>${inline(doc.title)}</h1>`];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        body.push(`<h${b.level + 1}>${inline(b.text)}</h${b.level + 1}>`);
        break;
      case 'paragraph':
        body.push(`<p>${inline(b.text)}</p>`);
        break;
      case 'list':
        body.push(`<ul>\n${b.items.map((item) => `<li>${inline(item)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table':
        body.push(htmlTable(b));
        break;
      case 'image':
        body.push(
          `<figure><img alt="${escapeHtml(b.alt)}" src="data:image/png;base64,${b.png.toString('base64')}"><figcaption>${inline(b.alt)}</figcaption></figure>`,
        );
        break;
    }
  }
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(doc.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
