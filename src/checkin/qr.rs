//! Check-in codes as pictures: a QR code (the `qrcode` crate makes the module matrix) drawn by
//! us as SVG for the attendee's pages and as a black-and-white PNG for emails, where many mail
//! clients drop SVG. Both carry the standard quiet zone of four light modules around the code.

use std::fmt::Write as _;

/// Light modules around the code, as the QR standard asks for scanners to find it.
const QUIET_ZONE: usize = 4;

/// A QR code's modules, dark or light, row by row.
#[derive(Debug, Clone)]
pub struct QrImage {
    /// Modules per side, without the quiet zone.
    width: usize,
    dark: Vec<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code")]
    Encode(#[from] qrcode::types::QrError),
    #[error("cannot encode the QR code as PNG")]
    Png(#[from] png::EncodingError),
}

impl QrImage {
    /// The QR code of `text`, with error correction level M (15 % of the code may be damaged or
    /// dirty and still read), the usual choice for printed and on-screen tickets.
    pub fn encode(text: &str) -> Result<Self, QrError> {
        let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)?;
        Ok(Self {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect(),
        })
    }

    /// Modules per side including the quiet zone.
    pub fn side(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// Whether the module at (`x`, `y`), counted with the quiet zone, is dark.
    fn is_dark(&self, x: usize, y: usize) -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// An SVG of `pixels` × `pixels` for a page, as an image with `label` as its accessible
    /// name. Colours and size are attributes, not styles, so a strict `style-src` allows it.
    pub fn svg(&self, label: &str, pixels: u32) -> String {
        let side = self.side();
        // One path: each run of dark modules in a row is one rectangle.
        let mut path = String::new();
        for y in 0..side {
            let mut x = 0;
            while x < side {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < side && self.is_dark(x, y) {
                    x += 1;
                }
                let run = x - start;
                let _ = write!(path, "M{start} {y}h{run}v1h-{run}z");
            }
        }
        format!(
            concat!(
                r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" "##,
                r##"width="{pixels}" height="{pixels}" role="img" aria-label="{label}" "##,
                r##"shape-rendering="crispEdges"><title>{label}</title>"##,
                r##"<rect width="{side}" height="{side}" fill="#ffffff"/>"##,
                r##"<path fill="#000000" d="{path}"/></svg>"##
            ),
            side = side,
            pixels = pixels,
            label = minijinja::HtmlEscape(label),
            path = path,
        )
    }

    /// Width and height of [`QrImage::png`] at `scale`, in pixels.
    pub fn png_pixels(&self, scale: u32) -> u32 {
        // At most 185 modules (version 40 with its quiet zone) of 32 pixels: well within u32.
        self.side() as u32 * scale.clamp(1, 32)
    }

    /// A greyscale PNG, one bit per pixel, each module `scale` pixels square (1 to 32).
    pub fn png(&self, scale: u32) -> Result<Vec<u8>, QrError> {
        let side = self.png_pixels(scale);
        let pixels = side as usize;
        let scale = pixels / self.side();
        // One bit per pixel, most significant first, each row padded to whole bytes; a set bit is
        // white.
        let row_bytes = pixels.div_ceil(8);
        let mut data = Vec::with_capacity(row_bytes * pixels);
        for y in 0..self.side() {
            let mut row = vec![0u8; row_bytes];
            for px in 0..pixels {
                if !self.is_dark(px / scale, y) {
                    row[px / 8] |= 0x80 >> (px % 8);
                }
            }
            for _ in 0..scale {
                data.extend_from_slice(&row);
            }
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&data)?;
        writer.finish()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "1234.56.0123456789ABCDEF0123456789ABCDEF";

    /// The pixels of a 1-bit greyscale PNG, true where black, and its size.
    fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<bool>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buffer).expect("one frame");
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Grayscale, png::BitDepth::One)
        );
        let (w, h) = (info.width as usize, info.height as usize);
        let mut black = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let byte = buffer[y * info.line_size + x / 8];
                black.push(byte & (0x80 >> (x % 8)) == 0);
            }
        }
        (info.width, info.height, black)
    }

    #[test]
    fn a_token_fits_a_small_code() {
        let code = QrImage::encode(TOKEN).expect("encodes");
        // Upper-case hex, digits and dots use the compact alphanumeric mode: version 3 at most.
        assert!(code.width <= 29, "{} modules", code.width);
        assert_eq!(code.side(), code.width + 8);
    }

    #[test]
    fn the_png_is_the_code_scaled_with_its_quiet_zone() {
        let code = QrImage::encode(TOKEN).expect("encodes");
        let bytes = code.png(6).expect("a PNG");

        let (width, height, black) = decode_png(&bytes);

        let side = code.side() * 6;
        assert_eq!((width, height), (code.png_pixels(6), code.png_pixels(6)));
        assert_eq!(width as usize, side);
        for y in 0..side {
            for x in 0..side {
                assert_eq!(
                    black[y * side + x],
                    code.is_dark(x / 6, y / 6),
                    "pixel {x},{y}"
                );
            }
        }
        assert!(
            !black[..side * 6 * 4].iter().any(|b| *b),
            "a light quiet zone on top"
        );
    }

    #[test]
    fn the_png_reads_back_as_the_token() {
        let bytes = QrImage::encode(TOKEN)
            .expect("encodes")
            .png(4)
            .expect("a PNG");
        let (width, height, black) = decode_png(&bytes);

        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| {
                if black[y * width as usize + x] {
                    0
                } else {
                    255
                }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one code found");
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, TOKEN);
    }

    #[test]
    fn the_svg_has_its_size_its_label_and_no_style() {
        let code = QrImage::encode(TOKEN).expect("encodes");

        let svg = code.svg("Check-in code for \"Risk & <Issues>\"", 200);

        let side = code.side();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains(&format!(r#"viewBox="0 0 {side} {side}""#)));
        assert!(svg.contains(r#"width="200" height="200""#));
        assert!(svg.contains(r#"role="img""#));
        assert!(
            svg.contains("aria-label=\"Check-in code for &quot;Risk &amp; &lt;Issues&gt;&quot;\"")
        );
        assert!(!svg.contains("<Issues>"));
        assert!(!svg.contains("style"), "{svg}");
        // Every dark module is drawn, and nothing else.
        let path = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a path");
        let drawn: usize = path
            .split('h')
            .skip(1)
            .filter_map(|rest| rest.split('v').next()?.parse::<usize>().ok())
            .sum();
        assert_eq!(drawn, code.dark.iter().filter(|d| **d).count());
    }
}
