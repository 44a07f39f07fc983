//! The POSIX shell scripts the runtime runs in pods. Step images need
//! `/bin/sh` with `sleep`, `wc`, `tail` and `head` (busybox, Debian,
//! Alpine and every Concourse resource image have them); the helper image
//! also needs `tar`, `cp`, `realpath` and `stat`. Shell rather than a
//! helper binary copied in by an init container: a binary would have to be
//! static to run in any image, and the test cluster's node agent runs host
//! processes, so nothing here could prove it does; a script runs wherever
//! `sh` does.
//!
//! Every value reaches a script as a positional argument or as
//! [`quote`]d text, never spliced in raw.

/// Where a step's working root is in its main container.
pub const ROOT: &str = "/tmp/build/step";
/// Where the wrapper keeps the step's stdin, stdout, stderr and exit code:
/// on the artifact claim, so they outlive atc and the exec stream.
pub const IO: &str = "/tmp/build/.atc-io";
/// Where the helper pod and the `fetch-inputs` init container mount the
/// artifact claim.
pub const STORE: &str = "/store";
/// Where `fetch-inputs` mounts the shared artifact claim (uploads, task
/// caches) when a build's own claim is at [`STORE`].
pub const SHARED: &str = "/shared";

/// The main container's command: waits for the go-ahead (`$IO/go`, given
/// by [`START`] once stdin is in place) when `$1` is `wait`, then runs
/// `"$2" "$3"...` from the working directory with stdin, stdout and
/// stderr on files, writes the exit code, and stays up (a pause) so that
/// outputs can be read and `fly intercept` can exec in. The step's process
/// is the container's child, not an exec'd one: it neither dies with the
/// exec stream nor outlives the pod.
pub const WRAPPER: &str = r#"io=/tmp/build/.atc-io
trap 'exit 143' TERM
if [ "$1" = wait ]; then
  while [ ! -e "$io/go" ]; do sleep 0.1; done
else
  : > "$io/stdin"
fi
shift
: >> "$io/stdout"; : >> "$io/stderr"
if command -v "$1" > /dev/null 2>&1; then
  "$@" < "$io/stdin" > "$io/stdout" 2> "$io/stderr"
  echo $? > "$io/exit.new"
else
  printf '%s' "$1" > "$io/not-found"
  echo 127 > "$io/exit.new"
fi
mv "$io/exit.new" "$io/exit"
while :; do sleep 3600 & wait $!; done
"#;

/// Where a step whose image is an artifact (`image:`) has that artifact,
/// read-only, and the root it builds from it (an emptyDir).
pub const IMAGE_ARTIFACT: &str = "/tmp/build/.atc-image-artifact";
pub const IMAGE_ROOT: &str = "/tmp/build/.atc-image";

/// The program [`WRAPPER`] runs, in the helper image, for a step whose
/// image is an artifact: `$1` the user to run as (empty: root), `$2` the
/// step's program, `$3` the number of the image's `NAME=VALUE` pairs that
/// follow (those the step does not set itself), then the program's
/// arguments. It copies the artifact's `rootfs/` (the step's writes never
/// reach the artifact), mounts /proc, /dev, /sys and the step's working
/// root into the copy and runs the program there with `chroot`, from the
/// same working directory, with the image's environment. Mounting needs a
/// privileged container; the image needs `/bin/sh`; `--userspec` is GNU
/// chroot's.
pub const ENTER_IMAGE: &str = r#"set -e
img=/tmp/build/.atc-image; io=/tmp/build/.atc-io; user=$1; prog=$2; shift 2
[ -d /tmp/build/.atc-image-artifact/rootfs ] || { echo "atc: the image artifact has no rootfs/" >&2; exit 1; }
cp -a /tmp/build/.atc-image-artifact/rootfs/. "$img/"
mkdir -p "$img/proc" "$img/dev" "$img/sys" "$img/etc" "$img/tmp/build/step"
fail() { echo "atc: cannot mount $1 into the image's root: the step's container must be privileged" >&2; exit 1; }
mount -t proc proc "$img/proc" || fail /proc
mount --rbind /dev "$img/dev" || fail /dev
mount --rbind /sys "$img/sys" || fail /sys
mount --rbind /tmp/build/step "$img/tmp/build/step" || fail /tmp/build/step
for f in resolv.conf hosts; do if [ -e "/etc/$f" ]; then cat "/etc/$f" > "$img/etc/$f"; fi; done
if [ -n "$user" ]; then enter() { chroot --userspec="$user" "$img" "$@"; }; else enter() { chroot "$img" "$@"; }; fi
enter /bin/sh -c : || { echo "atc: cannot run the image's /bin/sh${user:+ as $user}" >&2; exit 1; }
inside='cd "$1" || exit 1; mode=$2; prog=$3; n=$4; shift 4
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
if [ "$mode" = check ]; then command -v "$prog"; else exec "$prog" "$@"; fi'
if ! enter /bin/sh -c "$inside" atc "$(pwd)" check "$prog" "$@" > /dev/null 2>&1; then
  printf '%s' "$prog" > "$io/not-found"
  exit 127
