//! What emails are rendered with. A job stores one of these as JSON when the change that owes the
//! email commits, so the email says what was true then. Nothing secret is stored: the manage link
//! is added when the message is rendered (see [`MailData::manage_url`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The event as emails show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMail {
    pub slug: String,
    pub name: String,
    pub venue: String,
    /// IANA time zone; `day` and `time` of every seat are already in it.
    pub time_zone: String,
}

/// An invitation to the organisers, or a password reset: which link, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountMail {
    /// The `organiser_links` row; the link's token is derived from it when sending.
    pub link_id: i64,
    /// `owner`, `admin` or `checkin`.
    pub role: String,
    /// Who sent the invitation.
    pub invited_by: Option<String>,
    /// "7 days", "60 minutes".
    pub valid_until: String,
}

/// One seat (one session of a booking) as emails and calendar files show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatMail {
    /// Stable per seat: the calendar UID is made from it.
    pub seat_id: i64,
    pub session_id: i64,
    pub title: String,
    pub room: Option<String>,
    pub speakers: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// In the event's time zone, ready to print: "Wednesday 6 January 2027".
    pub day: String,
    /// In the event's time zone: "09:00–10:30".
    pub time: String,
    /// The session's calendar SEQUENCE: it goes up whenever its time or room changes.
    pub sequence: i32,
    /// `confirmed`, `held` or `cancelled`; a cancelled seat goes into calendars as CANCELLED.
    pub state: String,
    /// "£145.00", or `None` when free.
    pub price: Option<String>,
}

/// What changed about a session, for the `session_changed` email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMail {
    pub previous_day: String,
    pub previous_time: String,
    pub previous_room: Option<String>,
}

/// A place on a session's waitlist, as emails show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitlistMail {
    /// The session waited for; its `state` is the entry's (`waiting`, `offered`, `expired`, ...)
    /// and its `seat_id` is 0: a waitlist email carries no calendar file.
    pub session: SeatMail,
    /// Place in the queue (1 is next), while waiting.
    pub position: Option<i64>,
    /// Until when an offered seat is kept, in the event's time zone,
    /// e.g. "09:00 on Thursday 7 January 2027".
    pub offer_until: Option<String>,
}

/// Money received, as a receipt shows it: prices include VAT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMail {
    /// What was paid, "£145.00".
    pub gross: String,
    /// Of which net of VAT.
    pub net: String,
    pub vat: String,
    /// "20%", or `None` when no VAT is charged.
    pub vat_rate: Option<String>,
}

/// An invoice (or credit note) an email announces; the PDF is attached when the message is
/// rendered, from the stored invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceMail {
    /// "PMO27-0001".
    pub number: String,
    pub gross: String,
    pub net: String,
    pub vat: String,
    /// "10 December 2026": payment is due by then.
    pub due: String,
    pub po_number: Option<String>,
    pub credit_note: bool,
    /// For a credit note: the invoice it credits.
    #[serde(default)]
    pub credits_number: Option<String>,
    /// For a credit note: what is still to pay of the invoice, "£72.50".
    #[serde(default)]
    pub outstanding: Option<String>,
    /// For a credit note: the invoice had been paid, so the amount is owed back.
    #[serde(default)]
    pub already_paid: bool,
}

/// Money given back, for the `payment_refunded` email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundMail {
    /// "£72.50".
    pub amount: String,
    /// Why, in a sentence that follows "We have refunded …": "because your payment arrived
    /// after the places you held had been released and taken".
    pub why: String,
    /// The booking is left without any place (nothing of it was kept).
    pub nothing_kept: bool,
}

/// A seat's check-in code as an email shows it: a QR code picture sent with the message as an
/// inline PNG part and shown by `cid:`. Made when the message is rendered, never stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketMail {
    pub seat_id: i64,
    pub title: String,
    pub day: String,
    pub time: String,
    /// The picture's Content-ID, for `<img src="cid:…">`.
    pub cid: String,
    /// Width and height of the picture, in pixels.
    pub size: u32,
}

