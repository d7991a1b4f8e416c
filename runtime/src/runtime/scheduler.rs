//! The task table and the ready queue.
//!
//! A task is anything implementing [`RawTask`], stored in a generational slab. Boxed tasks
//! from [`spawn`](crate::spawn) and statically pooled `#[iomgr::task(pool = N)]` tasks go
//! through the same table, so the scheduler never cares where a task lives. A task is queued
//! at most once however often it is woken before it runs.
//!
//! The table holds a boxed task through its [`OwnedTask`] (the runtime's hold on the cell),
//! and lets go after [`RawTask::release`] returned: storage is freed through the pointer that
//! owns it, never rebuilt from a `&self` whose borrow covers only the task.
//!
//! The table and the ready queue share one `RefCell`: spawning, waking and each poll borrow
//! it once (twice for a poll that finishes the task), never while the task runs.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::Location;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::dump::TaskDump;
use super::join::OwnedTask;
use super::waker::{MAX_TASK_INDEX, TaskAddr};
use crate::task::{AwaitPoint, take_last_await};
use crate::util::gen_slab::Key;

/// A task whose storage is owned by someone other than the runtime.
///
/// This is the hook that lets `#[iomgr::task(pool = N)]` spawn without allocating; ordinary
/// code uses [`spawn`](crate::spawn).
///
/// # Safety
/// Implementors promise that the pointer handed to [`spawn_raw`](crate::runtime::spawn_raw)
/// stays valid, and the task pinned, until the runtime calls [`RawTask::release`].
pub unsafe trait RawTask {
    /// Polls the task's future once; `Ready` when the task is finished.
    ///
    /// # Safety
    /// Called only by the runtime, on the thread that spawned the task, never after `release`.
    unsafe fn poll(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// The runtime is done with the task: it finished, was aborted, or the runtime is shutting
    /// down. Drops the future if it is still alive and gives the storage back to its owner (a
    /// pool slot is free for reuse once its join handle is gone too). Called exactly once; the
    /// runtime does not touch the task afterwards.
    ///
    /// # Safety
    /// Called only by the runtime, once, on the spawning thread.
    unsafe fn release(&self);

    /// The task's type, for [task dumps](crate::runtime::TaskDump) (`std::any::type_name` of
    /// its future).
    fn type_name(&self) -> &'static str {
        "a raw task"
    }
}

/// How the table holds a task.
enum TaskRef {
    /// A task from [`spawn`](crate::spawn): the runtime's hold on its cell, let go after the
    /// task is released (the join handle may hold the cell too).
    Owned(OwnedTask),
    /// A task whose storage someone else owns ([`spawn_raw`](crate::runtime::spawn_raw)).
    Raw(NonNull<dyn RawTask>),
}

impl TaskRef {
    /// A pointer to poll the task through while it stays in the table.
    fn ptr(&self) -> NonNull<dyn RawTask> {
        match self {
            TaskRef::Owned(task) => task.ptr(),
            TaskRef::Raw(task) => *task,
        }
    }

    /// The task's type name (see [`RawTask::type_name`]).
    fn type_name(&self) -> &'static str {
        // SAFETY: a `TaskRef` is in the table or about to be: its storage is alive (the
        // table holds a boxed task's cell; `spawn_raw`'s contract keeps a raw one valid until
        // its release), and `type_name` touches nothing a poll uses.
        unsafe { self.ptr().as_ref() }.type_name()
    }

    /// Releases the task, then drops the runtime's reference to a boxed one.
    ///
    /// # Safety
    /// The task was just removed from the table (so this is its one release), on its thread.
    unsafe fn release(self) {
        match self {
            // SAFETY: forwarded from the caller. The runtime's hold keeps the cell alive
            // during the call; dropping it afterwards frees the cell (if the handle is gone)
            // through the pointer `spawn_on` made, with no borrow of the cell alive.
            TaskRef::Owned(task) => unsafe { task.ptr().as_ref().release() },
            // SAFETY: forwarded from the caller, and `spawn_raw`'s contract keeps the pointer
            // valid until this call.
            TaskRef::Raw(task) => unsafe { task.as_ref().release() },
        }
    }
}

/// One slot of the task table: a generational slab written field by field.
///
/// A spawn stores each field straight into its slot. (With the entry built as one value and
/// moved in, as `GenSlab` does, the compiler assembled it in a stack temporary with narrow
/// stores and copied it with 16-byte loads that could not be forwarded from them: a
/// store-forwarding stall on every spawn, about a quarter of its time.) A vacant slot keeps
/// its last `info`, stale and never read.
struct TaskSlot {
    generation: u32,
    /// While vacant: the next vacant slot ([`NO_SLOT`] at the end of the list).
    next_free: u32,
    queued: bool,
    /// `None` while vacant.
    task: Option<TaskRef>,
    info: TaskInfo,
}