fi
set +e
enter /bin/sh -c "$inside" atc "$(pwd)" run "$prog" "$@"
"#;

/// Exec'd into the main container with the stdin bytes on stdin and their
/// count in `$1`: stores them and gives the go-ahead. `head -c` rather than
/// `cat`: the end of stdin does not reach an exec'd process on every
/// cluster.
pub const START: &str = r#"io=/tmp/build/.atc-io
head -c "$1" > "$io/stdin.new" && mv "$io/stdin.new" "$io/stdin" && : > "$io/go"
"#;

/// Exec'd into the main container: streams what the process wrote to its
/// stdout (from byte `$1`) and stderr (from `$2`) as it comes, on its own
/// stdout and stderr, until the exit code is there and everything before
/// it was sent. Re-run after an atc restart from the offsets reached. With
/// `$3` `wait` (the process waits for stdin), it exits
/// [`NEVER_STARTED`] when no go-ahead came within 30 s: the atc that made
/// the pod stopped before [`START`], and the stdin is lost with it.
pub const FOLLOW: &str = r#"io=/tmp/build/.atc-io
o=$1; e=$2; waited=0
size() { if [ -e "$1" ]; then wc -c < "$1"; else echo 0; fi; }
while [ "$3" = wait ] && [ ! -e "$io/go" ]; do
  [ $waited -ge 300 ] && exit 3
  sleep 0.1; waited=$((waited + 1))
done
while :; do
  [ -e "$io/exit" ] && ended=1 || ended=0
  s=$(size "$io/stdout"); s=$((s))
  if [ "$s" -gt "$o" ]; then tail -c +$((o + 1)) "$io/stdout" | head -c $((s - o)); o=$s; fi
  s=$(size "$io/stderr"); s=$((s))
  if [ "$s" -gt "$e" ]; then tail -c +$((e + 1)) "$io/stderr" | head -c $((s - e)) >&2; e=$s; fi
  [ $ended = 1 ] && exit 0
  sleep 0.1
done
"#;

/// [`FOLLOW`]'s exit code when the step never got its go-ahead.
pub const NEVER_STARTED: i32 = 3;

/// Exec'd into a running step for `fly intercept`: `$1` is the directory
/// (empty: the container's), `$2` the number of `NAME=VALUE` pairs that
/// follow, then the program and its arguments. Its first line of stdout
/// says whether it started (`ready`) or why not (`no-dir`, `not-found`).
pub const EXEC: &str = r#"dir=$1; n=$2; shift 2
while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done
if [ -n "$dir" ]; then cd "/tmp/build/step/$dir" 2> /dev/null || { echo no-dir; exit 0; }; fi
command -v "$1" > /dev/null 2>&1 || { echo not-found; exit 0; }
echo ready
exec "$@"
"#;

/// `sh -c SCRIPT` with its positional arguments.
pub fn sh(script: &str, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut command = vec!["sh".to_string(), "-c".into(), script.into(), "atc".into()];
    command.extend(args);
    command
}

/// Quotes `value` for a POSIX shell.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        let quoted = quote("it's a $path");
        let output = std::process::Command::new("sh").arg("-c").arg(format!("printf %s {quoted}")).output().unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), "it's a $path");
    }
}
