//! Locks kept in etcd: a lease per holder, a key per holder, fairness by creation order.
//!
//! Every contender for NAME puts its own key `<prefix><NAME>//<lease as 16 hex digits>`,
//! attached to its own lease, with create-if-absent. Contenders are ordered by the
//! keys' creation revisions (etcd's linearizable write order): an exclusive contender
//! holds the lock when no key of NAME is older than its own; a shared one when no
//! exclusive key is older. A waiter watches the newest older key that blocks it and
//! looks again when that key is deleted (released, or its lease expired), so release
//! wakes exactly the next waiter at once, with no polling, and a reader that comes after
//! a waiting writer queues behind it (writers are preferred, as with local locks).
//!
//! The key's value is the holder's `info` text, the same `KEY: value` lines a local lock
//! keeps on disk, so a busy lock names its holder (PID, host, label, command, since).
//!
//! The holder keeps its lease alive from a thread. When the lease is lost (etcd
//! unreachable for the TTL, or the lease revoked), the thread kills the command at once:
//! by then another holder may be admitted. The lock key's creation revision is the
//! fencing token: it grows with every new holder of any lock in the cluster.
//!
//! Names: a file's lock is named by its canonical path; `--name` gives any name. A name
//! never contains `//`, never ends in `/`, and has no NUL or line break: that keeps the
//! keys of one name from ever falling in another name's range.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::gateway::{Gateway, GwError, Kv, MemberStatus, Range, Wake};
use crate::lock::info::{Info, Mode};

/// The default lease TTL. etcd's minimum with default settings is 2 s (it raises
/// anything shorter); a killed holder's lock is handed on within the TTL plus etcd's
/// expiry sweep (0.5 s), so under 3 s. Keepalives go out every 250 ms at this TTL (see
/// [`keepalive_interval`]).
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(2);

/// The default key prefix.
pub(crate) const DEFAULT_PREFIX: &str = "lockrun/";

/// Each call to etcd may take this long while etcd cannot be reached (at least; a longer
/// wait for the lock lets it take that long, up to [`MAX_UNREACHABLE`]).
pub(crate) const MIN_UNREACHABLE: Duration = Duration::from_secs(1);
pub(crate) const MAX_UNREACHABLE: Duration = Duration::from_secs(10);

// Checked for every --name, local or in etcd: one rule for both.
pub(crate) use crate::lock::key::name_problem;

/// The lease counts as lost this long before it could expire in etcd.
const SAFETY_MARGIN: Duration = Duration::from_millis(200);

/// One etcd cluster as a lock store.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) gateway: Gateway,
    /// Prepended to every key (default `lockrun/`).
    pub(crate) prefix: String,
    pub(crate) ttl: Duration,
}

/// How to take a lock in etcd.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub(crate) name: &'a str,
    pub(crate) shared: bool,
    /// `None` waits forever, zero tries once.
    pub(crate) timeout: Option<Duration>,
    pub(crate) notice_after: Option<Duration>,
    /// The holder's info (PID, host, label, command, mode...), stored as the key's value.
    pub(crate) info: Info,
}

/// What went wrong taking or keeping an etcd lock.
#[derive(Debug)]
pub(crate) enum LockError {
    /// The lock is held; `holder` describes the oldest holder.
    Busy { holder: String, waited: Duration },
    /// etcd could not be used (unreachable, refused, auth).
    Etcd(GwError),
    /// The lease ended while waiting or holding.
    Lost(String),
}

impl From<GwError> for LockError {
    fn from(e: GwError) -> Self {
        LockError::Etcd(e)
    }
}

/// A lock held in etcd. Released (its lease revoked) by [`Held::release`] or on drop.
#[derive(Debug)]
pub(crate) struct Held {
    store: Store,
    key: Vec<u8>,
    lease: i64,
    /// The lock key's creation revision: the fencing token.
    revision: i64,
    keeper: Keeper,
    released: bool,
}

impl Store {
    /// `<prefix><name>//`: the start of the range of NAME's keys.
    fn range_of(&self, name: &str) -> (Vec<u8>, Vec<u8>) {
        let start = format!("{}{name}//", self.prefix).into_bytes();
        let end = prefix_end(&start);
        (start, end)
    }

