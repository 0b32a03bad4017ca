//! Part of a key set's record: its last status write, so that the watch's copy of the key set
//! can be told apart from what the write produced.
//!
//! A cached key set still at the version the write was made on predates it (the watch has not
//! delivered it yet): planning from it would record a change twice, so that reconcile waits for
//! the echo instead. The echo itself, when nobody waits for it, is the key set the reconcile
//! planned, so reconciling it again would only find nothing to do.

use super::token::Token;

pub(super) struct StatusWrite {
    /// The key set's resourceVersion the write was made on, and the one it produced.
    on: Token,
    produced: Token,
    /// A reconcile found the cache behind and left its work to this write's echo: the echo must
    /// not be skipped.
    awaited: bool,
}

impl StatusWrite {
    /// `None` when no echo will come: the API server answered with the same resourceVersion (a
    /// write that changed nothing causes no watch event, and waiting for one would freeze the
    /// key set, issue 21), or a version is missing.
    pub fn new(on: Option<&str>, produced: Option<&str>) -> Option<Self> {
        match (on, produced) {
            (Some(on), Some(produced)) if on != produced => Some(StatusWrite {
                on: Token::new(on),
                produced: Token::new(produced),
                awaited: false,
            }),
            _ => None,
        }
    }

    /// True when the key set at `resource_version` predates this write; its echo is then
    /// awaited.
    pub fn is_behind(&mut self, resource_version: Option<&str>) -> bool {
        let behind = resource_version.is_some_and(|rv| self.on.is(rv));
        self.awaited |= behind;
        behind
    }

    /// True when the key set at `resource_version` is this write's echo and no reconcile waits
    /// for it. The write is kept after its echo (until the next write): a reconcile dispatched
    /// before the echo may still hold the copy the write was made on, and must find it behind.
    pub fn is_unawaited_echo(&self, resource_version: Option<&str>) -> bool {
        !self.awaited && resource_version.is_some_and(|rv| self.produced.is(rv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_is_skipped_unless_a_reconcile_waits_for_it() {
        let mut write = StatusWrite::new(Some("10"), Some("11")).expect("an echo comes");
        assert!(
            !write.is_unawaited_echo(Some("12")),
            "a change by someone else"
        );
        assert!(write.is_behind(Some("10")), "still behind");
        // A reconcile (a Secret edited by hand, say) found the cache still at 10 and left its
        // work to the echo: the echo must now reach the reconciler.
        assert!(!write.is_unawaited_echo(Some("11")));
        assert!(!write.is_behind(Some("11")));

        let mut write = StatusWrite::new(Some("11"), Some("12")).expect("an echo comes");
        assert!(write.is_unawaited_echo(Some("12")));
        assert!(write.is_behind(Some("11")), "a copy taken before the echo");
        assert!(!write.is_behind(Some("12")));
        assert!(!write.is_behind(None));

        assert!(
            StatusWrite::new(Some("12"), Some("12")).is_none(),
            "unchanged"
        );
        assert!(StatusWrite::new(None, Some("12")).is_none());
    }
}
