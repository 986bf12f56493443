//! Charts as SVG text, drawn on the server: no script, no style sheet of their own, colours as
//! presentation attributes (the pages' Content-Security-Policy allows no inline styles). Each
//! chart has a `<title>` and `<desc>` and is `role="img"` with an `aria-label`; every bar is a
//! `<rect class="bar">` with its own `<title>` giving the figure. Pages show the same figures as
//! a table next to the chart.

use std::fmt::Write;

/// Width of every chart, in SVG units.
const WIDTH: i64 = 640;
/// Space for labels left of horizontal bars.
const LABEL_WIDTH: i64 = 220;
/// Space for the figure right of a horizontal bar.
const VALUE_WIDTH: i64 = 70;
const BAR_HEIGHT: i64 = 18;
const GAP: i64 = 10;
const COLUMN_HEIGHT: i64 = 200;
const AXIS: i64 = 24;

/// One set of bars: a name, a fill colour and one value per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub fill: &'a str,
    pub values: Vec<i64>,
    /// What each bar's tooltip and value label say (default: the value).
    pub captions: Vec<String>,
}

impl<'a> Series<'a> {
    pub fn new(name: &'a str, fill: &'a str, values: Vec<i64>) -> Self {
        let captions = values.iter().map(i64::to_string).collect();
        Self {
            name,
            fill,
            values,
            captions,
        }
    }

    /// Captions of the bars in place of the bare values.
    pub fn with_captions(mut self, captions: Vec<String>) -> Self {
        self.captions = captions;
        self
    }

    fn caption(&self, i: usize) -> String {
        self.captions
            .get(i)
            .cloned()
            .unwrap_or_else(|| self.values.get(i).copied().unwrap_or(0).to_string())
    }
}

