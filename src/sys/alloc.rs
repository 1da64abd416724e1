//! The binary's memory allocator: power-of-two size classes with a free
//! list each, carved from chunks that are never given back; blocks above
//! [`LARGEST`] (archives, images) go to the system allocator.
//!
//! chroot-tool lives for milliseconds, makes a few thousand small
//! allocations and frees most of them at once. musl's allocator returns a
//! group of blocks to the kernel as soon as its last block is freed, and so
//! pays an `mmap` and a `munmap` for the same memory again and again: about
//! 150 system calls and a quarter of `on`'s time (docs/performance.md). Here
//! a freed block waits on its class's list for the next allocation of that
//! class, and the first chunk is in the binary's zero-filled data, so that
//! a short run maps no memory for Rust's allocations up to 64 KiB (musl's
//! own, inside `realpath`, and larger blocks such as the 256 KiB stack of
//! the command's clone, still go to the system). What stays: the peak of
//! each class.
//!
//! A lock serialises the lists: the `on`/`run` path has one thread, and the
//! archive's worker threads allocate little next to the data they move.
//! A child forked while another thread held it would wait for it forever:
//! forks whose child allocates go through [`fork`], which forks with the
//! lock taken and gives the child a free one. Other children (raw `clone`,
//! std's `Command`) must not allocate, as with any allocator.
//!
//! What it gives up, knowingly: memory is never returned to the system
//! and one class never serves another, so a process keeps the sum of each
//! class's peak (0.5 to 1.1 MB more peak RSS than with musl's allocator in
//! `pack`, `unpack`, `export` and `import` of a Debian sandbox); and musl's
//! checks of its heap (a double free aborts there; here it would hand one
//! block out twice). Debug builds abort when a freed block is already the
//! head of its class's list (the same block freed twice in a row).
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

/// The smallest class: a free block holds the next one's address.
const SMALLEST_SHIFT: u32 = 4;
/// The largest class; larger blocks are the system's.
pub const LARGEST: usize = 64 << 10;
const CLASSES: usize = (LARGEST.trailing_zeros() - SMALLEST_SHIFT + 1) as usize;
/// Chunks after the first, from the system allocator.
const CHUNK: usize = 1 << 20;
/// The first chunk, in the binary's zero-filled data: its pages are
/// touched, and so paid for, only as far as they are used.
const FIRST: usize = 256 << 10;

/// The allocator; `#[global_allocator]` in the binary.
pub struct Classes;

struct Free {
    next: *mut Free,
}

struct State {
    free: [*mut Free; CLASSES],
    /// The unused end of the current chunk.
    cur: usize,
    end: usize,
}

#[repr(C, align(4096))]
struct First([u8; FIRST]);

struct Shared {
    /// A ticket lock: first come, first served (a plain spin lock lets a
    /// thread that frees and allocates in a loop starve the others).
    next: AtomicU32,
    serving: AtomicU32,
    state: UnsafeCell<State>,
    first: UnsafeCell<First>,
}

// SAFETY: `state` is touched only under the lock; `first` only through
// the blocks carved from it, each owned by one allocation at a time.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    next: AtomicU32::new(0),
    serving: AtomicU32::new(0),
    state: UnsafeCell::new(State {
        free: [ptr::null_mut(); CLASSES],
        cur: 0,
        end: 0,
    }),
    first: UnsafeCell::new(First([0; FIRST])),
};

/// The class of a layout, or None for the system's blocks.
fn class(layout: Layout) -> Option<usize> {
    let n = layout.size().max(layout.align()).max(1 << SMALLEST_SHIFT);
    if n > LARGEST || layout.align() > 4096 {
        return None;
    }
    Some((n.next_power_of_two().trailing_zeros() - SMALLEST_SHIFT) as usize)
}

fn class_size(c: usize) -> usize {
    1 << (c as u32 + SMALLEST_SHIFT)
}

/// The lists, locked for as long as the guard lives.
struct Locked;