impl TaskSlot {
    /// The type name of the task in the slot (`""` while vacant).
    fn type_name(&self) -> &'static str {
        self.task.as_ref().map_or("", TaskRef::type_name)
    }
}

/// The end of the task table's free list.
const NO_SLOT: u32 = u32::MAX;

struct TaskTable {
    slots: Vec<TaskSlot>,
    /// The most recently vacated slot, heading a list linked through `next_free`.
    free: u32,
    len: usize,
}

impl TaskTable {
    fn with_capacity(capacity: usize) -> Self {
        TaskTable {
            slots: Vec::with_capacity(capacity),
            free: NO_SLOT,
            len: 0,
        }
    }

    #[inline]
    fn insert(&mut self, task: TaskRef, info: TaskInfo) -> Key {
        self.len += 1;
        let index = self.free;
        if let Some(slot) = self.slots.get_mut(index as usize) {
            debug_assert!(slot.task.is_none(), "the free list links vacant slots only");
            self.free = slot.next_free;
            slot.task = Some(task);
            slot.queued = true;
            slot.info = info;
            return Key {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len())
            .ok()
            .filter(|&i| i != NO_SLOT)
            .expect("more than 2^32 - 1 live tasks");
        self.slots.push(TaskSlot {
            generation: 0,
            next_free: NO_SLOT,
            queued: true,
            task: Some(task),
            info,
        });
        Key {
            index,
            generation: 0,
        }
    }

    /// The occupied slot `key` names (a stale key names none).
    #[inline]
    fn get_mut(&mut self, key: Key) -> Option<&mut TaskSlot> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.generation == key.generation && slot.task.is_some())
    }

    /// The slot at `index` if it is occupied, whatever its generation.
    #[inline]
    fn get_at_mut(&mut self, index: u32) -> Option<&mut TaskSlot> {
        self.slots
            .get_mut(index as usize)
            .filter(|slot| slot.task.is_some())
    }

    /// Vacates the slot `key` names and returns its task; a stale key removes nothing.
    #[inline]
    fn remove(&mut self, key: Key) -> Option<TaskRef> {
        let free = self.free;
        let slot = self.get_mut(key)?;
        let task = slot.task.take();
        slot.generation = slot.generation.wrapping_add(1);
        slot.next_free = free;
        self.free = key.index;
        self.len -= 1;
        task
    }

    /// Keys of every occupied slot (allocates: for dumps and shutdown).
    fn keys(&self) -> Vec<Key> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.task.is_some())
            .map(|(index, slot)| Key {
                index: index as u32,
                generation: slot.generation,
            })
            .collect()
    }
}

/// What a task dump says about a task besides its state and type.
#[derive(Clone, Copy)]
pub(crate) struct TaskInfo {
    pub(crate) spawned_at: &'static Location<'static>,
    /// Where it was suspended when it last ran (an `#[iomgr::task]`'s numbered `.await`).
    pub(crate) waiting_at: Option<&'static AwaitPoint>,
}

impl TaskInfo {
    pub(crate) fn new(spawned_at: &'static Location<'static>) -> Self {
        TaskInfo {
            spawned_at,
            waiting_at: None,
        }
    }
}

pub(crate) struct Scheduler {
    runtime_id: u32,
    tables: RefCell<Tables>,
    main_woken: Cell<bool>,
}

struct Tables {
    tasks: TaskTable,
    ready: VecDeque<Key>,
}

impl Scheduler {
    pub(crate) fn new(runtime_id: u32, capacity: usize) -> Self {
        Scheduler {
            runtime_id,
            tables: RefCell::new(Tables {
                tasks: TaskTable::with_capacity(capacity),
                ready: VecDeque::with_capacity(capacity),
            }),
            main_woken: Cell::new(false),
        }
    }

    /// Adds a task the runtime holds a boxed cell of, and queues it to run.
    #[inline]
    pub(crate) fn spawn_owned(&self, task: OwnedTask, info: TaskInfo) -> TaskAddr {
        self.insert(TaskRef::Owned(task), info)
    }

    /// Adds a task whose storage the caller owns, and queues it to run.
    ///
    /// # Safety
    /// As for [`RawTask`]: `task` stays valid until released.
    pub(crate) unsafe fn spawn(&self, task: NonNull<dyn RawTask>, info: TaskInfo) -> TaskAddr {
        self.insert(TaskRef::Raw(task), info)
    }

    #[inline]
    fn insert(&self, task: TaskRef, info: TaskInfo) -> TaskAddr {
        let mut tables = self.tables.borrow_mut();
        // Every index the slab hands out is at most its length (a free slot's index is one
        // it handed out before, a new one is the length): checking the length first keeps
        // the index in range without inserting first.
        assert!(
            tables.tasks.len <= MAX_TASK_INDEX as usize,
            "iomgr: more than {MAX_TASK_INDEX} live tasks on one runtime"
        );
        let key = tables.tasks.insert(task, info);
        crate::trace::task_spawned(
            key.to_u64(),
            || {
                tables
                    .tasks
                    .get_mut(key)
                    .map_or("", |slot| slot.type_name())
            },
            info.spawned_at,
        );
        tables.ready.push_back(key);
        TaskAddr::new(self.runtime_id, key)
    }

