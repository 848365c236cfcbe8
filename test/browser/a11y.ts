/**
 * A small accessibility check run in the page (no axe-core here): every form control and button has
 * an accessible name, there is one h1, images have text alternatives, and text meets WCAG AA contrast
 * (4.5:1, or 3:1 for large text) against the background it is drawn on. The terminal player's own
 * drawing surface is left out (it shows the recorded terminal's colours).
 */
import type { Page } from 'playwright-core';

/** Runs in the browser; written as a string so the test code needs no DOM types. */
const CHECK = String.raw`(() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const visible = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el); return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
  const inPlayer = (el) => !!el.closest('.ap-player, .ap-wrapper');
  const name = (el) => {
    const l = el.getAttribute('aria-label'); if (l && l.trim()) return l;
    const by = el.getAttribute('aria-labelledby'); if (by) { const t = by.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim(); if (t) return t; }
    if (el.labels && el.labels.length) { const t = [...el.labels].map((x) => x.textContent).join(' ').trim(); if (t) return t; }
    if (el.tagName === 'BUTTON' || el.tagName === 'A' || el.tagName === 'SUMMARY') { const t = el.textContent.trim(); if (t) return t; }
    return el.getAttribute('title') || '';
  };
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href], summary')) {
    if (inPlayer(el) || !visible(el)) continue;
    if (!name(el)) problems.push('no accessible name: ' + describe(el));
  }
  const h1 = [...document.querySelectorAll('h1')].filter(visible);
  if (h1.length !== 1) problems.push('expected one h1, found ' + h1.length);
  for (const img of document.querySelectorAll('img')) if (!inPlayer(img) && !img.hasAttribute('alt')) problems.push('image without alt: ' + describe(img));
  const rgba = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return undefined; const p = m[1].split(/[,\s/]+/).filter(Boolean).map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage && s.backgroundImage !== 'none') return undefined;
      const c = rgba(s.backgroundColor);
      if (c && c.a >= 0.99) return c;
      if (c && c.a > 0) return undefined;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || !n.textContent.trim() || seen.has(el) || inPlayer(el) || !visible(el)) continue;
    seen.add(el);
    if (el.closest('.visually-hidden, [aria-hidden=true], option, datalist')) continue;
    const s = getComputedStyle(el);
    const fg = rgba(s.color); const bg = background(el);
    if (!fg || !bg) continue;
    const a = fg.a;
    const mixed = { r: fg.r * a + bg.r * (1 - a), g: fg.g * a + bg.g * (1 - a), b: fg.b * a + bg.b * (1 - a) };
    const [l1, l2] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(s.fontSize); const bold = Number(s.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const disabled = el.closest('button:disabled, input:disabled, select:disabled');
    if (!disabled && ratio < (large ? 3 : 4.5)) problems.push('contrast ' + ratio.toFixed(2) + ':1 for "' + n.textContent.trim().slice(0, 40) + '" (' + describe(el) + ')');
  }
  return problems;
})()`;

/** The problems found on the page as it is now. */
export async function a11yProblems(page: Page): Promise<string[]> {
  return (await page.evaluate(CHECK)) as string[];
}
