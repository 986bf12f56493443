//! Table definitions shared by both backends; the migrations in `migrations/{sqlite,postgres}` create them.

diesel::table! {
    events (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        venue -> Text,
        time_zone -> Text,
        currency -> Text,
        registration_opens_at -> Nullable<Timestamp>,
        registration_closes_at -> Nullable<Timestamp>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        revision -> Integer,
        allow_clashes -> Bool,
        vat_rate_bp -> Integer,
        refund_policy -> Text,
        invoices_allowed -> Bool,
        invoice_prefix -> Nullable<Text>,
        invoice_next -> Integer,
        invoice_due_days -> Integer,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        event_id -> BigInt,
        title -> Text,
        abstract_text -> Text,
        speakers -> Text,
        track -> Nullable<Text>,
        room -> Nullable<Text>,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        capacity -> Integer,
        taken -> Integer,
        price_minor -> BigInt,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sequence -> Integer,
        revision -> Integer,
        waitlist_enabled -> Bool,
        cpd_tenths -> Integer,
    }
}

diesel::table! {
    organisers (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        role -> Text,
        created_at -> Timestamp,
        password_hash -> Nullable<Text>,
    }
}

diesel::table! {
    organiser_sessions (id) {
        id -> BigInt,
        organiser_id -> BigInt,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    organiser_links (id) {
        id -> BigInt,
        organiser_id -> BigInt,
        kind -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        organiser_id -> BigInt,
        token_hash -> Text,
        label -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    bookings (id) {
        id -> BigInt,
        event_id -> BigInt,
        reference -> Text,
        manage_token_hash -> Text,
        attendee_name -> Text,
        attendee_email -> Text,
        attendee_organisation -> Nullable<Text>,
        total_minor -> BigInt,
        currency -> Text,
        status -> Text,
        payment_status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        hold_expires_at -> Nullable<Timestamp>,
        paid_minor -> BigInt,
        refunded_minor -> BigInt,
        refund_policy -> Nullable<Text>,
    }
}

diesel::table! {
    waitlist_entries (id) {
        id -> BigInt,
        session_id -> BigInt,
        reference -> Text,
        manage_token_hash -> Text,
        attendee_name -> Text,
        attendee_email -> Text,
        email_key -> Text,
        attendee_organisation -> Nullable<Text>,
        state -> Text,
        queue_key -> BigInt,
        offered_at -> Nullable<Timestamp>,
        offer_expires_at -> Nullable<Timestamp>,
        booking_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idempotency_key) {
        scope -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        state -> Text,
        status -> Nullable<Integer>,
        body -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    seats (id) {
        id -> BigInt,
        booking_id -> BigInt,
        session_id -> BigInt,
        attendee_email -> Text,
        state -> Text,
        price_minor -> BigInt,
        created_at -> Timestamp,
        cancelled_at -> Nullable<Timestamp>,
        checked_in_at -> Nullable<Timestamp>,
        checked_in_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    email_jobs (id) {
        id -> BigInt,
        template -> Text,
        recipient -> Text,
        data -> Text,
        message_id -> Text,
        booking_id -> Nullable<BigInt>,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    agenda_reminders (event_id, attendee_email) {
        event_id -> BigInt,
        attendee_email -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    payments (id) {
        id -> BigInt,
        booking_id -> BigInt,
        provider -> Text,
        intent_id -> Nullable<Text>,
        amount_minor -> BigInt,
        currency -> Text,
        state -> Text,
        refunded_minor -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        succeeded_at -> Nullable<Timestamp>,
        next_check_at -> Nullable<Timestamp>,
        checks -> Integer,
        checked_at -> Nullable<Timestamp>,
        final_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    stripe_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> BigInt,
        booking_id -> BigInt,
        payment_id -> BigInt,
        amount_minor -> BigInt,
        currency -> Text,
        reason -> Text,
        note -> Nullable<Text>,
        state -> Text,
        provider_refund_id -> Nullable<Text>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    invoices (id) {
        id -> BigInt,
        event_id -> BigInt,
        booking_id -> BigInt,
        number -> Text,
        kind -> Text,
        credits_invoice_id -> Nullable<BigInt>,
        company -> Text,
        billing_address -> Text,
        vat_number -> Nullable<Text>,
        po_number -> Nullable<Text>,
        lines -> Text,
        net_minor -> BigInt,
        vat_minor -> BigInt,
        gross_minor -> BigInt,
        currency -> Text,
        vat_rate_bp -> Integer,
        issued_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        state -> Text,
        paid_at -> Nullable<Timestamp>,
        reminded_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        organiser_id -> Nullable<BigInt>,
        action -> Text,
        subject -> Text,
        before -> Nullable<Text>,
        after -> Nullable<Text>,
    }
}

diesel::table! {
    sign_in_attempts (id) {
        id -> BigInt,
        kind -> Text,
        account -> Nullable<Text>,
        client -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::joinable!(sessions -> events (event_id));
diesel::joinable!(invoices -> bookings (booking_id));
diesel::joinable!(payments -> bookings (booking_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(email_jobs -> bookings (booking_id));
diesel::joinable!(api_tokens -> organisers (organiser_id));
diesel::joinable!(organiser_sessions -> organisers (organiser_id));
diesel::joinable!(organiser_links -> organisers (organiser_id));
diesel::joinable!(bookings -> events (event_id));
diesel::joinable!(seats -> bookings (booking_id));
diesel::joinable!(seats -> sessions (session_id));
diesel::joinable!(waitlist_entries -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    events,
    sessions,
    organisers,
    organiser_sessions,
    organiser_links,
    api_tokens,
    bookings,
    seats,
    email_jobs,
    agenda_reminders,
    waitlist_entries,
    idempotency_keys,
    payments,
    stripe_events,
    refunds,
    invoices,
    audit_log,
    sign_in_attempts
);
