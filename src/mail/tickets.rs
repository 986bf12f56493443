//! Check-in codes in emails: the booking confirmation carries one for each seat it confirms,
//! the agenda one for each confirmed seat of the timetable. Each code is made from its seat
//! when the message is rendered (nothing secret is stored in the outbox) and travels as an
//! inline PNG part that the HTML shows by `cid:`; SVG would be dropped by many mail clients.

use super::data::{MailData, SeatMail, Template, TicketMail};
use crate::checkin::qr::{QrError, QrImage};
use crate::checkin::token;
use crate::tokens::TokenKey;

/// Pixels per QR module in the PNG: a typical code (33 modules with its margin) is about 200
/// pixels wide, easy to scan from a phone screen or a print-out.
const SCALE: u32 = 6;

/// A check-in code ready to send: how the templates show it, and its picture.
pub struct Ticket {
    pub mail: TicketMail,
    pub png: Vec<u8>,
}

/// The check-in codes `template` carries for `data`, in timetable order; none for other emails.
pub fn for_email(
    template: Template,
    data: &MailData,
    key: &TokenKey,
    cid_domain: &str,
) -> Result<Vec<Ticket>, QrError> {
    let seats: &[SeatMail] = match template {
        Template::BookingConfirmed => &data.seats,
        Template::Agenda => &data.agenda,
        _ => &[],
    };
    seats
        .iter()
        .filter(|seat| seat.state == "confirmed" && seat.seat_id > 0)
        .map(|seat| {
            let code = QrImage::encode(&token::code(key, seat.seat_id, seat.session_id))?;
            let png = code.png(SCALE)?;
            let size = code.png_pixels(SCALE);
            Ok(Ticket {
                mail: TicketMail {
                    seat_id: seat.seat_id,
                    title: seat.title.clone(),
                    day: seat.day.clone(),
                    time: seat.time.clone(),
                    cid: format!("checkin-{}@{cid_domain}", seat.seat_id),
                    size,
                },
                png,
            })
        })
        .collect()
}
