//! Running one function over many inputs on a few threads, for the work that spreads over
//! cores: hashing a context's changed files, compressing layers at the edge.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Threads for work that scales with the cores: as many as there are, at most `max`.
pub(crate) fn threads(max: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(max)
        .max(1)
}

/// `f` of every item, in the items' order, computed on up to `threads` worker threads that
/// each take the next item when done with one (so one slow item holds up no others). After
/// an error no new item starts, and the first error in item order among those computed is
/// returned. A worker that panicked loses its answers: the first item left without one
/// answers `panicked(item)`.
pub(crate) fn try_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
    panicked: impl Fn(&T) -> E,
) -> Result<Vec<R>, E> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = f(item);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let mut results: Vec<Option<Result<R, E>>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, items.len()))
            .map(|_| scope.spawn(work))
            .collect();
        for worker in workers {
            for (i, result) in worker.join().unwrap_or_default() {
                results[i] = Some(result);
            }
        }
    });
    if let Some(at) = results.iter().position(|r| matches!(r, Some(Err(_))))
        && let Some(Err(e)) = results.swap_remove(at)
    {
        return Err(e);
    }
    results
        .into_iter()
        .zip(items)
        .map(|(result, item)| result.unwrap_or_else(|| Err(panicked(item))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order() {
        let items: Vec<u64> = (0..200).collect();
        let squares = try_map(&items, 4, |&n| Ok::<_, String>(n * n), |_| String::new());
        assert_eq!(
            squares.unwrap(),
            items.iter().map(|n| n * n).collect::<Vec<_>>()
        );
        assert!(
            try_map(&[] as &[u64], 4, |&n| Ok::<_, ()>(n), |_| ())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_first_error_wins_and_stops_new_work() {
        let started = AtomicUsize::new(0);
        let items: Vec<u64> = (0..10_000).collect();
        let got = try_map(
            &items,
            2,
            |&n| {
                started.fetch_add(1, Ordering::Relaxed);
                if n == 3 || n == 9 { Err(n) } else { Ok(n) }
            },
            |_| u64::MAX,
        );
        assert_eq!(got.unwrap_err(), 3);
        assert!(started.load(Ordering::Relaxed) < 10_000);
    }

    #[test]
    fn a_panicking_worker_is_an_error_naming_an_item_it_lost() {
        let items = [1u64, 2, 3];
        let got = try_map(
            &items,
            1,
            |&n| {
                assert_ne!(n, 2, "planted panic");
                Ok::<_, u64>(n)
            },
            |&n| n + 100,
        );
        // One worker: it had answered item 1 when item 2 panicked, and lost both.
        assert_eq!(got.unwrap_err(), 101);
    }
}
