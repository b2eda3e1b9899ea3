//! Every message from the peer site is checked here before anything acts on it.
//!
//! A name from the peer becomes a path under the driver's root, so a volume id of `..` would
//! reach outside it (it did: one `Push{volume: ".."}` deleted the root and its parent). Modes
//! and mtimes are applied to files, so a setuid bit or an mtime past the year 9999 must not
//! get that far either.

use crate::peer::{GroupMember, Msg};
use crate::site::valid_id;
use crate::tree::{self, Entry};

/// Latest mtime accepted, in seconds either side of the epoch: 9999-12-31T23:59:59Z. A larger
/// one is no real file's and would overflow the system clock type when applied.
pub const MTIME_LIMIT_SECS: i128 = 253_402_300_799;
/// Permission bits kept from the peer: no setuid or setgid on what this site writes.
pub const MODE_MASK: u32 = 0o1777;
/// A refusal's reason is shown to people; a longer one is cut.
const REASON_LIMIT: usize = 1024;

/// The message if it is safe to act on (modes masked), or what is wrong with it.
pub fn message(msg: Msg) -> Result<Msg, String> {
    Ok(match msg {
        Msg::RoleQuery { volume } => Msg::RoleQuery {
            volume: id(volume)?,
        },
        Msg::Pull { volume } => Msg::Pull {
            volume: id(volume)?,
        },
        Msg::Push {
            volume,
            entries,
            taken_ms,
        } => Msg::Push {
            volume: id(volume)?,
            entries: entries_of(entries)?,
            taken_ms,
        },
        Msg::PushGroup {
            group,
            members,
            taken_ms,
        } => {
            if !group.starts_with("vg-") {
                return Err(format!("{group:?} is not a volume group id (vg-…)"));
            }
            Msg::PushGroup {
                group: id(group)?,
                members: members
                    .into_iter()
                    .map(|m| {
                        Ok(GroupMember {
                            volume: id(m.volume)?,
                            entries: entries_of(m.entries)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                taken_ms,
            }
        }
        Msg::Need { paths } => Msg::Need {
            paths: paths_of(paths)?,
        },
        Msg::NeedGroup { paths } => Msg::NeedGroup {
            paths: paths
                .into_iter()
                .map(paths_of)
                .collect::<Result<_, String>>()?,
        },
        Msg::Refused { mut reason } => {
            if reason.len() > REASON_LIMIT {
                let mut cut = REASON_LIMIT;
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                reason.truncate(cut);
                reason.push('…');
            }
            Msg::Refused { reason }
        }
        other @ (Msg::RoleReply { .. } | Msg::Committed { .. }) => other,
    })
}

fn id(volume: String) -> Result<String, String> {
    valid_id(&volume).map_err(|e| e.to_string())?;
    Ok(volume)
}

fn paths_of(paths: Vec<String>) -> Result<Vec<String>, String> {
    for path in &paths {
        tree::safe_relative(path).map_err(|e| e.to_string())?;
    }
    Ok(paths)
}

fn entries_of(entries: Vec<Entry>) -> Result<Vec<Entry>, String> {
    entries
        .into_iter()
        .map(|mut e| {
            tree::safe_relative(&e.path).map_err(|e| e.to_string())?;
            if e.mtime_ns.div_euclid(1_000_000_000).abs() > MTIME_LIMIT_SECS {
                return Err(format!(
                    "mtime {} ns of {:?} is out of range",
                    e.mtime_ns, e.path
                ));
            }
            e.mode &= MODE_MASK;
            Ok(e)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            path: path.into(),
            dir: false,
            size: 1,
            mtime_ns: 0,
            mode: 0o644,
        }
    }

    fn push(volume: &str, entries: Vec<Entry>) -> Msg {
        Msg::Push {
            volume: volume.into(),
            entries,
            taken_ms: None,
        }
    }

    #[test]
    fn names_that_leave_the_root_are_refused_in_every_message() {
        for bad in ["..", ".", "", "a/b", "../x", ".hidden", "/etc"] {
            let volume = || bad.to_owned();
            let messages = [
                Msg::RoleQuery { volume: volume() },
                Msg::Pull { volume: volume() },
                push(bad, vec![]),
                Msg::PushGroup {
                    group: volume(),
                    members: vec![],
                    taken_ms: None,
                },
                Msg::PushGroup {
                    group: "vg-g".into(),
                    members: vec![GroupMember {
                        volume: volume(),
                        entries: vec![],
                    }],
                    taken_ms: None,
                },
                Msg::PushGroup {
                    group: format!("vg-{bad}/x"),
                    members: vec![],
                    taken_ms: None,
                },
            ];
            for msg in messages {
                let shown = format!("{msg:?}");
                assert!(message(msg).is_err(), "{shown} was accepted");
            }
        }
    }

    #[test]
    fn entry_and_need_paths_that_leave_the_volume_are_refused() {
        for bad in ["..", "a/../../b", "/abs", ""] {
            assert!(message(push("v", vec![entry(bad)])).is_err(), "{bad}");
            assert!(
                message(Msg::Need {
                    paths: vec![bad.into()]
                })
                .is_err()
            );
            assert!(
                message(Msg::NeedGroup {
                    paths: vec![vec![], vec![bad.into()]]
                })
                .is_err()
            );
        }
        assert!(message(push("v", vec![entry("a/b.txt")])).is_ok());
    }

    #[test]
    fn setuid_and_setgid_are_masked_and_absurd_mtimes_refused() {
        let mut e = entry("f");
        e.mode = 0o6755;
        let Ok(Msg::Push { entries, .. }) = message(push("v", vec![e.clone()])) else {
            panic!("a setuid file is masked, not refused");
        };
        assert_eq!(entries[0].mode, 0o755);
        for ns in [i128::MAX, i128::MIN, (MTIME_LIMIT_SECS + 1) * 1_000_000_000] {
            e.mtime_ns = ns;
            let refused = message(push("v", vec![e.clone()])).unwrap_err();
            assert!(refused.contains("out of range"), "{refused}");
        }
        e.mtime_ns = -1_000_000_000;
        assert!(
            message(push("v", vec![e])).is_ok(),
            "a file from 1969 is fine"
        );
    }

    #[test]
    fn a_long_refusal_is_cut_on_a_character_boundary() {
        let Ok(Msg::Refused { reason }) = message(Msg::Refused {
            reason: "é".repeat(5000),
        }) else {
            panic!("refusals pass");
        };
        assert!(reason.len() <= REASON_LIMIT + '…'.len_utf8());
    }
}
