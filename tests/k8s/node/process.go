package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// process is one run of a container: `process-node container-init` in new
// mount and UTS namespaces, which execs the container's command, in a
// process group of its own.
type process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser // nil unless the container has stdin: true
	done  chan struct{}

	mu       sync.Mutex
	exitCode int
	killedBy string // a fault that ended it (oom), if any
}

// startProcess starts a container process; its output goes to log.
func startProcess(self string, spec *initSpec, specPath string, log *containerLog, withStdin bool) (*process, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "container-init", specPath)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	// container-init holds syncW (its fd 3) open until it execs the
	// container's command: the container counts as started only once its
	// root and mounts are complete, so an exec never enters a half-made one.
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer syncR.Close()
	cmd.ExtraFiles = []*os.File{syncW}
	p := &process{cmd: cmd, done: make(chan struct{})}
	var stdinR *os.File
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		stdinR, p.stdin = r, w
		cmd.Stdin = r
	}
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{outR, outW, errR, errW, stdinR, syncW} {
			if f != nil {
				f.Close()
			}
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
		return nil, err
	}
	outW.Close()
	errW.Close()
	syncW.Close()
	synced := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, syncR); close(synced) }()
	select {
	case <-synced:
	case <-time.After(30 * time.Second):
	}
	if stdinR != nil {
		stdinR.Close()
	}
	var copying sync.WaitGroup
	pump := func(stream string, r *os.File) {
		defer copying.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				log.write(stream, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	copying.Add(2)
	go pump("stdout", outR)
	go pump("stderr", errR)
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ee.ExitCode()
			}
		} else if err != nil {
			code = exitStartError
		}
		// Output a child left behind may still hold the pipes open: give
		// the readers a moment, then stop them.
		copied := make(chan struct{})
		go func() { copying.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(time.Second):
			outR.Close()
			errR.Close()
			<-copied
		}
		outR.Close()
		errR.Close()
		if p.stdin != nil {
			p.stdin.Close()
		}
		p.mu.Lock()
		p.exitCode = code
		p.mu.Unlock()
		log.finish()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the container's whole process group.
func (p *process) signal(sig syscall.Signal) {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the end.
func (p *process) stop(grace time.Duration) {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}

// kill ends the process as the fault named does (oom).
func (p *process) kill(fault string) {
	p.mu.Lock()
	p.killedBy = fault
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
}

func (p *process) result() (code int, killedBy string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode, p.killedBy
}

// safeRemoveAll deletes path, which must be strictly inside root, and only
// when nothing is mounted at or below it: a recursive delete must never
// descend into a bind-mounted host directory.
func safeRemoveAll(root, path string) error {
	root, path = filepath.Clean(root), filepath.Clean(path)
	if !filepath.IsAbs(root) || !filepath.IsAbs(path) || root == "/" || len(root) < 5 {
		return fmt.Errorf("refusing to delete %s: state dir %q is not a safe root", path, root)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || rel == ".." || len(rel) >= 3 && rel[:3] == "../" {
		return fmt.Errorf("refusing to delete %s: not inside %s", path, root)
	}
	mounts, err := mountPointsUnder(path)
	if err != nil {
		return fmt.Errorf("refusing to delete %s: %w", path, err)
	}
	if len(mounts) > 0 {
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
		if mounts, err = mountPointsUnder(path); err != nil || len(mounts) > 0 {
			return fmt.Errorf("refusing to delete %s: still mounted below it: %v %v", path, mounts, err)
		}
	}
	return os.RemoveAll(path)
}

// mountPointsUnder lists this namespace's mount points at or below dir.
func mountPointsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range splitLines(string(b)) {
		f := splitFields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || len(mp) > len(dir) && mp[:len(dir)] == dir && mp[len(dir)] == '/' {
			out = append(out, mp)
		}
	}
	return out, nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func splitFields(s string) []string {
	var out []string
	cur := ""
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
			continue
		}
		cur += string(s[i])
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				out = append(out, v)
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}
