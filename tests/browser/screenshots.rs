//! Screenshots of the page shown, at a desktop and a phone width, the whole page long, saved in
//! `<target dir>/screenshots/` for a person to look at.

use std::path::PathBuf;

use crate::harness::{Browser, DESKTOP};

/// A small phone's viewport.
pub const PHONE: (u32, u32) = (360, 740);

/// Chromium cannot capture arbitrarily tall pages; past this, the bottom is cut off.
const MAX_HEIGHT: u32 = 12_000;

/// Where [`screenshots`] saved its pictures.
#[derive(Debug, Clone)]
pub struct Screenshots {
    pub desktop: PathBuf,
    pub phone: PathBuf,
}

/// The folder beside the build's own: `CARGO_TARGET_TMPDIR` is `<target dir>/tmp`, so this
/// follows `CARGO_TARGET_DIR`.
pub fn screenshot_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir above CARGO_TARGET_TMPDIR")
        .join("screenshots")
}

/// Saves `<name>-desktop.png` (1280 wide) and `<name>-phone.png` (360 wide), each as long as the
/// page, and puts the window back as it was.
pub async fn screenshots(browser: &Browser, name: &str) -> Screenshots {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let window = browser.window_size().await;
    let shots = Screenshots {
        desktop: dir.join(format!("{name}-desktop.png")),
        phone: dir.join(format!("{name}-phone.png")),
    };
    for (size, path) in [(DESKTOP, &shots.desktop), (PHONE, &shots.phone)] {
        let png = full_page(browser, size).await;
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    browser.set_window_size(window.0, window.1).await;
    shots
}

/// A PNG of the whole page laid out `width` wide, at least `height` tall: the viewport is made
/// as tall as the page, since WebDriver captures only the viewport.
async fn full_page(browser: &Browser, (width, height): (u32, u32)) -> Vec<u8> {
    browser.set_viewport_size(width, height).await;
    let page_height = browser
        .execute(
            "return Math.ceil(Math.max(document.documentElement.scrollHeight, \
             document.body ? document.body.scrollHeight : 0));",
            vec![],
        )
        .await
        .as_u64()
        .and_then(|h| u32::try_from(h).ok())
        .expect("the page's height");
    let full = page_height.clamp(height, MAX_HEIGHT);
    if full > height {
        browser.set_viewport_size(width, full).await;
    }
    browser.screenshot().await
}
