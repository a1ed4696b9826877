//! Slots shared fairly between workspaces: the inbox's turn slots, and the embedder's share of
//! the CPU.
//!
//! At most `slots` holders at once. When a slot frees up and several callers wait for one, it
//! goes to the next workspace in turn (round robin over the workspaces that are waiting) and,
//! inside that workspace, to the caller that has waited longest; a caller that had a slot
//! queues again at the back. So a workspace with a flood of work cannot hold up another: a
//! caller of a workspace that is waiting gets a slot within as many handed-out slots as there
//! are workspaces waiting.
//!
//! With [`FairSlots::with_reserve`] one slot is also kept for a workspace that holds none: a
//! workspace already holding a slot may not take the last free one. A busy workspace then uses
//! all slots but one, and a quiet workspace's message starts at once instead of waiting for one
//! of the busy workspace's turns to end (which, on a loaded machine, took seconds).
//!
//! A workspace is any byte string the caller chooses (the inbox uses a source and a workspace
//! id, so a Slack team and a Discord guild never share).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// A set of slots shared fairly between workspaces.
pub struct FairSlots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Keep the last free slot for a workspace that holds none.
    reserve: bool,
    /// Slots held, per workspace that holds any.
    held: HashMap<Vec<u8>, usize>,
    /// The callers waiting for a slot, per workspace, in the order they asked.
    waiting: HashMap<Vec<u8>, VecDeque<oneshot::Sender<Slot>>>,
    /// The workspaces with someone waiting, in the order they are next served.
    turn_order: VecDeque<Vec<u8>>,
}

/// One slot, held by a workspace; dropping it hands the slot on.
pub struct Slot {
    slots: Option<Arc<FairSlots>>,
    workspace: Vec<u8>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release(&self.workspace);
        }
    }
}

impl FairSlots {
    /// `slots` slots (at least one), every one of them open to any workspace.
    pub fn new(slots: usize) -> Arc<FairSlots> {
        FairSlots::build(slots, false)
    }

    /// `slots` slots of which the last free one is kept for a workspace holding none (when
    /// there are at least two; with one slot there is nothing to keep).
    pub fn with_reserve(slots: usize) -> Arc<FairSlots> {
        FairSlots::build(slots, slots >= 2)
    }

