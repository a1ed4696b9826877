//! Turn slots shared fairly between workspaces.
//!
//! At most [`InboxOptions::max_parallel`](super::InboxOptions::max_parallel) turns run at once.
//! When a slot frees up and several conversations wait for one, it goes to the next workspace
//! in turn (round robin over the workspaces that are waiting) and, inside that workspace, to
//! the conversation that has waited longest; a conversation that had a turn queues again at the
//! back. So one workspace with a flood of conversations cannot hold up another: a message of a
//! workspace that is waiting gets a slot within as many handed-out slots as there are
//! workspaces waiting, however many conversations the others have. A slot that nobody waits
//! for is simply free: a single busy workspace still uses every slot.
//!
//! A workspace is a source and a workspace id (a Slack team and a Discord guild never share).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// The turn slots of one worker.
pub(super) struct FairSlots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// The conversations waiting for a slot, per workspace, in the order they asked.
    waiting: HashMap<Vec<u8>, VecDeque<oneshot::Sender<Slot>>>,
    /// The workspaces with someone waiting, in the order they are next served.
    turn_order: VecDeque<Vec<u8>>,
}

/// One turn's slot; dropping it hands the slot on.
pub(super) struct Slot {
    slots: Option<Arc<FairSlots>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

impl FairSlots {
    pub(super) fn new(slots: usize) -> Arc<FairSlots> {
        Arc::new(FairSlots {
            state: Mutex::new(State { free: slots.max(1), waiting: HashMap::new(), turn_order: VecDeque::new() }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; a poisoned lock still holds a sound state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for a conversation of `workspace`. Cancel-safe: a wait given up is
    /// skipped when its turn comes.
    pub(super) async fn acquire(self: &Arc<Self>, workspace: &[u8]) -> Slot {
        loop {
            let receiver = {
                let mut state = self.state();
                // A free slot means nobody waits: a freed slot goes to a waiter first.
                if state.free > 0 {
                    state.free -= 1;
                    return Slot { slots: Some(Arc::clone(self)) };
                }
                let (sender, receiver) = oneshot::channel();
                let queue = state.waiting.entry(workspace.to_vec()).or_default();
                queue.push_back(sender);
                if queue.len() == 1 {
                    state.turn_order.push_back(workspace.to_vec());
                }
                receiver
            };
            // A sender is only dropped unsent if the slots themselves go, which `self` prevents;
            // asking again is the safe answer all the same.
            if let Ok(slot) = receiver.await {
                return slot;
            }
        }
    }

    /// Hands a freed slot to the next waiting conversation, or keeps it free.
    fn release(self: &Arc<Self>) {
        loop {
            let next = {
                let mut state = self.state();
                let Some(sender) = state.next_waiting() else {
                    state.free += 1;
                    return;
                };
                sender
            };
            // Sent outside the lock: a slot that cannot be delivered (the wait was given up) comes
            // back here, disarmed, and goes to the next in line.
            match next.send(Slot { slots: Some(Arc::clone(self)) }) {
                Ok(()) => return,
                Err(mut undelivered) => {
                    undelivered.slots = None;
                }
            }
        }
    }
}

impl State {
    /// The next waiter: the longest-waiting conversation of the workspace whose turn it is.
    fn next_waiting(&mut self) -> Option<oneshot::Sender<Slot>> {
        while let Some(workspace) = self.turn_order.pop_front() {
            let Some(queue) = self.waiting.get_mut(&workspace) else { continue };
            // Waits given up (a lane stopped by a shutdown) are passed over.
            while queue.front().is_some_and(oneshot::Sender::is_closed) {
                queue.pop_front();
            }
            let next = queue.pop_front();
            if queue.is_empty() {
                self.waiting.remove(&workspace);
            } else {
                self.turn_order.push_back(workspace);
            }
            if next.is_some() {
                return next;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn freed_slots_go_round_the_waiting_workspaces() {
        let slots = FairSlots::new(1);
        let held = slots.acquire(b"A").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waits = Vec::new();
        // Workspace A asks three times before B and C ask once each.
        for name in ["A1", "A2", "A3", "B1", "A4", "C1"] {
            let (slots, order) = (Arc::clone(&slots), Arc::clone(&order));
            waits.push(tokio::spawn(async move {
                let _slot = slots.acquire(&name.as_bytes()[..1]).await;
                order.lock().unwrap().push(name);
                tokio::task::yield_now().await;
            }));
            // Lets the task queue, so they wait in this order.
            tokio::task::yield_now().await;
        }
        drop(held);
        for wait in waits {
            wait.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["A1", "B1", "C1", "A2", "A3", "A4"]);
    }

    #[tokio::test]
    async fn a_wait_given_up_does_not_take_the_slot_with_it() {
        let slots = FairSlots::new(1);
        let held = slots.acquire(b"A").await;
        // Polled once, so it waits in line, then dropped: a lane stopped by a shutdown.
        assert!(slots.acquire(b"B").now_or_never().is_none());
        drop(held);
        assert!(slots.acquire(b"A").now_or_never().is_some(), "the slot is free again");
    }

    #[tokio::test]
    async fn one_busy_workspace_uses_every_slot() {
        let slots = FairSlots::new(3);
        let held: Vec<Slot> = (0..3).map(|_| slots.acquire(b"A").now_or_never().unwrap()).collect();
        assert!(slots.acquire(b"A").now_or_never().is_none());
        drop(held);
    }
}
