//! Indexing turns, one at a time and fair across owners: each owner's documents wait in a line of their own and the
//! lines take turns, so one reader uploading fifty documents does not hold another's one for all of them. A turn is
//! held by its guard; dropping it hands the next turn over at once. A waiter that gives up (its task ended) is
//! skipped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

#[derive(Debug, Default)]
pub struct Turns {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    busy: bool,
    /// The owner whose document has (or last had) the turn.
    last: Option<String>,
    /// Owners waiting, in the order their lines take turns; each with its waiters, first come first.
    lines: VecDeque<(String, VecDeque<oneshot::Sender<()>>)>,
}

/// A wait for a turn. Given up (its task dropped) after the turn was handed to it, it passes the turn on: a turn
/// is never lost.
struct Waiting {
    rx: oneshot::Receiver<()>,
    state: Arc<Mutex<State>>,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.rx.close();
            if self.rx.try_recv().is_ok() {
                drop(Turn { state: self.state.clone() });
            }
        }
    }
}

/// A held turn; the next goes when it drops.
#[derive(Debug)]
pub struct Turn {
    state: Arc<Mutex<State>>,
}

impl Turns {
    /// Wait for `owner`'s turn.
    pub async fn take(&self, owner: &str) -> Turn {
        let waiting = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !s.busy {
                s.busy = true;
                s.last = Some(owner.to_owned());
                None
            } else {
                let (tx, rx) = oneshot::channel();
                match s.lines.iter_mut().find(|(o, _)| o == owner) {
                    Some((_, line)) => line.push_back(tx),
                    None => s.lines.push_back((owner.to_owned(), VecDeque::from([tx]))),
                }
                Some(rx)
            }
        };
        if let Some(rx) = waiting {
            let mut wait = Waiting { rx, state: self.state.clone(), done: false };
            // The sender is dropped only after a handover to us, or with the Turns (never while we wait).
            let _ = (&mut wait.rx).await;
            wait.done = true;
        }
        Turn { state: self.state.clone() }
    }

    /// Documents waiting for a turn.
    pub fn waiting(&self) -> usize {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.lines.iter().map(|(_, line)| line.len()).sum()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // The owner who just had the turn goes after the others.
        if s.lines.len() > 1 && s.lines.front().map(|(o, _)| Some(o)) == Some(s.last.as_ref()) {
            s.lines.rotate_left(1);
        }
        while let Some((owner, mut line)) = s.lines.pop_front() {
            let mut handed = false;
            while let Some(tx) = line.pop_front() {
                if tx.send(()).is_ok() {
                    handed = true;
                    break;
                }
            }
            if !line.is_empty() {
                s.lines.push_back((owner.clone(), line));
            }
            if handed {
                s.last = Some(owner);
                return;
            }
        }
        s.busy = false;
        s.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owners_take_turns_and_each_keeps_its_own_order() {
        // A has the turn with three more waiting; then B uploads two and C one: B and C do not wait for all of A's.
        let turns = Arc::new(Turns::default());
        let held = turns.take("a").await;
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (n, (owner, label)) in
            [("a", "a2"), ("a", "a3"), ("a", "a4"), ("b", "b1"), ("c", "c1"), ("b", "b2")]
                .into_iter()
                .enumerate()
        {
            let (mine, got) = (turns.clone(), got.clone());
            #[allow(clippy::disallowed_methods)]
            tasks.push(tokio::spawn(async move {
                let _turn = mine.take(owner).await;
                got.lock().unwrap().push(label);
            }));
            while turns.waiting() < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*got.lock().unwrap(), vec!["b1", "c1", "a2", "b2", "a3", "a4"]);
    }

    #[tokio::test]
    async fn a_turn_handed_to_a_waiter_that_then_gives_up_is_passed_on() {
        let turns = Turns::default();
        let held = turns.take("a").await;
        let mut gives_up = Box::pin(turns.take("b"));
        // Polled once: it waits in b's line.
        assert!(futures_util::FutureExt::now_or_never(gives_up.as_mut()).is_none());
        drop(held); // handed to b…
        drop(gives_up); // …which goes before it sees it
        let t = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take("c")).await;
        assert!(t.is_ok(), "the turn was lost");
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_is_skipped_and_the_turn_is_free_after_the_last() {
        let turns = Arc::new(Turns::default());
        let held = turns.take("a").await;
        let gave_up = {
            let turns = turns.clone();
            #[allow(clippy::disallowed_methods)]
            tokio::spawn(async move {
                let _turn = turns.take("b").await;
            })
        };
        while turns.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gave_up.abort();
        let _ = gave_up.await;
        drop(held);
        // Free again: taken at once.
        let t = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take("c")).await;
        assert!(t.is_ok());
    }
}
