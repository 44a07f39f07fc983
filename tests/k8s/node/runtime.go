package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	utilexec "k8s.io/utils/exec"
)

// Fault names, in the pod annotation atc.test/fault (several separated by
// commas), in an image rule's fault, or (not-ready) on a Node.
const (
	FaultAnnotation          = "atc.test/fault"
	FaultContainerAnnotation = "atc.test/fault-container"
	FaultImagePull           = "image-pull"
	FaultOOM                 = "oom"
	FaultEvict               = "evict"
	FaultExecFail            = "exec-fail"
	FaultNotReady            = "not-ready"
)

// Runtime runs the pods of every node of this agent as local processes.
// Pods are keyed by namespace and name, so the kubelet API of all nodes is
// one handler that finds a request's pod here.
type Runtime struct {
	StateDir   string
	Self       string // this executable, re-run as container-init
	Images     *ImageMap
	Client     kubernetes.Interface
	FaultDelay time.Duration
	// PodIP is the address pods get (all share the host's network).
	PodIP string
	// APIServer is the API server's host and port. There is no kube-proxy:
	// pods get these as KUBERNETES_SERVICE_HOST/PORT instead of the
	// `kubernetes` Service's cluster IP, so in-cluster clients reach it.
	APIServerHost, APIServerPort string

	mu     sync.Mutex
	pods   map[string]*sandbox
	pulled map[string]map[string]bool // node -> image -> pulled
}

// NewRuntime makes the state directory's layout.
func NewRuntime(stateDir, self string, images *ImageMap, client kubernetes.Interface) (*Runtime, error) {
	if err := checkStateDir(stateDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "pods"), 0o755); err != nil {
		return nil, err
	}
	return &Runtime{
		StateDir: stateDir, Self: self, Images: images, Client: client,
		FaultDelay: 500 * time.Millisecond, PodIP: "127.0.0.1",
		pods: map[string]*sandbox{}, pulled: map[string]map[string]bool{},
	}, nil
}

// RemoveOrphans deletes the sandboxes an earlier run of the agent left in
// the state dir: at start no pod runs, and virtual-kubelet creates the pods
// still bound to the nodes again.
func (r *Runtime) RemoveOrphans() {
	ents, err := os.ReadDir(filepath.Join(r.StateDir, "pods"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if err := safeRemoveAll(r.StateDir, filepath.Join(r.StateDir, "pods", e.Name())); err != nil {
			fmt.Fprintf(os.Stderr, "process-node: %v\n", err)
		}
	}
}

// checkStateDir refuses a state directory whose contents could be anything
// but the agent's own: it must be absolute and at least two levels deep.
func checkStateDir(dir string) error {
	c := filepath.Clean(dir)
	if !filepath.IsAbs(c) || strings.Count(c, "/") < 2 {
		return fmt.Errorf("state dir %q: want an absolute directory at least two levels deep (such as /tmp/atc-k8s.X/node)", dir)
	}
	home, _ := os.UserHomeDir()
	for _, bad := range []string{"/work", "/tmp", "/root", "/home", "/var", "/usr", "/etc", home} {
		if bad != "" && c == filepath.Clean(bad) {
			return fmt.Errorf("state dir %q: refusing a shared directory", dir)
		}
	}
	return nil
}

func podKey(namespace, name string) string { return namespace + "/" + name }

func (r *Runtime) get(namespace, name string) *sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pods[podKey(namespace, name)]
}

// podsOf lists the pods of one node (all nodes when node is empty).
func (r *Runtime) podsOf(node string) []*sandbox {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*sandbox
	for _, s := range r.pods {
		if node == "" || s.node == node {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func (r *Runtime) hasImage(node, image string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulled[node][image]
}

func (r *Runtime) addImage(node, image string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pulled[node] == nil {
		r.pulled[node] = map[string]bool{}
	}
	r.pulled[node][image] = true
}

// Create starts running a pod bound to node. notify receives each new
// status; recorder its Events.
func (r *Runtime) Create(node string, pod *v1.Pod, recorder record.EventRecorder, notify func(*v1.Pod)) error {
	key := podKey(pod.Namespace, pod.Name)
	r.mu.Lock()
	if old, ok := r.pods[key]; ok && old.pod.UID == pod.UID {
		r.mu.Unlock()
		return nil
	}
	s := newSandbox(r, node, pod, recorder, notify)
	r.pods[key] = s
	r.mu.Unlock()
	go s.run()
	return nil
}

// Update takes a pod's new metadata and spec (its status stays ours).
func (r *Runtime) Update(pod *v1.Pod) error {
	s := r.get(pod.Namespace, pod.Name)
	if s == nil || s.pod.UID != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	s.updateSpec(pod)
	return nil
}

// Delete stops a pod's containers (SIGTERM, then SIGKILL after the grace
// period) and removes its sandbox once they have ended.
func (r *Runtime) Delete(pod *v1.Pod) error {
	s := r.get(pod.Namespace, pod.Name)
	if s == nil || s.pod.UID != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	go func() {
		s.terminate(grace)
		// As a kubelet does once a deleted pod's containers have ended:
		// remove it now rather than at the end of its grace period.
		if r.Client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			zero := int64(0)
			uid := pod.UID
			_ = r.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
			})
			cancel()
		}
		r.mu.Lock()
		if r.pods[s.key] == s {
			delete(r.pods, s.key)
		}
		r.mu.Unlock()
		s.cleanup()
	}()
	return nil
}