    /// How long one etcd call may go on failing during a wait of `timeout`.
    fn call_limit(timeout: Option<Duration>) -> Duration {
        timeout
            .unwrap_or(MAX_UNREACHABLE)
            .clamp(MIN_UNREACHABLE, MAX_UNREACHABLE)
    }

    /// Takes the lock on `req.name`, waiting as `req.timeout` says.
    pub(crate) fn acquire(&self, req: &Request<'_>) -> Result<Held, LockError> {
        let started = Instant::now();
        let deadline = req.timeout.map(|t| started + t);
        let call_limit = Store::call_limit(req.timeout);
        let calls = || Instant::now() + call_limit;
        let ttl_secs = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let grant_sent = Instant::now();
        let (lease, granted) = self.gateway.lease_grant(ttl_secs, calls())?;
        let granted = Duration::from_secs(u64::try_from(granted.max(1)).unwrap_or(1));
        crate::trace::step(|| format!("etcd: lease {lease:016x} granted, TTL {granted:?}"));
        // From here on the lease must be kept alive (a wait may outlast the TTL) and,
        // on any failure, revoked.
        let keeper = match Keeper::start(
            self.gateway.clone(),
            lease,
            granted,
            grant_sent,
            req.name.to_string(),
        ) {
            Ok(k) => k,
            Err(e) => {
                let _ = self.gateway.lease_revoke(lease, calls());
                return Err(LockError::Etcd(GwError::Protocol(format!(
                    "cannot start the keepalive thread: {e}"
                ))));
            }
        };
        let mut held = Held {
            store: self.clone(),
            key: Vec::new(),
            lease,
            revision: 0,
            keeper,
            released: false,
        };
        let (start, end) = self.range_of(req.name);
        let mut key = start.clone();
        key.extend_from_slice(format!("{lease:016x}").as_bytes());
        held.key = key.clone();
        let mut info = req.info.clone();
        info.mode = Some(if req.shared {
            Mode::Shared
        } else {
            Mode::Exclusive
        });
        let value = info.render() + &format!("LEASE: {lease:016x}\n");
        let (_, mut range) =
            self.gateway
                .create_and_range(&key, value.as_bytes(), lease, &start, &end, calls())?;
        let mine = range
            .kvs
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.create_revision)
            .ok_or_else(|| {
                LockError::Etcd(GwError::Protocol(
                    "the lock key just written is not there".into(),
                ))
            })?;
        held.revision = mine;
        let mut notice_at = req.notice_after.map(|d| started + d);
        // Bounded: each round waits for a blocker's deletion (or the deadline), and there
        // are finitely many older keys, none of which can come back.
        loop {
            if let Some(why) = held.keeper.lost() {
                return Err(LockError::Lost(why));
            }
            let blocker = last_blocker(&range, mine, req.shared);
            let Some(blocker) = blocker else {
                crate::trace::step(|| {
                    format!(
                        "etcd: acquired {} at revision {mine} after {:.3} ms",
                        req.name,
                        started.elapsed().as_secs_f64() * 1000.0
                    )
                });
                return Ok(held);
            };
            let holder = describe_holder(&range, mine, req.shared);
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(LockError::Busy {
                    holder,
                    waited: started.elapsed(),
                });
            }
            if let Some(at) = notice_at
                && Instant::now() >= at
            {
                eprintln!("lockrun: waiting for {}, held by {holder}", req.name);
                notice_at = None;
            }
            let wake = match (deadline, notice_at) {
                (Some(d), Some(n)) => Some(d.min(n)),
                (d, n) => d.or(n),
            };
            crate::trace::step(|| {
                format!(
                    "etcd: waiting for {} (revision {}) to go",
                    String::from_utf8_lossy(&blocker.key),
                    blocker.create_revision
                )
            });
            // A far-off wake-up still bounds each watch: look again every minute.
            let until = wake.unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            let deleted = self
                .gateway
                .wait_deleted(&blocker.key, range.revision, until)?;
            // Keys older than ours never come back, so when the one that went was the
            // last that blocked us the lock is ours: no second look (one round trip less
            // on every handoff).
            if deleted == Wake::Deleted && blockers(&range, mine, req.shared) == 1 {
                range.kvs.retain(|kv| kv.key != blocker.key);
                continue;
            }
            range = self.gateway.range(&start, &end, calls())?;
        }
    }

    /// Who holds `name` now (the oldest key, and the shared keys right after a shared
    /// one) and how many wait behind them.
    pub(crate) fn admitted(&self, name: &str, timeout: Duration) -> Result<Admitted, GwError> {
        let (start, end) = self.range_of(name);
        let kvs = self
            .gateway
            .range(&start, &end, Instant::now() + timeout)?
            .kvs;
        Ok(Admitted::of(&kvs))
    }

    /// Every lock under the prefix: each name with its holders and waiters, in the order
    /// of their oldest key; and the keys lockrun did not write (no lease, or not
    /// `<name>//<lease>`), which it never touches.
    pub(crate) fn all_locks(&self, timeout: Duration) -> Result<Listing, GwError> {
        let start = self.prefix.as_bytes().to_vec();
        let end = prefix_end(&start);
        let kvs = self
            .gateway
            .range(&start, &end, Instant::now() + timeout)?
            .kvs;
        let mut names: Vec<(String, Vec<Kv>)> = Vec::new();
        let mut foreign = Vec::new();
        for kv in kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let rest = key.strip_prefix(&self.prefix).unwrap_or(&key);
            let ours = rest.rsplit_once("//").filter(|(name, lease)| {
                kv.lease != 0
                    && name_problem(name).is_none()
                    && *lease == format!("{:016x}", kv.lease)
            });
            let Some((name, _)) = ours else {
                foreign.push(kv);
                continue;
            };
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, keys)) => keys.push(kv),
                None => names.push((name.to_string(), vec![kv])),
            }
        }
        let locks = names
            .into_iter()
            .map(|(name, kvs)| (name, Admitted::of(&kvs)))
            .collect();
        Ok(Listing { locks, foreign })
    }

    /// Revokes a lease (`unlock --force`): its key goes, its holder finds it lost.
    pub(crate) fn revoke(&self, lease: i64, timeout: Duration) -> Result<(), GwError> {
        self.gateway.lease_revoke(lease, Instant::now() + timeout)
    }
}

