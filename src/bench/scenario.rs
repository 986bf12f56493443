//! The load scenarios: a flash sale (many people, one small session), steady booking (many
//! people spread over sessions with room for all) and the programme page.

use std::sync::Arc;

use anyhow::Context;
use rand::Rng;

use super::load::{self, Outcome};
use super::report::{FlashReport, PagesReport, SteadyReport};
use super::{BenchArgs, Target};
use crate::sessions::MAX_CAPACITY;

/// N people try to book one session of C seats, K at a time.
pub async fn flash(target: &Target, args: &BenchArgs) -> anyhow::Result<FlashReport> {
    let api = &target.api;
    let slug = api.create_event("flash").await?;
    let session = api
        .create_session(&slug, "Flash sale", args.capacity)
        .await?;
    let concurrency = args.concurrency as usize;
    api.warm_up(concurrency).await;

    let before = target.cpu.sample();
    let run = {
        let (api, slug) = (api.clone(), Arc::<str>::from(slug.as_str()));
        load::run(concurrency, args.attempts as usize, move |i| {
            let (api, slug) = (api.clone(), Arc::clone(&slug));
            async move {
                api.book(&slug, &format!("{slug}-{i}@example.org"), session)
                    .await
            }
        })
        .await?
    };
    let cpu = before.until(target.cpu.sample());

    let states = api.seat_states(session).await?;
    let confirmed_read_back = states.iter().filter(|s| *s == "confirmed").count();
    let seats_left = api
        .programme(&slug)
        .await?
        .into_iter()
        .find(|(id, _, _)| *id == session)
        .map(|(_, _, left)| left)
        .context("the flash-sale session is missing from the programme")?;
    if target.tidy_up {
        api.unpublish(&slug).await?;
    }
    Ok(FlashReport::new(
        args,
        &run,
        cpu,
        confirmed_read_back,
        states.len(),
        seats_left,
    ))
}

/// B people each book one of S sessions picked at random; every session has room for all.
pub async fn steady(target: &Target, args: &BenchArgs) -> anyhow::Result<SteadyReport> {
    let api = &target.api;
    let slug = api.create_event("steady").await?;
    let capacity = args.bookings.min(MAX_CAPACITY as u32);
    let mut sessions = Vec::with_capacity(args.sessions as usize);
    for n in 1..=args.sessions {
        sessions.push(
            api.create_session(&slug, &format!("Steady {n}"), capacity)
                .await?,
        );
    }
    // Picked up front, so the run measures bookings and not the random number generator.
    let picks: Arc<[i64]> = {
        let mut rng = rand::rng();
        (0..args.bookings)
            .map(|_| sessions[rng.random_range(0..sessions.len())])
            .collect()
    };
    let concurrency = args.concurrency as usize;
    api.warm_up(concurrency).await;

    let before = target.cpu.sample();
    let run = {
        let (api, slug) = (api.clone(), Arc::<str>::from(slug.as_str()));
        load::run(concurrency, picks.len(), move |i| {
            let (api, slug, picks) = (api.clone(), Arc::clone(&slug), Arc::clone(&picks));
            async move {
                api.book(&slug, &format!("{slug}-{i}@example.org"), picks[i])
                    .await
            }
        })
        .await?
    };
    let cpu = before.until(target.cpu.sample());

    let taken_read_back: i64 = api
        .programme(&slug)
        .await?
        .into_iter()
        .filter(|(id, _, _)| sessions.contains(id))
        .map(|(_, capacity, left)| capacity - left)
        .sum();
    if target.tidy_up {
        api.unpublish(&slug).await?;
    }
    let booked = run
        .attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Booked)
        .count();
    if taken_read_back != booked as i64 {
        eprintln!(
            "bench: WARNING: {booked} bookings were confirmed but the programme shows {taken_read_back} seats taken"
        );
    }
    Ok(SteadyReport::new(args, &run, cpu, taken_read_back))
}

/// The programme page of an event of S sessions over two days and three tracks, asked for R
/// times by C clients at once, as when registration opens; with the stylesheet and script it
/// loads, once, for the page weight.
pub async fn pages(target: &Target, args: &BenchArgs) -> anyhow::Result<PagesReport> {
    let api = &target.api;
    let slug = api.create_event("pages").await?;
    for n in 0..args.sessions {
        api.create_programme_session(&slug, n, args.sessions)
            .await?;
    }
    let path = format!("/events/{slug}");
    let first = api.page(&path).await;
    let Outcome::Served(_) = first else {
        anyhow::bail!("the programme page did not load: {first:?}");
    };
    let assets_bytes = api.page_assets(&path).await?;
    let concurrency = args.concurrency as usize;
    let before = target.cpu.sample();
    let run = {
        let (api, path) = (api.clone(), Arc::<str>::from(path.as_str()));
        load::run(concurrency, args.requests as usize, move |_| {
            let (api, path) = (api.clone(), Arc::clone(&path));
            async move { api.page(&path).await }
        })
        .await?
    };
    let cpu = before.until(target.cpu.sample());
    if target.tidy_up {
        api.unpublish(&slug).await?;
    }
    Ok(PagesReport::new(args, &run, cpu, assets_bytes))
}