/// Everything an email about one booking is rendered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailData {
    pub event: EventMail,
    /// The booking's human reference, e.g. `PMO-7K3F9Q`.
    pub reference: String,
    pub attendee_name: String,
    /// The seats this email is about: the ones just booked, cancelled or changed.
    pub seats: Vec<SeatMail>,
    /// The attendee's personal timetable: every seat they hold in the event, in time order.
    pub agenda: Vec<SeatMail>,
    /// Amount due for the booking, "£240.00"; `None` when nothing is to pay.
    pub total: Option<String>,
    /// For `session_changed`: how it was before.
    pub change: Option<ChangeMail>,
    /// For a held booking: until when its seats are kept, in the event's time zone,
    /// e.g. "14:15 on Wednesday 6 January 2027".
    #[serde(default)]
    pub hold_until: Option<String>,
    /// For `booking_held`: the booking was changed (an organiser moved a place to another
    /// session), not made just now.
    #[serde(default)]
    pub moved: bool,
    /// The total has been paid (a held booking confirmed by its payment).
    #[serde(default)]
    pub paid: bool,
    /// For a receipt: what was paid, with its VAT.
    #[serde(default)]
    pub payment: Option<PaymentMail>,
    /// For `payment_refunded`: what goes back and why.
    #[serde(default)]
    pub refund: Option<RefundMail>,
    /// For `payment_failed`: what the bank or card issuer said.
    #[serde(default)]
    pub payment_error: Option<String>,
    /// A booking confirmed by invoice: the invoice, attached as a PDF.
    #[serde(default)]
    pub invoice: Option<InvoiceMail>,
    /// For the waitlist emails: the entry. `reference` is then the entry's reference and the
    /// manage link leads to the entry.
    #[serde(default)]
    pub waitlist: Option<WaitlistMail>,
    /// For the organiser account emails: the link to use (its token is never stored).
    #[serde(default)]
    pub account: Option<AccountMail>,
    /// The account link itself, filled in when the message is rendered, like `manage_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_url: Option<String>,
    /// Absolute link to manage the booking. Never stored: filled in when the message is rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_url: Option<String>,
    /// Absolute link to the booking's agenda as a calendar file. Filled in like `manage_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agenda_url: Option<String>,
}

/// The emails there are: one folder each under `emails/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    BookingConfirmed,
    BookingCancelled,
    SessionChanged,
    SessionCancelled,
    Agenda,
    /// A booking with a price: seats held until `hold_until`, waiting for payment.
    BookingHeld,
    /// The hold ran out before payment: the seats went back.
    HoldExpired,
    /// On the waitlist, at `waitlist.position`.
    WaitlistJoined,
    /// A seat is offered until `waitlist.offer_until`: claim or decline it.
    WaitlistOffer,
    /// The offer was not claimed in time and passed to the next person.
    OfferExpired,
    /// The person left the waitlist (or declined an offer).
    WaitlistLeft,
    /// A card payment was declined; the seats stay held until `hold_until`.
    PaymentFailed,
    /// Money was refunded (`refund`).
    PaymentRefunded,
    /// A credit note against the booking's invoice (`invoice`, attached as a PDF).
    CreditNote,
    /// An invoice is past its due date (`invoice`, attached again).
    InvoiceReminder,
    /// A colleague is invited to the organisers (`account`): choose a name and a password.
    OrganiserInvite,
    /// An organiser asked to reset their password (`account`).
    PasswordReset,
    /// A certificate of attendance, attached as a PDF made when the email is sent.
    Certificate,
}

impl Template {
    pub const ALL: [Template; 18] = [
        Self::BookingConfirmed,
        Self::BookingCancelled,
        Self::SessionChanged,
        Self::SessionCancelled,
        Self::Agenda,
        Self::BookingHeld,
        Self::HoldExpired,
        Self::WaitlistJoined,
        Self::WaitlistOffer,
        Self::OfferExpired,
        Self::WaitlistLeft,
        Self::PaymentFailed,
        Self::PaymentRefunded,
        Self::CreditNote,
        Self::InvoiceReminder,
        Self::OrganiserInvite,
        Self::PasswordReset,
        Self::Certificate,
    ];

    /// The folder name under `emails/`, also stored in the job.
    pub fn name(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking_confirmed",
            Self::BookingCancelled => "booking_cancelled",
            Self::SessionChanged => "session_changed",
            Self::SessionCancelled => "session_cancelled",
            Self::Agenda => "agenda",
            Self::BookingHeld => "booking_held",
            Self::HoldExpired => "hold_expired",
            Self::WaitlistJoined => "waitlist_joined",
            Self::WaitlistOffer => "waitlist_offer",
            Self::OfferExpired => "offer_expired",
            Self::WaitlistLeft => "waitlist_left",
            Self::PaymentFailed => "payment_failed",
            Self::PaymentRefunded => "payment_refunded",
            Self::CreditNote => "credit_note",
            Self::InvoiceReminder => "invoice_reminder",
            Self::OrganiserInvite => "organiser_invite",
            Self::PasswordReset => "password_reset",
            Self::Certificate => "certificate",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A message ready to send: both parts and, where the email carries one, a calendar file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// An RFC 5545 calendar (`METHOD:PUBLISH`), attached as `agenda.ics`.
    pub calendar: Option<String>,
}