/// Everything under the prefix: each lock by name, and the keys lockrun did not write.
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) locks: Vec<(String, Admitted)>,
    pub(crate) foreign: Vec<Kv>,
}

/// The holders of a lock and the number of waiters.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) admitted: Vec<Kv>,
    pub(crate) waiting: usize,
}

impl Admitted {
    /// From one name's keys, oldest first: the oldest key holds, and the shared keys
    /// right after a shared one.
    fn of(kvs: &[Kv]) -> Admitted {
        let admitted: Vec<Kv> = match kvs.first() {
            Some(first) if is_shared(first) => {
                kvs.iter().take_while(|kv| is_shared(kv)).cloned().collect()
            }
            Some(first) => vec![first.clone()],
            None => Vec::new(),
        };
        let waiting = kvs.len() - admitted.len();
        Admitted { admitted, waiting }
    }
}

/// The newest key older than ours that keeps us out.
fn last_blocker(range: &Range, mine: i64, shared: bool) -> Option<Kv> {
    range
        .kvs
        .iter()
        .filter(|kv| kv.create_revision < mine && (!shared || !is_shared(kv)))
        .max_by_key(|kv| kv.create_revision)
        .cloned()
}

/// How many keys older than ours keep us out.
fn blockers(range: &Range, mine: i64, shared: bool) -> usize {
    range
        .kvs
        .iter()
        .filter(|kv| kv.create_revision < mine && (!shared || !is_shared(kv)))
        .count()
}

/// Who holds the lock we wait for: the oldest key that blocks us.
fn describe_holder(range: &Range, mine: i64, shared: bool) -> String {
    let oldest = range
        .kvs
        .iter()
        .filter(|kv| kv.create_revision < mine && (!shared || !is_shared(kv)))
        .min_by_key(|kv| kv.create_revision);
    match oldest {
        Some(kv) => describe(kv),
        None => "another holder".into(),
    }
}

fn is_shared(kv: &Kv) -> bool {
    Info::parse(&String::from_utf8_lossy(&kv.value)).mode == Some(Mode::Shared)
}

/// "mcp-server (PID 12345 on myhost, 'node server.js', held 2.1s)", from what the
/// holder stored.
pub(crate) fn describe(kv: &Kv) -> String {
    let info = Info::parse(&String::from_utf8_lossy(&kv.value));
    let since = info
        .acquired
        .as_deref()
        .and_then(|a| humantime::parse_rfc3339(a).ok());
    info.describe(since)
}