impl Locked {
    fn take() -> Locked {
        let ticket = SHARED.next.fetch_add(1, Ordering::Relaxed);
        let mut spins = 0u32;
        while SHARED.serving.load(Ordering::Acquire) != ticket {
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // The holder may be descheduled: let it run.
                std::thread::yield_now();
            }
        }
        Locked
    }

    fn state(&mut self) -> &mut State {
        // SAFETY: the lock is ours while `self` lives, and `&mut self`
        // gives out one reference at a time.
        unsafe { &mut *SHARED.state.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        SHARED.serving.fetch_add(1, Ordering::Release);
    }
}

impl Classes {
    /// A block of class `c`, or null when the system has no memory; and
    /// whether it is new, never handed out before, and so still zero (the
    /// first chunk is zero-filled data, the others come zeroed from the
    /// system): `alloc_zeroed` writes no zeros into it, and a large buffer
    /// (a 32 KiB directory read, a 16 KiB file read) touches, and so pays
    /// for, only the pages the kernel fills.
    #[inline(never)]
    fn alloc_class(&self, c: usize) -> (*mut u8, bool) {
        let size = class_size(c);
        let mut lock = Locked::take();
        let state = lock.state();
        let head = state.free[c];
        if !head.is_null() {
            // SAFETY: a block on a list is free and was written by
            // `dealloc_class` with the next one's address.
            state.free[c] = unsafe { (*head).next };
            return (head.cast(), false);
        }
        if state.end == 0 {
            let first = SHARED.first.get() as usize;
            (state.cur, state.end) = (first, first + FIRST);
        }
        // Blocks are aligned to their size, up to a page.
        let mut at = state.cur.next_multiple_of(size.min(4096));
        if at + size > state.end {
            // SAFETY: a valid layout of non-zero size.
            let chunk =
                unsafe { System.alloc_zeroed(Layout::from_size_align(CHUNK, 4096).unwrap()) };
            if chunk.is_null() {
                return (chunk, false);
            }
            (at, state.end) = (chunk as usize, chunk as usize + CHUNK);
        }
        state.cur = at + size;
        (at as *mut u8, true)
    }

    /// Puts `p` back on the list of class `c`.
    ///
    /// # Safety
    /// `p` came from `alloc_class(c)`, and is not used again until it is
    /// handed out anew.
    #[inline(never)]
    unsafe fn dealloc_class(&self, p: *mut u8, c: usize) {
        let mut lock = Locked::take();
        let state = lock.state();
        let block = p.cast::<Free>();
        if cfg!(debug_assertions) && state.free[c] == block {
            // A double free (a panic would allocate, under the lock).
            std::process::abort();
        }
        // SAFETY: the caller's promise: a block of class `c` (at least 16
        // bytes, aligned to at least 16) that no one uses any more.
        unsafe { (*block).next = state.free[c] };
        state.free[c] = block;
    }
}

/// fork(2) with the lists locked: released in the parent, and new in the
/// child, whose allocator is usable whatever the other threads were doing.
///
/// # Safety
/// As fork(2): a child of a process with several threads may use nothing
/// another thread could have held but the allocator.
pub unsafe fn fork() -> libc::pid_t {
    let lock = Locked::take();
    // SAFETY: the caller's promise.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child has this thread only: the tickets other threads had
        // taken are no one's here. A lock of its own, free.
        std::mem::forget(lock);
        SHARED.next.store(0, Ordering::Relaxed);
        SHARED.serving.store(0, Ordering::Release);
    } else {
        drop(lock);
    }
    pid
}

