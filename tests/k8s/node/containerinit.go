package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// initSpec is what `process-node container-init SPEC` reads: how to build
// one container's root inside the mount namespace it was started in, and
// what to run there.
type initSpec struct {
	// Lower is the image's root filesystem ("/" for the host), the read-only
	// layer of the container's overlay root.
	Lower string `json:"lower"`
	// Scratch is an empty directory of the pod's sandbox; a tmpfs mounted
	// on it (in the container's namespace only) holds the overlay's upper
	// layer and the root's mount point.
	Scratch    string      `json:"scratch"`
	Mounts     []bindMount `json:"mounts"`
	Hostname   string      `json:"hostname"`
	WorkingDir string      `json:"workingDir"`
	Args       []string    `json:"args"`
	Env        []string    `json:"env"`
	// User and Group are the container's runAsUser and runAsGroup (pod or
	// container securityContext); without them it runs as root.
	User  *int64 `json:"user,omitempty"`
	Group *int64 `json:"group,omitempty"`
}

type bindMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Exit codes of container-init itself, as a container runtime reports them.
const (
	exitStartError = 128
	exitNotFound   = 127
)

// ContainerInit runs as `process-node container-init SPEC`, started by the
// agent in new mount and UTS namespaces. It builds the container's root and
// execs the container's command; it returns only on failure, with the exit
// code to use.
func ContainerInit(args []string) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "process-node container-init: "+format+"\n", a...)
		return code
	}
	if len(args) != 1 {
		return fail(exitStartError, "usage: container-init SPEC.json")
	}
	// fd 3 tells the agent when the command is started: it closes at exec.
	syscall.CloseOnExec(3)
	b, err := os.ReadFile(args[0])
	if err != nil {
		return fail(exitStartError, "%v", err)
	}
	var s initSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fail(exitStartError, "spec: %v", err)
	}
	if len(s.Args) == 0 {
		return fail(exitStartError, "no command")
	}
	root, err := setupRoot(&s)
	if err != nil {
		return fail(exitStartError, "%v", err)
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fail(exitStartError, "hostname: %v", err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fail(exitStartError, "chroot %s: %v", root, err)
	}
	wd := s.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return fail(exitStartError, "working directory %s: %v", wd, err)
	}
	if s.User != nil {
		// syscall's Set* change every thread, so the exec below runs as the user.
		gid := int64(0)
		if s.Group != nil {
			gid = *s.Group
		}
		if err := syscall.Setgroups(nil); err != nil {
			return fail(exitStartError, "setgroups: %v", err)
		}
		if err := syscall.Setgid(int(gid)); err != nil {
			return fail(exitStartError, "setgid %d: %v", gid, err)
		}
		if err := syscall.Setuid(int(*s.User)); err != nil {
			return fail(exitStartError, "setuid %d: %v", *s.User, err)
		}
	}
	if err := os.Chdir(wd); err != nil {
		return fail(exitStartError, "working directory %s: %v", wd, err)
	}
	path, err := lookPath(s.Args[0], s.Env)
	if err != nil {
		return fail(exitNotFound, "%v", err)
	}
	err = syscall.Exec(path, s.Args, s.Env)
	return fail(exitStartError, "exec %s: %v", path, err)
}

// setupRoot mounts the container's root: an overlay whose lower layer is the
// image (the host's / for host images) and whose upper layer is a tmpfs, so
// nothing the container writes outside its volumes reaches the host. All
// mounts are made after making every mount private, so none propagates out
// of the container's namespace and the agent's state directory never has a
// mount below it.
func setupRoot(s *initSpec) (string, error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", s.Scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return "", fmt.Errorf("tmpfs on %s: %w", s.Scratch, err)
	}
	upper, work, root := filepath.Join(s.Scratch, "upper"), filepath.Join(s.Scratch, "work"), filepath.Join(s.Scratch, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", s.Lower, upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("overlay root (%s): %w", opts, err)
	}
	// /proc, /dev and /sys as a container has them.
	if err := mountAt(root, "/proc", func(t string) error {
		return unix.Mount("proc", t, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}); err != nil {
		return "", err
	}
	for _, d := range []string{"/dev", "/sys"} {
		if err := mountAt(root, d, func(t string) error { return unix.Mount(d, t, "", unix.MS_BIND|unix.MS_REC, "") }); err != nil {
			return "", err
		}
	}
	if s.Hostname != "" {
		_ = os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		_ = os.WriteFile(filepath.Join(root, "etc/hostname"), []byte(s.Hostname+"\n"), 0o644)
	}
	if s.Lower != "/" {
		// A root filesystem has no name resolution of its own.
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			_ = os.WriteFile(filepath.Join(root, "etc/resolv.conf"), b, 0o644)
		}
	}
	for _, m := range s.Mounts {
		st, err := os.Stat(m.Source)
		if err != nil {
			return "", fmt.Errorf("volume source %s: %w", m.Source, err)
		}
		err = mountAt(root, m.Target, func(t string) error {
			if err := unix.Mount(m.Source, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return err
			}
			if m.ReadOnly {
				return unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
			}
			return nil
		}, st.IsDir())
		if err != nil {
			return "", err
		}
	}
	return root, nil
}

// mountAt creates target under root (a directory, or a file when isDir is
// false) and calls mount with its host path. Symbolic links in target are
// not followed out of root.
func mountAt(root, target string, mount func(string) error, isDir ...bool) error {
	dir := len(isDir) == 0 || isDir[0]
	// Symbolic links on the way are resolved inside root, never on the host.
	t, err := securejoin.SecureJoin(root, target)
	if err != nil {
		return fmt.Errorf("mount target %s: %w", target, err)
	}
	if rel, err := filepath.Rel(root, t); err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("mount target %s is outside the container", target)
	}
	if dir {
		if err := os.MkdirAll(t, 0o755); err != nil {
			return fmt.Errorf("mount target %s: %w", target, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
			return fmt.Errorf("mount target %s: %w", target, err)
		}
		if f, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if err := mount(t); err != nil {
		return fmt.Errorf("mount %s: %w", target, err)
	}
	return nil
}

// lookPath resolves a command as the container's shell would, in the
// container's root (the caller has chrooted) with the container's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = strings.TrimPrefix(e, "PATH=")
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: executable file not found in $PATH (%s)", name, path)
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