/// The first key after every key that starts with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the keyspace.
    vec![0]
}

impl Held {
    /// The fencing token: the lock key's creation revision.
    pub(crate) fn fencing_token(&self) -> i64 {
        self.revision
    }

    /// SIGKILL this process group (the command run under the lock) the moment the
    /// lease is lost.
    pub(crate) fn kill_on_loss(&self, pgid: u32) {
        self.keeper.state.child.store(pgid, Ordering::SeqCst);
        // Lost before the command was known: kill it now.
        if self.keeper.lost().is_some() {
            kill_group(pgid);
        }
    }

    /// Why the lock was lost, if it was.
    pub(crate) fn lost(&self) -> Option<String> {
        self.keeper.lost()
    }

    /// Proves the lease still lives, with a round trip to etcd, just before an action
    /// that only the holder may take (the rename of `update`).
    pub(crate) fn check(&self) -> Result<(), LockError> {
        if let Some(why) = self.keeper.lost() {
            return Err(LockError::Lost(why));
        }
        let sent = Instant::now();
        let valid_until = self.keeper.valid_until();
        if sent >= valid_until {
            return Err(LockError::Lost(self.keeper.declare_lost(None)));
        }
        match self.store.gateway.lease_keepalive(self.lease, valid_until) {
            Ok(Some(ttl)) => {
                self.keeper.renewed(sent, ttl);
                Ok(())
            }
            Ok(None) => Err(LockError::Lost(
                self.keeper
                    .declare_lost(Some("etcd says the lease is gone")),
            )),
            Err(_) => Err(LockError::Lost(self.keeper.declare_lost(None))),
        }
    }