// SAFETY: each block is handed to one allocation until it is freed, is at
// least as large and as aligned as its layout (class sizes are powers of two
// at least the alignment, carved at a multiple of their size up to a page,
// and alignments above a page go to the system), and memory is never given
// back while a block in it is live.
unsafe impl GlobalAlloc for Classes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(c) => self.alloc_class(c).0,
            // SAFETY: the caller's layout, as GlobalAlloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match class(layout) {
            // SAFETY: GlobalAlloc's promise: `p` was allocated with this
            // layout, so from this class (or the system), and is not used
            // again.
            Some(c) => unsafe { self.dealloc_class(p, c) },
            // SAFETY: as above: the system's block.
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(c) => {
                let (p, new) = self.alloc_class(c);
                if !p.is_null() && !new {
                    // SAFETY: the block is at least layout.size() long.
                    unsafe { ptr::write_bytes(p, 0, layout.size()) };
                }
                p
            }
            // SAFETY: as in `alloc`.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's promise that the new layout is valid.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            // Growing or shrinking within the block.
            (Some(a), Some(b)) if a == b => p,
            // SAFETY: the system's block, for the system's block.
            (None, None) => unsafe { System.realloc(p, layout, new_size) },
            _ => {
                // SAFETY: `new` is valid; both blocks are at least
                // min(old, new) long and distinct.
                unsafe {
                    let q = self.alloc(new);
                    if !q.is_null() {
                        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The tests share the one allocator's lists: one at a time, so that
    /// what one frees is what it allocates next.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_are_powers_of_two_up_to_the_largest() {
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 8)), Some(0));
        assert_eq!(class(layout(17, 8)), Some(1));
        assert_eq!(class(layout(24, 32)), Some(1));
        assert_eq!(class(layout(LARGEST, 8)), Some(CLASSES - 1));
        assert_eq!(class(layout(LARGEST + 1, 8)), None);
        assert_eq!(class(layout(64, 8192)), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused_after_free() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = Classes;
        unsafe {
            let mut live = Vec::new();
            for (size, align) in [(1, 1), (24, 8), (100, 64), (3000, 8), (5000, 4096)] {
                let l = layout(size, align);
                let p = a.alloc(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{size}/{align}");
                ptr::write_bytes(p, 0xa5, size);
                live.push((p, l));
            }
            for (i, &(p, l)) in live.iter().enumerate() {
                for &(q, m) in &live[i + 1..] {
                    let (p, q) = (p as usize, q as usize);
                    assert!(p + l.size() <= q || q + m.size() <= p, "overlap");
                }
            }
            let (p, l) = live[3];
            a.dealloc(p, l);
            assert_eq!(a.alloc(l), p, "a freed block serves its class next");
            for (p, l) in live {
                a.dealloc(p, l);
            }
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_the_system() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = Classes;
        unsafe {
            let l = layout(10, 1);
            let mut p = a.alloc(l);
            for i in 0..10 {
                *p.add(i) = i as u8;
            }
            let mut size = 10;
            for new in [12, 16, 40, 4000, LARGEST, LARGEST * 4, 100, 3] {
                let q = a.realloc(p, layout(size, 1), new);
                assert!(!q.is_null());
                for i in 0..size.min(new).min(10) {
                    assert_eq!(*q.add(i), i as u8, "byte {i} after {size} -> {new}");
                }
                if class(layout(size, 1)) == class(layout(new, 1)) {
                    assert_eq!(q, p, "within the block");
                }
                (p, size) = (q, new);
            }
            a.dealloc(p, layout(size, 1));
            let z = a.alloc_zeroed(layout(LARGEST, 8));
            assert!((0..LARGEST).all(|i| *z.add(i) == 0));
            a.dealloc(z, layout(LARGEST, 8));
        }
    }

    #[test]
    fn threads_never_get_the_same_block() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = &Classes;
        std::thread::scope(|s| {
            for t in 0..4u8 {
                s.spawn(move || unsafe {
                    let mut mine = Vec::new();
                    for round in 0..2000usize {
                        let l = layout(16 << (round % 8), 8);
                        let p = a.alloc(l);
                        ptr::write_bytes(p, t, l.size());
                        mine.push((p, l));
                        if round % 3 == 0 {
                            let (p, l) = mine.swap_remove(round % mine.len());
                            assert!((0..l.size()).all(|i| *p.add(i) == t), "a block shared");
                            a.dealloc(p, l);
                        }
                    }
                    for (p, l) in mine {
                        assert!((0..l.size()).all(|i| *p.add(i) == t), "a block shared");
                        a.dealloc(p, l);
                    }
                });
            }
        });
    }

    /// Every (size, alignment) the classes serve, and those around their
    /// edges: aligned, zeroed when asked (also a reused, dirty block), and
    /// realloc keeps the bytes across classes and the system's blocks.
    #[test]
    fn every_size_and_alignment_is_aligned_zeroed_and_kept_by_realloc() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = Classes;
        let mut sizes: Vec<usize> = (1..=130).collect();
        for sh in 4..=17 {
            let p = 1usize << sh;
            sizes.extend([p - 1, p, p + 1]);
        }
        for &size in &sizes {
            for ash in 0..=13 {
                let align = 1usize << ash;
                let l = layout(size, align);
                unsafe {
                    let d = a.alloc(l);
                    ptr::write_bytes(d, 0xee, size);
                    a.dealloc(d, l);
                    let z = a.alloc_zeroed(l);
                    assert_eq!(z as usize % align, 0, "zeroed {size}/{align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size}/{align}");
                    let (mut p, mut cur) = (a.alloc(l), size);
                    assert_eq!(p as usize % align, 0, "{size}/{align}");
                    for i in 0..size {
                        *p.add(i) = (i * 7) as u8;
                    }
                    for new in [size * 2 + 1, 17, LARGEST + 1, 1, 4097, size] {
                        let q = a.realloc(p, layout(cur, align), new);
                        assert_eq!(q as usize % align, 0, "{cur}->{new}/{align}");
                        let keep = cur.min(new);
                        assert!(
                            (0..keep).all(|i| *q.add(i) == (i * 7) as u8),
                            "{cur}->{new}/{align}"
                        );
                        for i in keep..new {
                            *q.add(i) = (i * 7) as u8;
                        }
                        (p, cur) = (q, new);
                    }
                    a.dealloc(p, layout(cur, align));
                    a.dealloc(z, l);
                }
            }
        }
    }

    /// Sizes up to what Layout allows fail with null, never a panic or a
    /// wrapped size.
    #[test]
    fn layouts_too_large_for_memory_fail_with_null() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = Classes;
        for align in [1usize, 8, 4096, 8192] {
            let l = layout(isize::MAX as usize - (align - 1), align);
            unsafe {
                assert!(a.alloc(l).is_null());
                assert!(a.alloc_zeroed(l).is_null());
                let s = layout(8, align);
                let p = a.alloc(s);
                assert!(a.realloc(p, s, l.size()).is_null());
                a.dealloc(p, s);
            }
        }
    }

    /// A fork through [`fork`] while another thread allocates all the time:
    /// without the lock taken around it, the child's copy of the lock may be
    /// held by a thread that does not exist in the child, and its first
    /// allocation waits forever (as it did for most children in a stress
    /// run). Only forks through [`fork`] are covered: there are no atfork
    /// handlers.
    #[test]
    fn a_child_forked_while_another_thread_allocates_can_allocate() {
        let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            // Another thread allocating all the time: it holds the lock at
            // any instant a fork may come.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    unsafe {
                        let l = layout(64, 8);
                        let p = Classes.alloc(l);
                        Classes.dealloc(p, l);
                    }
                }
            });
            let mut stuck = 0;
            for _ in 0..100 {
                // SAFETY: the child only allocates and _exits.
                let pid = unsafe { fork() };
                if pid == 0 {
                    unsafe {
                        let p = Classes.alloc(layout(64, 8));
                        libc::_exit(if p.is_null() { 1 } else { 0 });
                    }
                }
                assert!(pid > 0, "fork failed");
                let mut status = 0;
                let mut ended = false;
                for _ in 0..200 {
                    if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                        ended = true;
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                if !ended {
                    stuck += 1;
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                } else {
                    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
                }
            }
            stop.store(true, Ordering::Relaxed);
            assert_eq!(stuck, 0, "forked children stuck in their first allocation");
        });
    }
}