    fn build(slots: usize, reserve: bool) -> Arc<FairSlots> {
        Arc::new(FairSlots {
            state: Mutex::new(State {
                free: slots.max(1),
                reserve,
                held: HashMap::new(),
                waiting: HashMap::new(),
                turn_order: VecDeque::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; a poisoned lock still holds a sound state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `workspace`. Cancel-safe: a wait given up is skipped when its turn
    /// comes.
    pub async fn acquire(self: &Arc<Self>, workspace: &[u8]) -> Slot {
        loop {
            let receiver = {
                let mut state = self.state();
                // Nobody of this workspace waits ahead of this caller (waits are served in order).
                if state.may_take(workspace) && !state.waiting.contains_key(workspace) {
                    state.take(workspace);
                    return Slot { slots: Some(Arc::clone(self)), workspace: workspace.to_vec() };
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

    /// Gives back `workspace`'s slot and hands free slots to waiting callers, in turn.
    fn release(self: &Arc<Self>, workspace: &[u8]) {
        {
            let mut state = self.state();
            state.free += 1;
            state.untake(workspace);
        }
        loop {
            let (sender, to) = {
                let mut state = self.state();
                let Some((sender, to)) = state.next_waiting() else { return };
                state.take(&to);
                (sender, to)
            };
            // Sent outside the lock: a slot that cannot be delivered (the wait was given up) comes
            // back; it is disarmed and given back here before the next in line is served.
            match sender.send(Slot { slots: Some(Arc::clone(self)), workspace: to.clone() }) {
                Ok(()) => return,
                Err(mut undelivered) => {
                    undelivered.slots = None;
                    let mut state = self.state();
                    state.free += 1;
                    state.untake(&to);
                }
            }
        }
    }
}

impl State {
    /// Whether `workspace` may take a free slot now.
    fn may_take(&self, workspace: &[u8]) -> bool {
        match self.free {
            0 => false,
            1 if self.reserve => !self.held.contains_key(workspace),
            _ => true,
        }
    }

    fn take(&mut self, workspace: &[u8]) {
        self.free -= 1;
        *self.held.entry(workspace.to_vec()).or_default() += 1;
    }

    fn untake(&mut self, workspace: &[u8]) {
        if let Some(held) = self.held.get_mut(workspace) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(workspace);
            }
        }
    }

    /// The next waiter that may take a free slot, and its workspace: the longest-waiting caller
    /// of the first workspace in turn that may.
    fn next_waiting(&mut self) -> Option<(oneshot::Sender<Slot>, Vec<u8>)> {
        for _ in 0..self.turn_order.len() {
            let workspace = self.turn_order.pop_front()?;
            let may_take = self.may_take(&workspace);
            let Some(queue) = self.waiting.get_mut(&workspace) else { continue };
            // Waits given up (a lane stopped by a shutdown) are passed over.
            while queue.front().is_some_and(oneshot::Sender::is_closed) {
                queue.pop_front();
            }
            if queue.is_empty() {
                self.waiting.remove(&workspace);
                continue;
            }
            if !may_take {
                // It already holds a slot and only the reserved one is free: it waits on.
                self.turn_order.push_back(workspace);
                continue;
            }
            let next = queue.pop_front();
            if queue.is_empty() {
                self.waiting.remove(&workspace);
            } else {
                self.turn_order.push_back(workspace.clone());
            }
            if let Some(sender) = next {
                return Some((sender, workspace));
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
    async fn without_a_reserve_one_busy_workspace_uses_every_slot() {
        let slots = FairSlots::new(3);
        let held: Vec<Slot> = (0..3).map(|_| slots.acquire(b"A").now_or_never().unwrap()).collect();
        assert!(slots.acquire(b"A").now_or_never().is_none());
        drop(held);
    }

    #[tokio::test]
    async fn a_workspace_holding_none_gets_the_reserved_slot_at_once() {
        let slots = FairSlots::with_reserve(4);
        // The flooding workspace gets all slots but one; its fourth turn waits.
        let busy: Vec<Slot> = (0..3).map(|_| slots.acquire(b"A").now_or_never().unwrap()).collect();
        let mut a4 = Box::pin(slots.acquire(b"A"));
        assert!((&mut a4).now_or_never().is_none(), "the last slot is kept for another workspace");
        // The quiet workspace starts without waiting for any of A's turns to end.
        let quiet = slots.acquire(b"B").now_or_never().expect("B holds none: it gets the reserved slot");
        // B's second turn waits like anyone's: no slot is free.
        assert!(slots.acquire(b"B").now_or_never().is_none());
        // When B's turn ends the slot is reserved again, so A's waiting turn still waits ...
        drop(quiet);
        assert!((&mut a4).now_or_never().is_none());
        // ... and when one of A's own turns ends, A's waiting turn gets that slot.
        drop(busy);
        assert!(a4.now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_freed_slot_skips_a_workspace_that_may_not_take_the_reserve() {
        let slots = FairSlots::with_reserve(2);
        let a = slots.acquire(b"A").now_or_never().unwrap();
        let b = slots.acquire(b"B").now_or_never().unwrap();
        // A waits first, then C; both wait since no slot is free.
        let mut a2 = Box::pin(slots.acquire(b"A"));
        assert!((&mut a2).now_or_never().is_none());
        let mut c = Box::pin(slots.acquire(b"C"));
        assert!((&mut c).now_or_never().is_none());
        // B's slot frees: A still holds one, so the last free slot goes to C, who holds none.
        drop(b);
        assert!((&mut a2).now_or_never().is_none());
        assert!(c.now_or_never().is_some());
        drop(a);
        assert!(a2.now_or_never().is_some());
    }
}
