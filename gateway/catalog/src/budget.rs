//! Budgets and paging: every rendered output is a header, a run of items and a footer that says what was
//! left out, packed greedily into a character budget and split into pages.
//!
//! Semantics, relied on by the tools and tested in `render`:
//! - The budget is in characters (Unicode scalar values) or estimated tokens, where one token is taken as
//!   four characters (`ceil(chars / 4)`): crude, but stable, tokenizer-free, and on the cautious side for
//!   English identifiers. The whole text, footer included, never exceeds it.
//! - Budgets below [`MIN_BUDGET_CHARS`] are raised to it (with a finding), so that a page can always say
//!   what it left out.
//! - Page 1 holds as many whole items, in order, as fit; page n starts where page n−1 ended, so a caller
//!   continues with the same budget and `page = n + 1`. A single item larger than a page is cut at a line
//!   (or, in JSON, column) boundary and marked as cut, so paging always advances.
//! - Whenever anything is left out, the footer says how many items, which ones are shown and which page
//!   comes next, e.g. `… 1,940 more tables omitted; page=2 to continue (tables 1–60 of 2,000, page 1 of 33)`.

use serde::Serialize;

use crate::finding::Finding;

/// Smallest budget honoured; smaller requests are raised to this.
pub const MIN_BUDGET_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    Chars,
    /// Estimated tokens: four characters each.
    Tokens,
}

/// A size limit for one rendered page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub amount: usize,
    pub unit: BudgetUnit,
}

impl Budget {
    pub fn chars(amount: usize) -> Budget {
        Budget {
            amount,
            unit: BudgetUnit::Chars,
        }
    }

    pub fn tokens(amount: usize) -> Budget {
        Budget {
            amount,
            unit: BudgetUnit::Tokens,
        }
    }

    pub fn max_chars(&self) -> usize {
        match self.unit {
            BudgetUnit::Chars => self.amount,
            BudgetUnit::Tokens => self.amount.saturating_mul(4),
        }
    }
}

/// The token estimate used throughout: `ceil(chars / 4)`.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Which page of an output to render, and how big a page may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub budget: Budget,
    /// 1-based.
    pub page: usize,
    /// At most this many items per page (`schema_ddl`'s `max_tables`), besides the budget.
    pub max_items: Option<usize>,
}

impl Default for Window {
    /// About 4,000 tokens, page 1.
    fn default() -> Window {
        Window {
            budget: Budget::tokens(4_000),
            page: 1,
            max_items: None,
        }
    }
}

impl Window {
    pub fn new(budget: Budget) -> Window {
        Window {
            budget,
            ..Window::default()
        }
    }

    pub fn page(self, page: usize) -> Window {
        Window { page, ..self }
    }

    pub fn max_items(self, max_items: usize) -> Window {
        Window {
            max_items: Some(max_items),
            ..self
        }
    }
}

/// One rendered page and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    pub text: String,
    pub page: usize,
    pub pages: usize,
    /// Items (tables, edges, paths…) in the whole output.
    pub total: usize,
    /// 1-based range of items on this page; `first > last` when the page holds none.
    pub first: usize,
    pub last: usize,
    /// Items not on this page.
    pub omitted: usize,
    pub next_page: Option<usize>,
    pub chars: usize,
    pub estimated_tokens: usize,
    /// True when an item was cut to fit.
    pub truncated: bool,
    pub findings: Vec<Finding>,
}

/// How the footer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Plain text; the prefix starts each footer line (`-- ` inside DDL).
    Text { prefix: &'static str },
    /// A JSON document whose header opens an array; the footer closes it and adds paging fields.
    Json,
}

/// What a page needs to describe itself.
#[derive(Debug, Clone, Copy)]
struct PageInfo {
    page: usize,
    pages: usize,
    first: usize,
    last: usize,
    total: usize,
    shown: usize,
    after: usize,
}

/// A renderer's output before packing.
pub(crate) struct Layout<'a> {
    pub header: String,
    pub items: Vec<String>,
    /// Between items: `"\n"` for text, `","` for JSON.
    pub sep: &'static str,
    /// Plural noun for the footer (`tables`, `joins`, `paths`).
    pub noun: &'static str,
    pub style: Style,
    /// Cuts item `i` to at most `n` characters (only called when the item alone exceeds a page).
    pub shrink: &'a dyn Fn(usize, usize) -> String,
}

impl<'a> Layout<'a> {
    /// Plain text, one item per line.
    pub fn text(
        header: String,
        items: Vec<String>,
        noun: &'static str,
        shrink: &'a dyn Fn(usize, usize) -> String,
    ) -> Layout<'a> {
        Layout {
            header,
            items,
            sep: "\n",
            noun,
            style: Style::Text { prefix: "" },
            shrink,
        }
    }
}

pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn note(info: &PageInfo, noun: &str) -> String {
    let span = format!(
        "{noun} {}–{} of {}, page {} of {}",
        thousands(info.first),
        thousands(info.last),
        thousands(info.total),
        info.page,
        info.pages
    );
    if info.after > 0 {
        format!(
            "… {} more {noun} omitted; page={} to continue ({span})",
            thousands(info.after),
            info.page + 1
        )
    } else {
        format!("… {span}; earlier pages hold the rest")
    }
}

fn footer(style: Style, noun: &str, info: Option<&PageInfo>) -> String {
    match (style, info) {
        (Style::Text { .. }, None) => String::new(),
        (Style::Text { prefix }, Some(info)) => format!("\n{prefix}{}", note(info, noun)),
        (Style::Json, None) => "]}".to_string(),
        (Style::Json, Some(info)) => {
            let fields = serde_json::json!({
                "page": info.page,
                "pages": info.pages,
                "first": info.first,
                "last": info.last,
                "total": info.total,
                "omitted": info.total - info.shown,
                "next_page": if info.after > 0 { Some(info.page + 1) } else { None },
                "note": note(info, noun),
            });
            let text = fields.to_string();
            format!("],\"paging\":{text}}}")
        }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Cuts text at line boundaries to at most `max` characters, ending with a marker line.
pub(crate) fn shrink_lines(text: &str, max: usize, prefix: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let marker = format!(
            "\n{prefix}… {} more lines of this item cut",
            thousands(lines.len() - i)
        );
        let candidate = if out.is_empty() {
            line.to_string()
        } else {
            format!("{out}\n{line}")
        };
        let rest = lines.len() - i - 1;
        let needed = if rest == 0 {
            chars(&candidate)
        } else {
            chars(&candidate) + chars(&marker) + 4
        };
        if needed > max {
            let marker = marker.trim_start_matches('\n');
            let text = if out.is_empty() {
                marker.to_string()
            } else {
                format!("{out}\n{marker}")
            };
            return hard_cut(&text, max);
        }
        out = candidate;
    }
    out
}

fn hard_cut(text: &str, max: usize) -> String {
    if chars(text) <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Packs `layout` into pages of the window's budget and renders the requested page.
pub(crate) fn pack(layout: Layout<'_>, window: &Window) -> Rendered {
    let mut findings = Vec::new();
    let mut budget = window.budget.max_chars();
    if budget < MIN_BUDGET_CHARS {
        findings.push(Finding::info(
            "budget_raised",
            None,
            format!(
                "a budget of {budget} characters cannot hold a page and its notes; {MIN_BUDGET_CHARS} used"
            ),
        ));
        budget = MIN_BUDGET_CHARS;
    }
    let total = layout.items.len();
    let sep_len = chars(layout.sep);
    let sizes: Vec<usize> = layout.items.iter().map(|i| chars(i)).collect();
    let worst = PageInfo {
        page: total + 1,
        pages: total + 1,
        first: total,
        last: total,
        total,
        shown: 0,
        after: total,
    };
    let reserve = chars(&footer(layout.style, layout.noun, Some(&worst)));
    let header_len = chars(&layout.header);
    let avail = budget.saturating_sub(header_len + reserve).max(1);
    let per_page = window.max_items.unwrap_or(usize::MAX).max(1);

    // Page boundaries, and which items must be cut because they alone exceed a page.
    let mut pages: Vec<(usize, usize)> = Vec::new();
    let mut cut: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < total {
        let start = i;
        let mut used = 0;
        while i < total && i - start < per_page {
            let add = sizes[i] + if i > start { sep_len } else { 0 };
            if used + add > avail {
                break;
            }
            used += add;
            i += 1;
        }
        if i == start {
            cut.push(i);
            i += 1;
        }
        pages.push((start, i));
    }
    let all_fit = pages.len() <= 1;
    if pages.is_empty() {
        pages.push((0, 0));
    }
    let page_count = pages.len();
    let page = window.page.max(1);
    let (text, first, last, next_page, truncated) = match pages.get(page - 1) {
        Some(&(start, end)) => {
            let mut body = Vec::with_capacity(end - start);
            let mut truncated = false;
            for idx in start..end {
                if cut.contains(&idx) {
                    body.push((layout.shrink)(idx, avail));
                    truncated = true;
                } else {
                    body.push(layout.items[idx].clone());
                }
            }
            let info = PageInfo {
                page,
                pages: page_count,
                first: start + 1,
                last: end,
                total,
                shown: end - start,
                after: total - end,
            };
            let foot = if all_fit && !truncated && page == 1 {
                footer(layout.style, layout.noun, None)
            } else {
                footer(layout.style, layout.noun, Some(&info))
            };
            let next = (end < total).then_some(page + 1);
            (
                format!("{}{}{}", layout.header, body.join(layout.sep), foot),
                start + 1,
                end,
                next,
                truncated,
            )
        }
        None => {
            findings.push(Finding::info(
                "page_out_of_range",
                None,
                format!("page {page} is past the end: this output has {page_count} page(s) at this budget"),
            ));
            let foot = match layout.style {
                Style::Text { prefix } => format!(
                    "\n{prefix}… page {page} is past the end; {} {} fit on {page_count} page(s)",
                    thousands(total),
                    layout.noun
                ),
                Style::Json => footer(layout.style, layout.noun, None),
            };
            (format!("{}{}", layout.header, foot), 1, 0, None, false)
        }
    };
    let text = if chars(&text) > budget {
        findings.push(Finding::warning(
            "hard_truncated",
            None,
            "the output's fixed part exceeded the budget and was cut mid-line".to_string(),
        ));
        hard_cut(&text, budget)
    } else {
        text
    };
    let shown = if last >= first { last + 1 - first } else { 0 };
    Rendered {
        chars: chars(&text),
        estimated_tokens: estimate_tokens(&text),
        text,
        page,
        pages: page_count,
        total,
        first,
        last,
        omitted: total - shown,
        next_page,
        truncated,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::fixtures::shop;
    use crate::render;

    /// Renders the shop's compact view in `window` and reports `(first, last, pages, next_page, omitted,
    /// truncated)`; every page must fit its budget.
    fn check(window: Window, expected: (usize, usize, usize, Option<usize>, usize, bool)) {
        let r = render::compact(&shop(), None, &window);
        let limit = window.budget.max_chars().max(MIN_BUDGET_CHARS);
        assert!(r.chars <= limit, "{} chars > {limit}:\n{}", r.chars, r.text);
        assert_eq!(r.chars, r.text.chars().count());
        assert_eq!(
            (r.first, r.last, r.pages, r.next_page, r.omitted, r.truncated),
            expected,
            "{window:?}\n{}",
            r.text
        );
    }

    #[test]
    fn pages_hold_whole_items_and_fit_the_budget() {
        let big = Window::new(Budget::chars(10_000));
        check(big, (1, 11, 1, None, 0, false));
        check(Window::new(Budget::tokens(2_500)), (1, 11, 1, None, 0, false));
        let small = Window::new(Budget::chars(400));
        check(small, (1, 4, 4, Some(2), 7, false));
        check(small.page(2), (5, 6, 4, Some(3), 9, false));
        check(small.page(4), (9, 11, 4, None, 8, false));
        // Tokens are four characters each.
        check(Window::new(Budget::tokens(100)), (1, 4, 4, Some(2), 7, false));
        // max_items caps a page besides the budget.
        check(big.max_items(4), (1, 4, 3, Some(2), 7, false));
        check(big.max_items(4).page(3), (9, 11, 3, None, 8, false));
    }

    #[test]
    fn oversize_items_are_cut_and_tiny_budgets_raised() {
        // At the minimum budget the long order_items line alone exceeds a page and is cut.
        let tiny = Window::new(Budget::chars(10));
        check(tiny.page(7), (7, 7, 11, Some(8), 10, true));
        let r = render::compact(&shop(), None, &tiny);
        assert_eq!(
            r.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
            vec!["budget_raised"]
        );
    }

    #[test]
    fn pages_past_the_end_say_so() {
        let r = render::compact(&shop(), None, &Window::new(Budget::chars(10_000)).page(3));
        assert_eq!((r.first, r.last, r.omitted), (1, 0, 11));
        assert!(
            r.text
                .ends_with("… page 3 is past the end; 11 tables fit on 1 page(s)"),
            "{}",
            r.text
        );
        assert_eq!(
            r.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
            vec!["page_out_of_range"]
        );
    }

    #[test]
    fn every_json_page_is_valid_json_with_paging() {
        let catalog = shop();
        let window = Window::new(Budget::chars(700));
        let first = render::json(&catalog, None, &window);
        for page in 1..=first.pages {
            let r = render::json(&catalog, None, &window.page(page));
            assert!(r.chars <= 700, "{}", r.text);
            let value: serde_json::Value = serde_json::from_str(&r.text).expect("valid JSON");
            let shown = value["tables"].as_array().map(Vec::len).unwrap_or(0);
            assert_eq!(
                (shown, value["paging"]["page"].as_u64()),
                (r.last + 1 - r.first, Some(page as u64))
            );
        }
    }

    #[test]
    fn thousands_separators() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (1_940, "1,940"),
            (1_234_567, "1,234,567"),
        ];
        for (n, expected) in cases {
            assert_eq!(thousands(n), expected);
        }
    }
}