    /// Queues the task named by `addr` (a wake on this runtime's thread); a task already
    /// queued, finished, or named by a stale address is left alone.
    #[inline]
    pub(crate) fn schedule(&self, addr: TaskAddr) {
        if addr.is_main() {
            self.main_woken.set(true);
            return;
        }
        let mut tables = self.tables.borrow_mut();
        let tables = &mut *tables;
        // The waker carries only the low bits of the generation: look the slot up by index
        // and compare those bits.
        let Some(slot) = tables.tasks.get_at_mut(addr.index) else {
            return;
        };
        let key = Key {
            index: addr.index,
            generation: slot.generation,
        };
        if !slot.queued && addr.matches(key) {
            slot.queued = true;
            tables.ready.push_back(key);
        }
    }

    pub(crate) fn take_main_wake(&self) -> bool {
        self.main_woken.replace(false)
    }

    pub(crate) fn set_main_woken(&self) {
        self.main_woken.set(true);
    }

    pub(crate) fn has_ready(&self) -> bool {
        self.main_woken.get() || !self.tables.borrow().ready.is_empty()
    }

    pub(crate) fn task_count(&self) -> usize {
        self.tables.borrow().tasks.len
    }

    /// Polls ready tasks, including those woken while this runs, up to `budget` polls (so
    /// I/O and the `block_on` future get their turn). Returns how many ran.
    pub(crate) fn run_ready(&self, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let (key, task) = {
                let mut tables = self.tables.borrow_mut();
                let tables = &mut *tables;
                let Some(key) = tables.ready.pop_front() else {
                    break;
                };
                match tables.tasks.get_mut(key) {
                    Some(TaskSlot {
                        queued,
                        task: Some(task),
                        ..
                    }) => {
                        *queued = false;
                        (key, task.ptr())
                    }
                    // Finished (or released) after it was queued.
                    Some(_) | None => continue,
                }
            };
            let waker = TaskAddr::new(self.runtime_id, key).waker();
            let mut cx = Context::from_waker(&waker);
            // SAFETY: the task is in the table, so it has not been released and its storage
            // is alive (a boxed task's cell is held by the table; only this loop and
            // `release_all`, which never runs during a poll, take it out); we are on the
            // runtime's thread, and no borrow of the table is held while it runs.
            let poll = {
                let _span = crate::trace::task_poll(key.to_u64());
                // SAFETY: see above.
                unsafe { task.as_ref().poll(&mut cx) }
            };
            ran += 1;
            // An `#[iomgr::task]` that is pending said where (one thread-local read).
            let waiting_at = take_last_await();
            if poll.is_ready() {
                let task = self.tables.borrow_mut().tasks.remove(key);
                if let Some(task) = task {
                    crate::trace::task_finished(key.to_u64());
                    // SAFETY: removed from the table just now, so this is the one release.
                    unsafe { task.release() };
                }
            } else if let Some(point) = waiting_at
                && let Some(slot) = self.tables.borrow_mut().tasks.get_mut(key)
            {
                slot.info.waiting_at = Some(point);
            }
        }
        ran
    }

    /// Every live task: what it is, where it was spawned, where it waits.
    pub(crate) fn dump(&self) -> Vec<TaskDump> {
        let mut tables = self.tables.borrow_mut();
        let tasks = &mut tables.tasks;
        tasks
            .keys()
            .into_iter()
            .filter_map(|key| {
                let entry = tasks.get_mut(key)?;
                Some(TaskDump {
                    id: key.to_u64(),
                    type_name: entry.type_name(),
                    spawned_at: entry.info.spawned_at,
                    waiting_at: entry.info.waiting_at,
                    ready: entry.queued,
                })
            })
            .collect()
    }

    /// Queues every task, as if each were woken (unit tests, whose wakes find no runtime).
    #[cfg(test)]
    pub(crate) fn schedule_all(&self) {
        let keys = self.tables.borrow().tasks.keys();
        for key in keys {
            self.schedule(TaskAddr::new(self.runtime_id, key));
        }
    }

    /// Releases every task (runtime shutdown). Tasks spawned by dropping futures are
    /// released too.
    pub(crate) fn release_all(&self) {
        for _ in 0..64 {
            let keys = self.tables.borrow().tasks.keys();
            if keys.is_empty() {
                break;
            }
            for key in keys {
                let task = self.tables.borrow_mut().tasks.remove(key);
                if let Some(task) = task {
                    // SAFETY: removed from the table just now, so this is the one release.
                    unsafe { task.release() };
                }
            }
        }
        self.tables.borrow_mut().ready.clear();
    }
}
