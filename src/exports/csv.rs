//! A small CSV writer whose files open cleanly in Excel, LibreOffice and Google Sheets.
//!
//! - UTF-8 with a byte-order mark: without one, Excel reads a CSV file in the machine's legacy
//!   code page and garbles é, 中文 and emoji.
//! - Every row, the last one too, ends in CRLF (RFC 4180).
//! - A field is quoted only when it must be: when it contains a comma, a double quote, CR or LF.
//!   A double quote inside is doubled. Fields left bare keep numbers reading as numbers.
//! - Formula injection is neutralised (OWASP, "CSV Injection"): a text field that starts with
//!   `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so a spreadsheet shows it as text instead
//!   of evaluating it. Numbers this service writes itself ([`Cell::amount`], [`Cell::count`]) are
//!   written as they are, so `-145.00` stays a negative number; a person's name `-1+2` does not.

use std::fmt;

/// What starts every file: the UTF-8 byte-order mark.
pub const BOM: &str = "\u{feff}";

/// What ends every row.
pub const LINE_END: &str = "\r\n";

/// The first characters that make a spreadsheet read a field as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A sum of money as a spreadsheet reads it: major units with the currency's decimals
/// (`145.00`, `-0.50`; whole units such as `1200` for currencies without minor units, as
/// emails and invoices show them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount(String);

impl Amount {
    pub fn new(minor: i64, currency: &str) -> Self {
        if crate::mail::compose::whole_units(currency) {
            return Self(minor.to_string());
        }
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        Self(format!("{sign}{}.{:02}", abs / 100, abs % 100))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One field of a row: text from people or the database (neutralised), or a number written by
/// this service (as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell(Value);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Number(String),
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Self {
        Self(Value::Text(value.into()))
    }

    /// Text, or an empty field when there is none.
    pub fn optional(value: Option<&str>) -> Self {
        Self::text(value.unwrap_or_default())
    }

    pub fn amount(amount: &Amount) -> Self {
        Self(Value::Number(amount.0.clone()))
    }

    pub fn count(count: i64) -> Self {
        Self(Value::Number(count.to_string()))
    }

    fn write_to(&self, out: &mut String) {
        let (value, neutralise) = match &self.0 {
            Value::Text(text) => (text.as_str(), text.starts_with(FORMULA_STARTS)),
            Value::Number(number) => (number.as_str(), false),
        };
        let quote = value.contains([',', '"', '\r', '\n']);
        if quote {
            out.push('"');
        }
        if neutralise {
            out.push('\'');
        }
        if quote {
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Self::text(value)
    }
}

impl From<&String> for Cell {
    fn from(value: &String) -> Self {
        Self::text(value.as_str())
    }
}

impl From<&Option<String>> for Cell {
    fn from(value: &Option<String>) -> Self {
        Self::optional(value.as_deref())
    }
}

impl From<&Amount> for Cell {
    fn from(amount: &Amount) -> Self {
        Self::amount(amount)
    }
}

/// A row type of an export: its header and how one row is written.
pub trait Record {
    /// The column names, in order.
    const HEADER: &'static [&'static str];

    /// The row's fields, one per column of [`Record::HEADER`].
    fn cells(&self) -> Vec<Cell>;
}

/// A CSV file being written: byte-order mark, header, rows.
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new(header: &[&str]) -> Self {
        let mut writer = Self {
            out: String::from(BOM),
        };
        writer.row(header.iter().map(|name| Cell::text(*name)));
        writer
    }

