//! Every wait of the bench is a poll with a deadline: the state waited for is probed, the
//! pause between probes grows, and past the deadline the caller says what the last probe
//! saw. No fixed sleeps.

use std::time::{Duration, Instant};

/// What one probe saw: the thing waited for, or how far from it things still are.
pub enum Probe<T, S> {
    Done(T),
    Pending(S),
}

/// The pauses between probes: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub first: Duration,
    pub max: Duration,
}

impl Pace {
    pub const fn ms(first: u64, max: u64) -> Self {
        Self {
            first: Duration::from_millis(first),
            max: Duration::from_millis(max),
        }
    }

    /// No pause at all: for windows as short as one probe.
    pub const EAGER: Pace = Pace::ms(0, 0);
}

/// Probes until it is done, at most `limit` long (the last probe comes at or after the
/// deadline); past it, `expired` turns the last pending state into the error. A probe's
/// own error ends the wait at once.
pub fn until<T, S, E>(
    limit: Duration,
    pace: Pace,
    mut probe: impl FnMut() -> Result<Probe<T, S>, E>,
    expired: impl FnOnce(S) -> E,
) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    let mut pause = pace.first;
    loop {
        let state = match probe()? {
            Probe::Done(v) => return Ok(v),
            Probe::Pending(s) => s,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(expired(state));
        }
        if pause.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause.min(left));
        }
        pause = (pause * 2).min(pace.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_gets_there_returns_its_value() {
        let mut n = 0;
        let r: Result<u32, String> = until(
            Duration::from_secs(5),
            Pace::ms(1, 2),
            || {
                n += 1;
                Ok(if n == 3 {
                    Probe::Done(n)
                } else {
                    Probe::Pending(n)
                })
            },
            |s| format!("stuck at {s}"),
        );
        assert_eq!(r, Ok(3));
    }

    #[test]
    fn past_the_deadline_the_last_state_names_the_failure() {
        let mut n = 0;
        let r: Result<(), String> = until(
            Duration::from_millis(30),
            Pace::ms(1, 5),
            || {
                n += 1;
                Ok(Probe::Pending(n))
            },
            |s| format!("stuck after {s} probes"),
        );
        let e = r.unwrap_err();
        assert!(e.starts_with("stuck after ") && n > 1, "{e}");
    }

    #[test]
    fn a_probe_error_ends_the_wait_at_once() {
        let mut n = 0;
        let r: Result<(), String> = until(
            Duration::from_secs(60),
            Pace::ms(1, 1),
            || {
                n += 1;
                Err::<Probe<(), ()>, _>("broken".to_string())
            },
            |_| unreachable!(),
        );
        assert_eq!((r, n), (Err("broken".into()), 1));
    }

    #[test]
    fn a_zero_limit_still_probes_once() {
        let r: Result<u8, &str> = until(
            Duration::ZERO,
            Pace::EAGER,
            || Ok(Probe::Done(7)),
            |()| "late",
        );
        assert_eq!(r, Ok(7));
    }
}
