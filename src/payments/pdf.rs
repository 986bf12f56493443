//! Invoices and credit notes as one-page A4 PDFs, in Helvetica, one of the fonts every PDF
//! reader has built in, so nothing is embedded, shipped or fetched. Text is written in the
//! fonts' WinAnsi encoding, which has £ and €.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// What the document says, ready to print.
#[derive(Debug, Clone)]
pub struct Document {
    /// "Invoice" or "Credit note".
    pub title: String,
    pub number: String,
    /// Who issues it: the event's name and venue.
    pub issuer: Vec<String>,
    /// The buyer: company, address lines, VAT number.
    pub bill_to: Vec<String>,
    /// Label and value pairs: date, due date, booking reference, PO number, …
    pub facts: Vec<(String, String)>,
    /// Description and amount (already formatted, e.g. "£145.00").
    pub lines: Vec<(String, String)>,
    /// Label and amount: net, VAT, total.
    pub totals: Vec<(String, String)>,
    /// Closing lines: how to pay, or what was credited.
    pub notes: Vec<String>,
}

const WIDTH: f32 = 595.28;
const HEIGHT: f32 = 841.89;
const LEFT: f32 = 56.0;
const RIGHT: f32 = WIDTH - 56.0;
/// Longest description printed on one line, in characters.
const LINE_CHARS: usize = 70;

/// Lowest baseline on a page; below it the document goes on to the next page.
const BOTTOM: f32 = 64.0;
const TOP: f32 = HEIGHT - 72.0;

/// The pages written so far and the one being written.
struct Pages {
    done: Vec<Content>,
    page: Content,
    y: f32,
}

impl Pages {
    /// Room for `height` more on this page, or a new page.
    fn need(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            let full = std::mem::replace(&mut self.page, Content::new());
            self.done.push(full);
            self.y = TOP;
        }
    }

    fn line(&mut self, font: &[u8], size: f32, x: f32, s: &str) {
        self.need(size + 4.0);
        text(&mut self.page, font, size, x, self.y, s);
    }
}

/// The headings of a document's parts, which differ between documents.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// Above the party the document is for: "Bill to".
    pub party: &'a str,
    /// Above the lines' descriptions and their values.
    pub description: &'a str,
    pub value: &'a str,
}

/// The headings of invoices and credit notes.
pub const INVOICE_LABELS: Labels<'static> = Labels {
    party: "Bill to",
    description: "Description",
    value: "Amount (incl. VAT)",
};

/// The PDF bytes of `doc`, an invoice or credit note: as many A4 pages as it takes.
pub fn render(doc: &Document) -> Vec<u8> {
    render_labelled(doc, INVOICE_LABELS)
}