// StopAll stops every container at once (the agent is exiting).
func (r *Runtime) StopAll(grace time.Duration) {
	var wg sync.WaitGroup
	for _, s := range r.podsOf("") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.terminate(grace)
		}()
	}
	wg.Wait()
}

// Pod is the pod as last reported, nil when it is not here.
func (r *Runtime) Pod(namespace, name string) *v1.Pod {
	s := r.get(namespace, name)
	if s == nil {
		return nil
	}
	return s.snapshot()
}

// GetPods is every pod on every node (the kubelet API's /runningpods).
func (r *Runtime) GetPods(context.Context) ([]*v1.Pod, error) {
	var out []*v1.Pod
	for _, s := range r.podsOf("") {
		out = append(out, s.snapshot())
	}
	return out, nil
}

func (r *Runtime) container(namespace, pod, container string) (*sandbox, *ctr, error) {
	s := r.get(namespace, pod)
	if s == nil {
		return nil, nil, errdefs.NotFoundf("pod %s/%s not found on this node", namespace, pod)
	}
	c := s.containerNamed(container)
	if c == nil {
		return nil, nil, errdefs.NotFoundf("container %q not found in pod %s/%s", container, namespace, pod)
	}
	return s, c, nil
}

// GetContainerLogs serves pods/log.
func (r *Runtime) GetContainerLogs(ctx context.Context, namespace, pod, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	s, c, err := r.container(namespace, pod, container)
	if err != nil {
		return nil, err
	}
	l := s.logOf(c, opts.Previous)
	if l == nil {
		if opts.Previous {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", container, pod)
		}
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start", container, pod)
	}
	return l.reader(ctx, opts)
}

// RunInContainer serves pods/exec: the command runs in the container's
// mount and UTS namespaces and root, with the container's environment and
// working directory. It is killed when its stream drops.
func (r *Runtime) RunInContainer(ctx context.Context, namespace, pod, container string, cmd []string, attach api.AttachIO) error {
	s, c, err := r.container(namespace, pod, container)
	if err != nil {
		return err
	}
	if s.faultOn(c, FaultExecFail) {
		return fmt.Errorf("exec in container %q of pod %s/%s failed: OCI runtime exec failed: injected fault (%s=%s)", container, namespace, pod, FaultAnnotation, FaultExecFail)
	}
	proc, env := s.runningProcess(c)
	if proc == nil {
		return fmt.Errorf("container %q in pod %s/%s is not running", container, namespace, pod)
	}
	if len(cmd) == 0 {
		return errdefs.InvalidInput("no command")
	}
	// nsenter takes the container's root and working directory from its
	// process (started only once its root is complete: startProcess).
	args := []string{"--target", fmt.Sprint(proc.pid()), "--mount", "--uts", "--root", "--wd"}
	// As a container runtime does, an exec runs as the container's user.
	if user, group := s.runAs(c); user != nil {
		gid := int64(0)
		if group != nil {
			gid = *group
		}
		args = append(args, "--setuid", fmt.Sprint(*user), "--setgid", fmt.Sprint(gid))
	}
	args = append(append(args, "--"), cmd...)
	x := exec.Command("nsenter", args...)
	x.Env = env
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if out := attach.Stdout(); out != nil {
		x.Stdout = out
	}
	if errw := attach.Stderr(); errw != nil {
		x.Stderr = errw
	}
	var stdin io.WriteCloser
	if in := attach.Stdin(); in != nil {
		if stdin, err = x.StdinPipe(); err != nil {
			return err
		}
		defer func() { _ = stdin.Close() }()
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	x.WaitDelay = 2 * time.Second
	if err := x.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done(): // the stream dropped
		case <-proc.done: // the container ended
		case <-done:
			return
		}
		_ = syscall.Kill(-x.Process.Pid, syscall.SIGKILL)
	}()
	err = x.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return err
}

// AttachToContainer serves pods/attach: the container's output from now
// on, and its stdin when it has one, until it ends or the stream drops.
func (r *Runtime) AttachToContainer(ctx context.Context, namespace, pod, container string, attach api.AttachIO) error {
	s, c, err := r.container(namespace, pod, container)
	if err != nil {
		return err
	}
	proc, _ := s.runningProcess(c)
	if proc == nil {
		return fmt.Errorf("container %q in pod %s/%s is not running", container, namespace, pod)
	}
	l := s.logOf(c, false)
	if l == nil {
		return fmt.Errorf("container %q in pod %s/%s is not running", container, namespace, pod)
	}
	ch, cancel := l.subscribe()
	defer cancel()
	if in := attach.Stdin(); in != nil && proc.stdin != nil {
		go func() { _, _ = io.Copy(proc.stdin, in) }()
	}
	out, errw := attach.Stdout(), attach.Stderr()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-ch:
			if !ok {
				return nil
			}
			w := out
			if rec.stream == "stderr" {
				w = errw
				if attach.TTY() {
					w = out
				}
			}
			if w != nil {
				if _, err := w.Write(rec.data); err != nil {
					return nil
				}
			}
		}
	}
}
