//! Runs one prepared container as a local process in a mount namespace of its own
//! (`unshare --mount --pid`, util-linux; needs root, as a kubelet does), so it sees only its
//! own processes and all of them end with it. Its root is a fresh tmpfs
//! holding the host's system folders read-only (`/sys` too), the image's `/usr` files over the
//! host's, `/dev` with the usual devices, `/proc`, and the container's mounts; the root is then made read-only, as VolSync asks of its movers
//! (`readOnlyRootFilesystem`), and the command runs there (`unshare --root --wd`) with exactly
//! the container's environment. Its output goes to the node log the log endpoint serves.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::process::{Child, Command};

use super::volumes::Prepared;

/// The PATH an image's config would give when the container's env has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds the root in the new namespace, then runs the command there. Arguments: the root's
/// mount point, the mounts file (`host<TAB>path<TAB>ro|rw` lines), the termination-log file,
/// its path in the container, the working directory, the image's `/usr` layers (`:`-separated,
/// or empty), then the command.
const SETUP: &str = r#"set -eu
root=$1 mounts=$2 termination=$3 termination_path=$4 workdir=$5 layers=$6
shift 6
mount -t tmpfs -o mode=0755 lifeline-root "$root"
for d in usr etc bin sbin lib lib32 lib64 libx32 opt sys; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ "$d" = usr ] && [ -n "$layers" ]; then
    # The image's /usr: its own files over the host's (a lower-only overlay is read-only).
    mkdir "$root/usr"; mount -t overlay lifeline-usr -o "lowerdir=$layers:/usr" "$root/usr"
  elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; mount -o remount,bind,ro "$root/$d"
  fi
done
# The image's /usr/local, not the host's (the image's files are placed in it below).
mount -t tmpfs -o mode=0755 lifeline-image "$root/usr/local"
mkdir "$root/proc" "$root/dev"
# This namespace's own /proc: the container sees its own processes.
mount -t proc lifeline-proc "$root/proc"
mount -t tmpfs -o mode=0755 lifeline-dev "$root/dev"
for n in null zero full random urandom tty; do
  touch "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
place() {
  if [ -d "$1" ]; then mkdir -p "$root$2"; else mkdir -p "$(dirname "$root$2")"; touch "$root$2"; fi
  mount --bind "$1" "$root$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$root$2"; fi
}
place "$termination" "$termination_path" rw
while IFS="$(printf '\t')" read -r host path mode; do
  place "$host" "$path" "$mode"
done < "$mounts"
mount -o remount,ro "$root/usr/local"
mount -o remount,ro "$root"
exec env -u SHLVL -u _ -u OLDPWD -u PWD unshare --root="$root" --wd="$workdir" -- "$@"
"#;

/// A started container: its process group is killed when dropped.
pub struct Running {
    pub child: Child,
    pub termination: PathBuf,
    pub log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The whole group: the command and whatever it started.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Starts `container` with its scratch files in `dir` and its output appended to `log`.
pub fn start(container: &Prepared, dir: &Path, log: &Path) -> anyhow::Result<Running> {
    std::fs::create_dir_all(dir)?;
    let root = dir.join("root");
    std::fs::create_dir_all(&root)?;
    let termination = dir.join("termination-log");
    std::fs::write(&termination, "")?;
    let mut lines = String::new();
    for mount in &container.mounts {
        let host = mount.host.display().to_string();
        anyhow::ensure!(
            !host.contains(['\t', '\n']) && !mount.path.contains(['\t', '\n']),
            "mount {:?} has a tab or newline in its path",
            mount.path
        );
        let mode = if mount.read_only { "ro" } else { "rw" };
        lines.push_str(&format!("{host}\t{}\t{mode}\n", mount.path));
    }
    let mounts = dir.join("mounts");
    std::fs::write(&mounts, lines)?;
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut env = container.env.clone();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--"])
        // A PID namespace of its own, as a container has: when its first process ends (or
        // is killed, with unshare: --kill-child), the kernel kills every other, daemons that
        // left the process group included (stunnel, in VolSync's rsync-TLS movers).
        .args([
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ])
        .args([
            "bash",
            "--noprofile",
            "--norc",
            "-c",
            SETUP,
            "lifeline-kubelet",
        ])
        .arg(&root)
        .arg(&mounts)
        .arg(&termination)
        .arg(&container.termination_message_path)
        .arg(&container.working_dir)
        .arg(container.usr_layers.as_deref().unwrap_or_default())
        .args(&container.argv)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start container {:?}", container.name))?;
    Ok(Running {
        child,
        termination,
        log: log.to_owned(),
    })
}

/// The container's termination message: what it wrote to its termination-log path, else
/// (with `FallbackToLogsOnError` and a failure) the end of its log, at most 4 KiB as a
/// kubelet keeps.
pub fn termination_message(running: &Running, from_log: bool, failed: bool) -> Option<String> {
    let written = std::fs::read_to_string(&running.termination).unwrap_or_default();
    let text = if !written.is_empty() {
        written
    } else if from_log && failed {
        let log = std::fs::read_to_string(&running.log).unwrap_or_default();
        super::logs::excerpt(&log, Some(80), None)
    } else {
        return None;
    };
    let mut start = text.len().saturating_sub(4096);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    Some(text[start..].to_owned())
}