/// The PDF bytes of `doc` with the headings `labels`.
pub fn render_labelled(doc: &Document, labels: Labels<'_>) -> Vec<u8> {
    let mut p = Pages {
        done: Vec::new(),
        page: Content::new(),
        y: TOP,
    };
    p.line(b"F2", 22.0, LEFT, &doc.title);
    text_right(&mut p.page, b"F2", 14.0, RIGHT, p.y, &doc.number);
    p.y -= 30.0;
    let top = p.y;
    for line in &doc.issuer {
        for part in wrap(line, 50) {
            text(&mut p.page, b"F1", 10.0, LEFT, p.y, &part);
            p.y -= 14.0;
        }
    }
    let mut fy = top;
    for (label, value) in &doc.facts {
        text_right(&mut p.page, b"F1", 10.0, RIGHT - 130.0, fy, label);
        text_right(&mut p.page, b"F2", 10.0, RIGHT, fy, value);
        fy -= 14.0;
    }
    p.y = p.y.min(fy) - 16.0;
    p.line(b"F2", 10.0, LEFT, labels.party);
    p.y -= 14.0;
    for line in &doc.bill_to {
        for part in wrap(line, LINE_CHARS) {
            p.line(b"F1", 10.0, LEFT, &part);
            p.y -= 14.0;
        }
    }
    p.y -= 16.0;
    p.line(b"F2", 10.0, LEFT, labels.description);
    text_right(&mut p.page, b"F2", 10.0, RIGHT, p.y, labels.value);
    p.y -= 6.0;
    rule(&mut p.page, p.y);
    p.y -= 16.0;
    for (description, amount) in &doc.lines {
        for (i, part) in wrap(description, LINE_CHARS).iter().enumerate() {
            p.line(b"F1", 10.0, LEFT, part);
            if i == 0 {
                text_right(&mut p.page, b"F1", 10.0, RIGHT, p.y, amount);
            }
            p.y -= 13.0;
        }
        p.y -= 3.0;
    }
    p.need(16.0 * doc.totals.len() as f32 + 10.0);
    rule(&mut p.page, p.y + 10.0);
    p.y -= 6.0;
    for (i, (label, amount)) in doc.totals.iter().enumerate() {
        let font: &[u8] = if i + 1 == doc.totals.len() {
            b"F2"
        } else {
            b"F1"
        };
        text_right(&mut p.page, font, 10.0, RIGHT - 130.0, p.y, label);
        text_right(&mut p.page, font, 10.0, RIGHT, p.y, amount);
        p.y -= 16.0;
    }
    p.y -= 20.0;
    for note in &doc.notes {
        for part in wrap(note, 95) {
            p.line(b"F1", 9.0, LEFT, &part);
            p.y -= 13.0;
        }
    }
    let Pages { mut done, page, .. } = p;
    done.push(page);

    let mut pdf = Pdf::new();
    let (catalog, tree, regular, bold) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4));
    let ids: Vec<(Ref, Ref)> = (0..done.len())
        .map(|i| {
            let n = i32::try_from(i).unwrap_or(i32::MAX / 2 - 5) * 2;
            (Ref::new(5 + n), Ref::new(6 + n))
        })
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(ids.len()).unwrap_or(i32::MAX));
    for ((page, contents), content) in ids.iter().zip(done) {
        let mut writer = pdf.page(*page);
        writer.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        writer.parent(tree);
        writer.contents(*contents);
        {
            let mut resources = writer.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular);
            fonts.pair(Name(b"F2"), bold);
        }
        writer.finish();
        pdf.stream(*contents, &content.finish());
    }
    for (font, name) in [(regular, &b"Helvetica"[..]), (bold, b"Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(name))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.finish()
}

/// `s` in lines of at most `width` characters, broken between words (a word longer than a line
/// is cut).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let fits = line.chars().count() + word.chars().count() + usize::from(!line.is_empty());
        if !line.is_empty() && fits > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn text(c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &str) {
    c.begin_text();
    c.set_font(Name(font), size);
    c.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
    c.show(Str(&win_ansi(s)));
    c.end_text();
}

/// `s` ending at `right`.
fn text_right(c: &mut Content, font: &[u8], size: f32, right: f32, y: f32, s: &str) {
    let bold = font == b"F2";
    text(c, font, size, right - width(s, bold) * size / 1000.0, y, s);
}

fn rule(c: &mut Content, y: f32) {
    c.set_line_width(0.5);
    c.move_to(LEFT, y);
    c.line_to(RIGHT, y);
    c.stroke();
}

/// Width of `s` in Helvetica (or Helvetica-Bold), in thousandths of the font size, from the
/// fonts' published metrics: exact for amounts and dates, a fair estimate for other text.
fn width(s: &str, bold: bool) -> f32 {
    s.chars()
        .map(|ch| match ch {
            '0'..='9' | '£' | '$' | '€' | '#' => 556.0,
            '.' | ',' | ' ' | ':' => 278.0,
            '-' => 333.0,
            '(' | ')' => 333.0,
            '%' => 889.0,
            'I' => 278.0,
            'A'..='Z' => {
                if bold {
                    722.0
                } else {
                    667.0
                }
            }
            'i' | 'l' | 'j' => 222.0,
            'f' | 't' => 278.0,
            'r' => 333.0,
            'm' | 'w' => 833.0,
            _ => {
                if bold {
                    611.0
                } else {
                    556.0
                }
            }
        })
        .sum()
}

/// Whether `ch` can be printed in the documents' fonts (it has a WinAnsi code).
pub fn printable(ch: char) -> bool {
    ch == '\n' || win_ansi(ch.encode_utf8(&mut [0; 4])) != b"?" || ch == '?'
}

/// `s` in WinAnsiEncoding (Windows-1252): ASCII and Latin-1 as they are, the typographic marks
/// and € where Windows-1252 puts them, anything else as '?'.
pub fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| {
            let code = u32::from(ch);
            match code {
                0x20..=0x7E | 0xA0..=0xFF => code as u8,
                _ => match ch {
                    '€' => 0x80,
                    '‚' => 0x82,
                    'ƒ' => 0x83,
                    '„' => 0x84,
                    '…' => 0x85,
                    '†' => 0x86,
                    '‡' => 0x87,
                    'ˆ' => 0x88,
                    '‰' => 0x89,
                    'Š' => 0x8A,
                    '‹' => 0x8B,
                    'Œ' => 0x8C,
                    'Ž' => 0x8E,
                    '‘' => 0x91,
                    '’' => 0x92,
                    '“' => 0x93,
                    '”' => 0x94,
                    '•' => 0x95,
                    '–' => 0x96,
                    '—' => 0x97,
                    '˜' => 0x98,
                    '™' => 0x99,
                    'š' => 0x9A,
                    '›' => 0x9B,
                    'œ' => 0x9C,
                    'ž' => 0x9E,
                    'Ÿ' => 0x9F,
                    _ => b'?',
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_document_goes_on_to_more_pages() {
        let doc = Document {
            title: "Invoice".into(),
            number: "PMO27-0001".into(),
            issuer: vec!["PMO Masterclasses 2027".into()],
            bill_to: vec!["ACME Ltd".into()],
            facts: vec![],
            lines: (0..60)
                .map(|i| (format!("Session {i} with a title long enough to take two lines on the invoice, really"), "£1.00".into()))
                .collect(),
            totals: vec![("Total".into(), "£60.00".into())],
            notes: vec![],
        };
        let hay = String::from_utf8_lossy(&render(&doc)).into_owned();
        let pages: u32 = hay
            .split("/Count ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .expect("a page count");
        assert!(
            pages >= 3,
            "60 two-line items take at least 3 pages, not {pages}"
        );
        assert!(hay.contains("Session 59"));
    }

    #[test]
    fn long_descriptions_wrap_between_words() {
        let lines = wrap(
            "P3O in practice: portfolio, programme and project offices",
            20,
        );
        assert_eq!(
            lines,
            vec![
                "P3O in practice:",
                "portfolio, programme",
                "and project offices"
            ]
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 20));
        assert_eq!(wrap("", 20), vec![String::new()]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn pound_euro_and_dashes_are_in_winansi() {
        assert_eq!(
            win_ansi("£1 €2 – é"),
            vec![0xA3, b'1', b' ', 0x80, b'2', b' ', 0x96, b' ', 0xE9]
        );
        assert_eq!(win_ansi("漢"), b"?".to_vec());
    }

    #[test]
    fn a_document_is_a_pdf_with_its_text() {
        let doc = Document {
            title: "Invoice".into(),
            number: "PMO27-0001".into(),
            issuer: vec!["PMO Masterclasses 2027".into()],
            bill_to: vec!["ACME Ltd".into(), "1 High Street".into()],
            facts: vec![("Date".into(), "26 November 2026".into())],
            lines: vec![("Portfolio prioritisation".into(), "£145.00".into())],
            totals: vec![("Total".into(), "£145.00".into())],
            notes: vec!["Please pay by 10 December 2026.".into()],
        };
        let bytes = render(&doc);
        assert!(bytes.starts_with(b"%PDF-"));
        let hay = String::from_utf8_lossy(&bytes);
        assert!(hay.contains("/Helvetica") && hay.contains("/WinAnsiEncoding"));
        // The amount holds byte 0xA3 (£ in WinAnsi); a string with such a byte is written in hex.
        let lower = hay.to_lowercase();
        assert!(lower.contains("<a3313435"), "£ in WinAnsi");
        assert!(hay.contains("PMO27-0001"));
    }
}