    pub fn row(&mut self, cells: impl IntoIterator<Item = Cell>) {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            cell.write_to(&mut self.out);
        }
        self.out.push_str(LINE_END);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `rows` as a whole CSV file, with its header.
pub fn to_csv<R: Record>(rows: &[R]) -> String {
    let mut writer = Writer::new(R::HEADER);
    for row in rows {
        writer.row(row.cells());
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row holding `cells`, without the BOM and header.
    fn line(cells: Vec<Cell>) -> String {
        let mut writer = Writer { out: String::new() };
        writer.row(cells);
        writer.finish()
    }

    fn text(value: &str) -> String {
        line(vec![Cell::text(value)])
    }

    #[test]
    fn a_file_starts_with_the_byte_order_mark_and_its_header() {
        let file = Writer::new(&["reference", "name"]).finish();
        assert_eq!(file, "\u{feff}reference,name\r\n");
        assert!(file.as_bytes().starts_with(&[0xEF, 0xBB, 0xBF]));
    }

    #[test]
    fn rows_end_in_crlf_and_plain_fields_stay_bare() {
        let mut writer = Writer::new(&["a", "b"]);
        writer.row(vec![Cell::text("Ada Lovelace"), Cell::text("")]);
        writer.row(vec![Cell::text("x"), Cell::count(3)]);
        assert_eq!(writer.finish(), "\u{feff}a,b\r\nAda Lovelace,\r\nx,3\r\n");
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted_with_quotes_doubled() {
        assert_eq!(text("Smith, Jo"), "\"Smith, Jo\"\r\n");
        assert_eq!(text("Jo \"JJ\" Smith"), "\"Jo \"\"JJ\"\" Smith\"\r\n");
        assert_eq!(text("line one\nline two"), "\"line one\nline two\"\r\n");
        assert_eq!(text("line one\r\nline two"), "\"line one\r\nline two\"\r\n");
        assert_eq!(text("\""), "\"\"\"\"\r\n");
        assert_eq!(text("it's; fine"), "it's; fine\r\n");
    }

    #[test]
    fn unicode_is_written_as_utf8_unchanged() {
        for value in ["Renée Dubé", "中文名字", "🎉 Party 👩‍💻", "Zoë, ąęł"] {
            let written = text(value);
            let bare = written.trim_end_matches("\r\n").trim_matches('"');
            assert_eq!(bare, value);
        }
        assert_eq!(text("中文"), "中文\r\n");
        assert_eq!(text("emoji 🎉").as_bytes()[6..10], [0xF0, 0x9F, 0x8E, 0x89]);
    }

    #[test]
    fn formula_payloads_are_neutralised_with_a_leading_apostrophe() {
        assert_eq!(
            text("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n"
        );
        assert_eq!(text("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0\r\n");
        assert_eq!(text("@SUM(A1:A9)"), "'@SUM(A1:A9)\r\n");
        assert_eq!(text("-2+3"), "'-2+3\r\n");
        assert_eq!(text("-1+2"), "'-1+2\r\n");
        assert_eq!(text("\t=1"), "'\t=1\r\n");
        assert_eq!(text("\r=1"), "\"'\r=1\"\r\n");
        assert_eq!(text("+1"), "'+1\r\n");
        // Only the first character counts.
        assert_eq!(text("a=1"), "a=1\r\n");
        assert_eq!(text("Smith-Jones"), "Smith-Jones\r\n");
    }

    #[test]
    fn numbers_we_write_are_not_mangled() {
        assert_eq!(
            line(vec![
                Cell::amount(&Amount::new(-14_500, "GBP")),
                Cell::count(-3)
            ]),
            "-145.00,-3\r\n"
        );
        // The same characters typed by a person are text.
        assert_eq!(text("-145.00"), "'-145.00\r\n");
    }

    #[test]
    fn amounts_are_major_units_with_the_currencys_decimals() {
        let cases = [
            (14_500, "GBP", "145.00"),
            (0, "EUR", "0.00"),
            (5, "EUR", "0.05"),
            (-50, "EUR", "-0.50"),
            (-14_505, "USD", "-145.05"),
            (123_456_789, "CHF", "1234567.89"),
            (1_200, "JPY", "1200"),
            (i64::MIN, "EUR", "-92233720368547758.08"),
        ];
        for (minor, currency, expected) in cases {
            assert_eq!(Amount::new(minor, currency).as_str(), expected);
        }
    }

    #[test]
    fn absent_text_is_an_empty_field() {
        assert_eq!(
            line(vec![
                Cell::optional(None),
                Cell::from(&Some("x".to_owned()))
            ]),
            ",x\r\n"
        );
    }

    struct Pair(&'static str, i64);

    impl Record for Pair {
        const HEADER: &'static [&'static str] = &["name", "count"];

        fn cells(&self) -> Vec<Cell> {
            vec![Cell::text(self.0), Cell::count(self.1)]
        }
    }

    #[test]
    fn records_are_written_under_their_header() {
        assert_eq!(
            to_csv(&[Pair("@a", 1), Pair("b", -2)]),
            "\u{feff}name,count\r\n'@a,1\r\nb,-2\r\n"
        );
        assert_eq!(to_csv::<Pair>(&[]), "\u{feff}name,count\r\n");
    }
}
