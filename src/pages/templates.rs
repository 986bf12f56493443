//! Page templates: the files under `src/pages/templates/`, embedded in the binary and rendered
//! with minijinja (the engine of the emails), HTML-escaped, with strict variables so that a
//! misspelt name fails a test instead of leaving a blank on a page.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::assets;
use super::PageError;

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("templates/", $path)))),*]
    };
}

/// Every template, by its file name.
const FILES: &[(&str, &str)] = embed![
    "_layout.html",
    "_macros.html",
    "error.html",
    "events.html",
    "programme.html",
    "session.html",
    "book.html",
    "booked.html",
    "manage.html",
    "cancel.html",
    "pay.html",
    "paid.html",
    "waitlist_join.html",
    "waitlist_place.html",
    "dashboard/_dashboard.html",
    "dashboard/login.html",
    "dashboard/forgot.html",
    "dashboard/password.html",
    "dashboard/home.html",
    "dashboard/team.html",
    "dashboard/tokens.html",
    "dashboard/people/session.html",
    "dashboard/people/cancel.html",
    "dashboard/people/outbox.html",
    "dashboard/people/bookings.html",
    "dashboard/people/booking.html",
    "dashboard/people/confirm.html",
    "dashboard/people/overdue.html",
    "dashboard/programme/_event_fields.html",
    "dashboard/programme/events.html",
    "dashboard/programme/event.html",
    "dashboard/programme/session.html",
    "dashboard/programme/cancel.html",
    "dashboard/checkin/sessions.html",
    "dashboard/checkin/door.html",
    "dashboard/checkin/certificate.html",
    "dashboard/insights/audit.html",
    "dashboard/insights/stats.html",
];

/// Text for HTML: `&`, `<`, `>`, `"` and `'` as character references.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(site_name: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // minijinja's HTML escaping also escapes `/`, which every address on a page is full of;
        // `/` is harmless in text and in quoted attributes, so only the five that matter are.
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
                if let Some(text) = value.as_str() {
                    return out.write_str(&escape(text)).map_err(minijinja::Error::from);
                }
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, source) in FILES {
            env.add_template(name, source)?;
        }
        env.add_global("site_name", site_name.to_owned());
        env.add_global("css_url", assets::url("site.css"));
        env.add_global("programme_js_url", assets::url("programme.js"));
        env.add_global("pay_js_url", assets::url("pay.js"));
        env.add_global("checkin_js_url", assets::url("checkin.js"));
        Ok(Self { env })
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, PageError> {
        let template = self.env.get_template(name).map_err(|e| {
            tracing::error!(template = name, error = %e, "page template missing");
            PageError::internal()
        })?;
        template.render(context).map_err(|e| {
            tracing::error!(template = name, error = %format!("{e:#}"), "page template failed");
            PageError::internal()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_addresses_stay_readable() {
        let templates = Templates::new("Site <&>").expect("templates");
        let html = templates
            .render(
                "error.html",
                minijinja::context! {
                    title => "<script>alert('x')</script>",
                    message => "a \"quoted\" & /slashed/ text",
                    status => 404,
                    next => minijinja::context! { label => "Home", href => "/events/a-b" },
                },
            )
            .expect("rendered");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("a &quot;quoted&quot; &amp; /slashed/ text"),
            "{html}"
        );
        assert!(html.contains("href=\"/events/a-b\""), "{html}");
        assert!(html.contains("Site &lt;&amp;&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