    /// The lease that holds the lock, and the lock's key.
    pub(crate) fn lease(&self) -> i64 {
        self.lease
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Stops keeping the lease alive here without revoking it: another process (the
    /// keeper `acquire` leaves behind) has taken the lease over.
    pub(crate) fn hand_over(mut self) {
        self.keeper.stop();
        self.released = true;
    }

    /// Takes over a lease another process holds a lock with (the keeper of `acquire`):
    /// etcd confirmed it alive at `sent` for `ttl` seconds; from now on a thread here
    /// keeps it alive.
    pub(crate) fn adopt(
        store: Store,
        key: Vec<u8>,
        lease: i64,
        revision: i64,
        confirmed: (Instant, i64),
        name: String,
    ) -> std::io::Result<Held> {
        let (sent, ttl) = confirmed;
        let ttl = Duration::from_secs(u64::try_from(ttl.max(1)).unwrap_or(1));
        let keeper = Keeper::start(store.gateway.clone(), lease, ttl, sent, name)?;
        Ok(Held {
            store,
            key,
            lease,
            revision,
            keeper,
            released: false,
        })
    }

    /// Gives the lock up: revokes the lease, which deletes the key and wakes the next
    /// waiter.
    pub(crate) fn release(mut self) -> Result<(), LockError> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), LockError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        self.keeper.stop();
        let lost = self.keeper.lost();
        // Keep trying for a TTL (an election may hold requests up a while): past that
        // the lease, no longer kept alive, has expired anyway.
        let revoked = self.store.gateway.lease_revoke(
            self.lease,
            Instant::now() + self.store.ttl.max(MIN_UNREACHABLE * 2),
        );
        crate::trace::step(|| format!("etcd: lease {:016x} revoked: {revoked:?}", self.lease));
        if let Some(why) = lost {
            return Err(LockError::Lost(why));
        }
        revoked.map_err(LockError::Etcd)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// The keepalive thread and what it shares with the holder.
#[derive(Debug)]
struct Keeper {
    state: Arc<KeeperState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct KeeperState {
    lease: i64,
    name: String,
    /// When the lease may expire at the earliest: the send time of the last keepalive
    /// etcd answered, plus the TTL it gave. The holder counts the lock lost a little
    /// before ([`SAFETY_MARGIN`]), so that its command is dead when etcd could let the
    /// next holder in.
    valid_until: Mutex<(Instant, Instant)>,
    /// Why the lease is lost, once it is.
    lost: Mutex<Option<String>>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// The command to SIGKILL when the lease is lost (0: none yet).
    child: AtomicU32,
    /// Since when a keepalive has been going unanswered (`None`: the last one was
    /// answered): while it is set, the election watch asks the members about their leader.
    trouble_since: Mutex<Option<Instant>>,
}

impl Keeper {
    fn start(
        gateway: Gateway,
        lease: i64,
        ttl: Duration,
        sent: Instant,
        name: String,
    ) -> std::io::Result<Keeper> {
        let state = Arc::new(KeeperState {
            lease,
            name,
            valid_until: Mutex::new((sent, sent + ttl)),
            lost: Mutex::new(None),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            child: AtomicU32::new(0),
            trouble_since: Mutex::new(None),
        });
        let shared = Arc::clone(&state);
        // The thread starts with the signals that `with` waits for (and the others a
        // command's life may bring) blocked, and keeps them so: a process-directed signal goes to a thread that does not block it,
        // and a SIGCHLD taken (and, by default, discarded) here would never reach
        // `with`'s sigtimedwait, which would then wait for an ended command forever.
        let mask = crate::sys::SignalMask::block(&[
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGCONT,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGALRM,
            libc::SIGWINCH,
        ])?;
        let thread = std::thread::Builder::new()
            .name("etcd-keepalive".into())
            .spawn(move || keep_alive(&gateway, &shared, ttl));
        drop(mask);
        let thread = thread?;
        Ok(Keeper {
            state,
            thread: Some(thread),
        })
    }

    fn lost(&self) -> Option<String> {
        self.state.lost.lock().ok().and_then(|l| l.clone())
    }

    fn valid_until(&self) -> Instant {
        self.state.valid_until()
    }

    fn renewed(&self, sent: Instant, ttl: i64) {
        self.state.renewed(sent, ttl);
    }

    fn declare_lost(&self, why: Option<&str>) -> String {
        self.state.declare_lost(why)
    }

    fn stop(&mut self) {
        if let Ok(mut s) = self.state.stop.lock() {
            *s = true;
        }
        self.state.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop();
    }
}

impl KeeperState {
    /// The moment the holder must count the lock lost without a newer keepalive.
    fn valid_until(&self) -> Instant {
        self.valid_until
            .lock()
            .map(|v| v.1.checked_sub(SAFETY_MARGIN).unwrap_or(v.1))
            .unwrap_or_else(|_| Instant::now())
    }

    fn renewed(&self, sent: Instant, ttl: i64) {
        let ttl = Duration::from_secs(u64::try_from(ttl.max(1)).unwrap_or(1));
        if let Ok(mut v) = self.valid_until.lock()
            && sent + ttl > v.1
        {
            *v = (sent, sent + ttl);
        }
    }

    /// Moves the deadline to `until` (the lease can live that long, see
    /// [`watch_elections`]) if the lock is not lost and the current deadline has not
    /// passed; true when it moved.
    fn extend(&self, until: Instant) -> bool {
        let Ok(lost) = self.lost.lock() else {
            return false;
        };
        if lost.is_some() {
            return false;
        }
        let Ok(mut v) = self.valid_until.lock() else {
            return false;
        };
        // Checked under both locks: the keeper cannot declare the loss meanwhile, and an
        // answer that came after the deadline extends nothing.
        if Instant::now() >= v.1.checked_sub(SAFETY_MARGIN).unwrap_or(v.1) || until <= v.1 {
            return false;
        }
        v.1 = until;
        true
    }

    fn set_trouble(&self, since: Option<Instant>) {
        if let Ok(mut t) = self.trouble_since.lock() {
            *t = since;
        }
    }

    fn trouble_since(&self) -> Option<Instant> {
        self.trouble_since.lock().ok().and_then(|t| *t)
    }

    /// Records the loss (the first reason wins), kills the command, and returns the
    /// line to print.
    fn declare_lost(&self, why: Option<&str>) -> String {
        let Ok(mut lost) = self.lost.lock() else {
            return format!("lost the lock on {}", self.name);
        };
        if let Some(line) = lost.as_ref() {
            return line.clone();
        }
        let since = self
            .valid_until
            .lock()
            .map(|v| v.0.elapsed())
            .unwrap_or_default();
        let line = format!(
            "lost the lock on {}: lease expired after {} {}",
            self.name,
            crate::lock::format_age(since),
            why.map_or_else(
                || "without an answer from etcd".to_string(),
                |w| format!("({w})")
            ),
        );
        let child = self.child.load(Ordering::SeqCst);
        if child != 0 {
            kill_group(child);
        }
        *lost = Some(line.clone());
        line
    }

    /// Sleeps until `until` or a stop; true when stopped.
    fn sleep_until(&self, until: Instant) -> bool {
        let Ok(mut stopped) = self.stop.lock() else {
            return true;
        };
        // Bounded: each turn either sees the stop, passes `until`, or waits for it.
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            match self.wake.wait_timeout(stopped, until - now) {
                Ok((s, _)) => stopped = s,
                Err(_) => return true,
            }
        }
    }
}

/// SIGKILLs the command's process group (the command leads it): its whole tree.
fn kill_group(pgid: u32) {
    let _ = crate::sys::tree::signal_group(pgid, libc::SIGKILL);
}

/// The keepalive loop: refresh every [`keepalive_interval`]; while etcd does not answer,
/// retry every 100 ms; once the lease may have expired, declare it lost (killing the
/// command) and stop. Beside it, [`watch_elections`] may push the deadline back while
/// the cluster is electing a leader.
fn keep_alive(gateway: &Gateway, state: &KeeperState, ttl: Duration) {
    std::thread::scope(|scope| {
        // Started from this thread, it keeps this thread's blocked signals.
        let watch = std::thread::Builder::new()
            .name("etcd-election-watch".into())
            .spawn_scoped(scope, || watch_elections(gateway, state, ttl));
        if let Err(e) = watch {
            crate::trace::step(|| format!("etcd: no election watch ({e}): deadlines stay"));
        }
        renew(gateway, state, ttl);
        // The watch ends at the stop, or once the loss is declared.
        if state.lost.lock().is_ok_and(|l| l.is_none()) {
            state.set_trouble(None);
        }
    });
}

fn renew(gateway: &Gateway, state: &KeeperState, ttl: Duration) {
    let interval = keepalive_interval(ttl);
    let retry = Duration::from_millis(100);
    let mut next = Instant::now() + interval;
    // Bounded by the stop flag and by the loss, which ends it.
    loop {
        if state.sleep_until(next.min(state.valid_until())) {
            return;
        }
        let valid_until = state.valid_until();
        let sent = Instant::now();
        if sent >= valid_until {
            state.declare_lost(None);
            return;
        }
        if state.trouble_since().is_none() {
            state.set_trouble(Some(sent));
        }
        match gateway.lease_keepalive(state.lease, valid_until) {
            Ok(Some(granted)) => {
                state.renewed(sent, granted);
                state.set_trouble(None);
                next = sent + interval;
            }
            Ok(None) => {
                state.declare_lost(Some("etcd says the lease is gone: revoked, or expired"));
                return;
            }
            Err(e) => {
                crate::trace::step(|| format!("etcd: keepalive failed: {e}"));
                next = Instant::now() + retry;
            }
        }
    }
}

/// How much of the TTL each keepalive leaves ahead at least: etcd elects a new leader
/// 1 to 2 s after the old one died (its default election timeout, randomised), and the
/// first keepalive after the election must come before the deadline.
const ELECTION_ALLOWANCE: Duration = Duration::from_millis(1750);

/// Every third of the TTL, and more often where that would leave less than
/// [`ELECTION_ALLOWANCE`] after the last answered keepalive (4 a second at the
/// default TTL of 2 s), but not more often than every 100 ms.
fn keepalive_interval(ttl: Duration) -> Duration {
    (ttl / 3)
        .min(ttl.saturating_sub(ELECTION_ALLOWANCE))
        .max(Duration::from_millis(100))
}

/// How long a keepalive may go unanswered before the election watch starts asking.
const WATCH_AFTER: Duration = Duration::from_millis(200);
/// How often the election watch asks, and how long each member may take to answer.
const WATCH_EVERY: Duration = Duration::from_millis(150);
const WATCH_PATIENCE: Duration = Duration::from_millis(300);

/// While a keepalive goes unanswered, asks every endpoint for its member's leader.
/// When a majority of the cluster's voting members answer, before the current deadline,
/// that they have no leader, then at the moment `s` the question was sent no leader could
/// commit anything, a revoke included; a leader elected later refreshes every lease on
/// taking office (etcd's lessor `Promote`: expiry = now + TTL + an election timeout), so
/// the lease cannot expire before `s + TTL`: the deadline moves there (less the margin).
/// Fewer "no leader" answers (members down, stopped or cut off from us, one endpoint of
/// a larger cluster, a member that still follows a leader) move nothing.
fn watch_elections(gateway: &Gateway, state: &KeeperState, ttl: Duration) {
    // The cluster's voting members, read once while it is healthy, at the first turn
    // (a lock held for less than that costs etcd nothing more).
    let mut members: Option<Vec<u64>> = None;
    // Bounded by the stop flag and by the loss.
    loop {
        if state.sleep_until(Instant::now() + WATCH_EVERY) {
            return;
        }
        if state.lost.lock().map_or(true, |l| l.is_some()) {
            return;
        }
        let trouble = state.trouble_since();
        let Some(members) = members.as_ref() else {
            if trouble.is_some_and(|t| t.elapsed() >= WATCH_AFTER) {
                // Not healthy now: read the member list later, once it is.
                continue;
            }
            match gateway.voting_members(Instant::now() + MIN_UNREACHABLE) {
                Ok(m) => members = Some(m),
                Err(e) => {
                    crate::trace::step(|| {
                        format!("etcd: member list unavailable ({e}): no deadline will be extended")
                    });
                    return;
                }
            }
            continue;
        };
        let majority = members.len() / 2 + 1;
        let Some(since) = trouble else {
            continue;
        };
        if since.elapsed() < WATCH_AFTER {
            continue;
        }
        let deadline = state.valid_until();
        let s = Instant::now();
        if s >= deadline {
            continue;
        }
        let answers = gateway.status_round(deadline.min(s + WATCH_PATIENCE));
        let leaderless = leaderless(members, &answers);
        if leaderless < majority {
            crate::trace::step(|| {
                format!(
                    "etcd: {leaderless} of {} voting members say they have no leader ({} answered): deadline kept",
                    members.len(),
                    answers.len()
                )
            });
            continue;
        }
        if state.extend(s + ttl) {
            crate::trace::step(|| {
                format!(
                    "etcd: {leaderless} of {} voting members have no leader: no revoke can commit until a new leader, which refreshes the lease; deadline extended to {:.3} s from now",
                    members.len(),
                    (s + ttl)
                        .checked_sub(SAFETY_MARGIN)
                        .unwrap_or(s + ttl)
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                )
            });
        }
    }
}

/// How many distinct voting members of `members` answered that they have no leader
/// (learners, strangers and a member answering twice through two endpoints count once
/// or not at all).
fn leaderless(members: &[u64], answers: &[MemberStatus]) -> usize {
    let mut ids: Vec<u64> = answers
        .iter()
        .filter(|a| a.leader == 0 && !a.learner && members.contains(&a.member))
        .map(|a| a.member)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_reach_into_another_names_range_are_refused() {
        assert!(name_problem("nightly-backup").is_none());
        assert!(name_problem("/srv/shared/memory.json").is_none());
        for bad in ["", "a//b", "a/", "a\nb", "a\0b"] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn only_distinct_voting_members_without_a_leader_count() {
        let st = |member, leader, learner| MemberStatus {
            member,
            leader,
            learner,
        };
        let members = [1, 2, 3];
        // The same member through two endpoints counts once.
        assert_eq!(leaderless(&members, &[st(1, 0, false), st(1, 0, false)]), 1);
        // One that names a leader, a learner, a stranger: none counts.
        assert_eq!(
            leaderless(
                &members,
                &[st(2, 3, false), st(3, 0, true), st(9, 0, false)]
            ),
            0
        );
        assert_eq!(leaderless(&members, &[st(1, 0, false), st(3, 0, false)]), 2);
    }

    #[test]
    fn keepalives_leave_time_for_an_election() {
        let ms = |m| Duration::from_millis(m);
        assert_eq!(keepalive_interval(ms(2000)), ms(250));
        assert_eq!(keepalive_interval(ms(3000)), ms(1000));
        assert_eq!(keepalive_interval(ms(9000)), ms(3000));
        assert_eq!(keepalive_interval(ms(1000)), ms(100));
    }

    #[test]
    fn the_range_of_a_prefix_ends_after_it() {
        assert_eq!(prefix_end(b"lockrun/a//"), b"lockrun/a/0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    }
}