/// Horizontal bars, one row per category and one bar per series in each row; bars are scaled to
/// `max` (or to the largest value when `max` is `None`).
pub fn bars(
    title: &str,
    desc: &str,
    categories: &[String],
    series: &[Series],
    max: Option<i64>,
) -> String {
    let per_row = series.len().max(1) as i64 * BAR_HEIGHT + GAP;
    let legend = legend_height(series);
    let height = legend + per_row * categories.len().max(1) as i64 + GAP;
    let top = max.unwrap_or_else(|| largest(series)).max(1);
    let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let mut svg = open(title, desc, height);
    draw_legend(&mut svg, series);
    for (row, category) in categories.iter().enumerate() {
        let y0 = legend + row as i64 * per_row;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="currentColor">{}</text>"#,
            LABEL_WIDTH - 8,
            y0 + series.len().max(1) as i64 * BAR_HEIGHT / 2 + 4,
            escape(&shorten(category, 34))
        );
        for (k, s) in series.iter().enumerate() {
            let value = s.values.get(row).copied().unwrap_or(0).max(0);
            let width = (value.min(top) * span) / top;
            let y = y0 + k as i64 * BAR_HEIGHT;
            let caption = s.caption(row);
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{}" fill="{}"><title>{}: {}</title></rect>"#,
                BAR_HEIGHT - 2,
                escape(s.fill),
                escape(&format!("{category}, {}", s.name)),
                escape(&caption),
            );
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" font-size="11" fill="currentColor">{}</text>"#,
                LABEL_WIDTH + width + 4,
                y + BAR_HEIGHT - 5,
                escape(&caption)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical columns, one group per category (e.g. a day) and one column per series in a group;
/// only the first and last category are labelled under the axis. `axis` writes the value at the
/// top of the axis (e.g. as money when the values are minor units).
pub fn columns(
    title: &str,
    desc: &str,
    categories: &[String],
    series: &[Series],
    axis: impl Fn(i64) -> String,
) -> String {
    let legend = legend_height(series);
    let height = legend + COLUMN_HEIGHT + AXIS;
    let top = largest(series).max(1);
    let top_label = axis(top);
    // Room for the top value left of the axis, about 7 units a character at this size.
    let left = (top_label.chars().count() as i64 * 7 + 8).clamp(40, WIDTH / 4);
    let span = WIDTH - left - 10;
    let groups = categories.len().max(1) as i64;
    // A few days would otherwise give columns as wide as the chart.
    let group_width = (span / groups).clamp(1, 48);
    let column_width =
        ((group_width - if group_width > 4 { 2 } else { 0 }) / series.len().max(1) as i64).max(1);
    let base = legend + COLUMN_HEIGHT;
    let mut svg = open(title, desc, height);
    draw_legend(&mut svg, series);
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{base}" x2="{}" y2="{base}" stroke="currentColor" stroke-width="1"/>"#,
        WIDTH - 10
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="currentColor">{}</text>"#,
        left - 4,
        legend + 10,
        escape(&top_label)
    );
    for (i, category) in categories.iter().enumerate() {
        let x0 = left + i as i64 * group_width;
        for (k, s) in series.iter().enumerate() {
            let value = s.values.get(i).copied().unwrap_or(0).max(0);
            let h = value * COLUMN_HEIGHT / top;
            let _ = write!(
                svg,
                r#"<rect class="bar" x="{}" y="{}" width="{column_width}" height="{h}" fill="{}"><title>{}: {}</title></rect>"#,
                x0 + k as i64 * column_width,
                base - h,
                escape(s.fill),
                escape(&format!("{category}, {}", s.name)),
                escape(&s.caption(i)),
            );
        }
    }
    if let (Some(first), Some(last)) = (categories.first(), categories.last()) {
        let _ = write!(
            svg,
            r#"<text x="{left}" y="{}" font-size="11" fill="currentColor">{}</text>"#,
            base + 16,
            escape(first)
        );
        if categories.len() > 1 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="currentColor">{}</text>"#,
                WIDTH - 10,
                base + 16,
                escape(last)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn open(title: &str, desc: &str, height: i64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{}"><title>{}</title><desc>{}</desc>"#,
        escape(title),
        escape(title),
        escape(desc)
    )
}

fn legend_height(series: &[Series]) -> i64 {
    if series.len() > 1 {
        24
    } else {
        4
    }
}

/// A key naming each series, when there is more than one.
fn draw_legend(svg: &mut String, series: &[Series]) {
    if series.len() < 2 {
        return;
    }
    let mut x = LABEL_WIDTH;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="4" width="12" height="12" fill="{}"/><text x="{}" y="14" font-size="12" fill="currentColor">{}</text>"#,
            escape(s.fill),
            x + 16,
            escape(s.name)
        );
        x += 24 + 8 * s.name.chars().count() as i64;
    }
}

fn largest(series: &[Series]) -> i64 {
    series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Text for SVG (XML): the five special characters as references.
fn escape(text: &str) -> String {
    crate::pages::escape_html(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_chart_has_one_bar_per_category_and_series_and_escapes_text() {
        let svg = bars(
            "Fill <rate>",
            "Seats taken",
            &["A & B".to_owned(), "C".to_owned()],
            &[Series::new("taken", "#1d70b8", vec![5, 10])],
            Some(10),
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 2);
        assert!(svg.contains("A &amp; B"));
        assert!(svg.contains(r#"aria-label="Fill &lt;rate&gt;""#));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn columns_scale_to_the_largest_value() {
        let svg = columns(
            "Bookings",
            "Per day",
            &["1 Mar".to_owned(), "2 Mar".to_owned()],
            &[
                Series::new("in", "#00703c", vec![4, 2]),
                Series::new("out", "#d4351c", vec![0, 1]),
            ],
            |n| n.to_string(),
        );
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 4);
        assert!(svg.contains(&format!(r#"height="{COLUMN_HEIGHT}""#)));
    }

    #[test]
    fn columns_write_the_axis_value_as_asked() {
        let svg = columns(
            "Money",
            "Per day",
            &["1 Mar".to_owned()],
            &[Series::new("in", "#00703c", vec![24000])],
            |n| format!("£{}.{:02}", n / 100, n % 100),
        );
        assert!(svg.contains(">£240.00</text>"));
        assert!(!svg.contains(">24000</text>"));
    }
}
