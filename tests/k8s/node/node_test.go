package node

// These tests run pods through the Runtime without an API server: a fake
// clientset answers the volume look-ups, a fake recorder collects Events.
// They need root (mount namespaces, overlay, bind mounts) and are skipped
// without it. The test binary is its own container-init (TestMain).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/kubelet/events"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/images"
	utilexec "k8s.io/utils/exec"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "container-init" {
		os.Exit(ContainerInit(os.Args[2:]))
	}
	os.Exit(m.Run())
}

type harness struct {
	t        *testing.T
	rt       *Runtime
	recorder *record.FakeRecorder

	mu      sync.Mutex
	updates map[string][]*v1.Pod
	changed chan struct{}
	events  []string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mount namespaces, overlay and bind mounts")
	}
	dir, err := os.MkdirTemp("/tmp", "pn-test-")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fast := &Duration{10 * time.Millisecond}
	imgs := &ImageMap{Images: []ImageRule{
		{Image: "busybox", Host: true, PullDelay: fast},
		{Image: "atc.test/oom", Host: true, Fault: FaultOOM, PullDelay: fast},
		{Image: "atc.test/entrypoint", Host: true, Command: []string{"echo", "from-entrypoint"}, PullDelay: fast},
		{Image: "atc.test/from-env", Host: true, Command: []string{"${PN_TEST_ENTRYPOINT}"}, PullDelay: fast},
	}}
	rt, err := NewRuntime(filepath.Join(dir, "node"), self, imgs, fake.NewSimpleClientset())
	if err != nil {
		t.Fatal(err)
	}
	rt.FaultDelay = 200 * time.Millisecond
	h := &harness{t: t, rt: rt, recorder: record.NewFakeRecorder(1000), updates: map[string][]*v1.Pod{}, changed: make(chan struct{})}
	t.Cleanup(func() {
		rt.StopAll(time.Second)
		if err := safeRemoveAll(dir, filepath.Join(dir, "node")); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = os.Remove(dir)
	})
	return h
}

func (h *harness) notify(p *v1.Pod) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.updates[p.Name] = append(h.updates[p.Name], p)
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *harness) create(p *v1.Pod) {
	h.t.Helper()
	if err := h.rt.Create("atc-node-a", p, h.recorder, h.notify); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor waits until a reported status of pod satisfies cond.
func (h *harness) waitFor(name string, what string, cond func(*v1.Pod) bool) *v1.Pod {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		h.mu.Lock()
		ups := h.updates[name]
		ch := h.changed
		h.mu.Unlock()
		for _, p := range ups {
			if cond(p) {
				return p
			}
		}
		select {
		case <-ch:
		case <-deadline:
			var last *v1.Pod
			if len(ups) > 0 {
				last = ups[len(ups)-1]
			}
			h.t.Fatalf("pod %s: not %s after 20s; last status: %+v", name, what, last)
		}
	}
}

func (h *harness) final(name string) *v1.Pod {
	h.t.Helper()
	return h.waitFor(name, "finished", func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed
	})
}

// eventReasons drains the recorder: "Type Reason message" lines.
func (h *harness) eventLines() []string {
	for {
		select {
		case e := <-h.recorder.Events:
			h.events = append(h.events, e)
		default:
			return h.events
		}
	}
}

func (h *harness) hasEvent(eventType, reason, contains string) bool {
	for _, e := range h.eventLines() {
		if strings.HasPrefix(e, eventType+" "+reason+" ") && strings.Contains(e, contains) {
			return true
		}
	}
	return false
}

func pod(name string, containers ...v1.Container) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name), Annotations: map[string]string{}},
		Spec:       v1.PodSpec{RestartPolicy: v1.RestartPolicyNever, Containers: containers, NodeName: "atc-node-a"},
	}
}

func sh(name, script string) v1.Container {
	return v1.Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", script}}
}

func (h *harness) logs(p, c string) string {
	h.t.Helper()
	r, err := h.rt.GetContainerLogs(context.Background(), "default", p, c, api.ContainerLogOpts{})
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// streams reads a container's log file back by stream.
func (h *harness) streams(p *v1.Pod, c string) (stdout, stderr string) {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.rt.StateDir, "pods", string(p.UID), "logs", c+"-0.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	var o, e strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if r, ok := parseLogLine(line); ok {
			if r.stream == "stdout" {
				o.Write(r.data)
			} else {
				e.Write(r.data)
			}
		}
	}
	return o.String(), e.String()
}

func TestExitCodeAndStreamsApart(t *testing.T) {
	h := newHarness(t)
	p := pod("exit3", sh("main", "echo out; echo err >&2; exit 3"))
	h.create(p)
	got := h.final("exit3")
	if got.Status.Phase != v1.PodFailed {
		t.Fatalf("phase %s, want Failed", got.Status.Phase)
	}
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 || term.Reason != reasonError {
		t.Fatalf("terminated %+v, want exit 3 reason Error", term)
	}
	out, errs := h.streams(p, "main")
	if out != "out\n" || errs != "err\n" {
		t.Fatalf("stdout %q stderr %q", out, errs)
	}
	if l := h.logs("exit3", "main"); !strings.Contains(l, "out\n") || !strings.Contains(l, "err\n") {
		t.Fatalf("pods/log %q", l)
	}
	for _, r := range []string{events.PullingImage, events.PulledImage, events.CreatedContainer, events.StartedContainer} {
		if !h.hasEvent(v1.EventTypeNormal, r, "") {
			t.Errorf("no %s event in %v", r, h.eventLines())
		}
	}
}

func TestSucceededAndImageEntrypoint(t *testing.T) {
	h := newHarness(t)
	c := v1.Container{Name: "main", Image: "atc.test/entrypoint", Args: []string{"$(GREETING)"}, Env: []v1.EnvVar{{Name: "GREETING", Value: "hi"}}}
	h.create(pod("ok", c))
	got := h.final("ok")
	if got.Status.Phase != v1.PodSucceeded || got.Status.ContainerStatuses[0].State.Terminated.Reason != reasonCompleted {
		t.Fatalf("status %+v", got.Status)
	}
	if l := h.logs("ok", "main"); l != "from-entrypoint hi\n" {
		t.Fatalf("log %q", l)
	}
}

func TestEntrypointFromTheAgentsEnvironmentAndTheAPIServerAddress(t *testing.T) {
	h := newHarness(t)
	h.rt.APIServerHost, h.rt.APIServerPort = "127.0.0.1", "6443"
	t.Setenv("PN_TEST_ENTRYPOINT", "/bin/sh")
	c := v1.Container{Name: "main", Image: "atc.test/from-env", Args: []string{"-c", `echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"`},
		// As virtual-kubelet sets them from the `kubernetes` Service.
		Env: []v1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "10.96.0.1"}, {Name: "KUBERNETES_SERVICE_PORT", Value: "443"}}}
	h.create(pod("env", c))
	if got := h.final("env"); got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("status %+v, log %q", got.Status, h.logs("env", "main"))
	}
	if l := h.logs("env", "main"); l != "127.0.0.1:6443\n" {
		t.Fatalf("log %q", l)
	}
	os.Unsetenv("PN_TEST_ENTRYPOINT")
	h.create(pod("no-env", c))
	got := h.final("no-env")
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.Reason != reasonStartError || !strings.Contains(term.Message, "PN_TEST_ENTRYPOINT") {
		t.Fatalf("status %+v", got.Status)
	}
}

func TestReadinessProbeDecidesReady(t *testing.T) {
	h := newHarness(t)
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	port, _ := strconv.Atoi(srv.URL[strings.LastIndex(srv.URL, ":")+1:])
	c := v1.Container{Name: "main", Image: "busybox", Command: []string{"sleep", "30"},
		Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/health", Port: intstr.FromString("http")}},
			PeriodSeconds: 1, FailureThreshold: 1}}
	h.create(pod("probed", c))
	ready := func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Ready
	}
	h.waitFor("probed", "running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	// Events do not change the pod's status: poll them.
	for deadline := time.Now().Add(10 * time.Second); !h.hasEvent(v1.EventTypeWarning, events.ContainerUnhealthy, "503"); {
		if time.Now().After(deadline) {
			t.Fatalf("no failed probe event in %v", h.eventLines())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mu.Lock()
	for _, p := range h.updates["probed"] {
		if ready(p) {
			t.Errorf("ready before its probe passed: %+v", p.Status)
		}
	}
	h.mu.Unlock()
	healthy.Store(true)
	h.waitFor("probed", "ready", ready)
	healthy.Store(false)
	h.waitFor("probed", "not ready again", func(p *v1.Pod) bool { return !ready(p) && p.Status.Phase == v1.PodRunning })
}

func TestInitContainersInOrderThenMain(t *testing.T) {
	h := newHarness(t)
	p := pod("init")
	mount := []v1.VolumeMount{{Name: "shared", MountPath: "/tmp/shared"}}
	p.Spec.Volumes = []v1.Volume{{Name: "shared", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	i1, i2 := sh("i1", "sleep 0.2; echo one >> /tmp/shared/order"), sh("i2", "echo two >> /tmp/shared/order")
	m := sh("main", "cat /tmp/shared/order")
	i1.VolumeMounts, i2.VolumeMounts, m.VolumeMounts = mount, mount, mount
	p.Spec.InitContainers = []v1.Container{i1, i2}
	p.Spec.Containers = []v1.Container{m}
	h.create(p)
	h.waitFor("init", "Pending with main waiting PodInitializing", func(p *v1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return p.Status.Phase == v1.PodPending && w != nil && w.Reason == reasonPodInitializing
	})
	got := h.final("init")
	if got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("phase %s", got.Status.Phase)
	}
	if l := h.logs("init", "main"); l != "one\ntwo\n" {
		t.Fatalf("main read %q, want one then two", l)
	}
}

func TestFailedInitContainerFailsPod(t *testing.T) {
	h := newHarness(t)
	p := pod("badinit", sh("main", "echo never"))
	p.Spec.InitContainers = []v1.Container{sh("i1", "exit 4")}
	h.create(p)
	got := h.final("badinit")
	if got.Status.Phase != v1.PodFailed || got.Status.InitContainerStatuses[0].State.Terminated.ExitCode != 4 {
		t.Fatalf("status %+v", got.Status)
	}
	if got.Status.ContainerStatuses[0].State.Waiting == nil {
		t.Fatalf("main container ran: %+v", got.Status.ContainerStatuses[0].State)
	}
}

// Two pods write the same path under /tmp; each sees only its own file,
// and nothing reaches the host.
func TestContainersDoNotCollideOrWriteTheHost(t *testing.T) {
	h := newHarness(t)
	path := fmt.Sprintf("/tmp/pn-collide-%d/build/x", time.Now().UnixNano())
	for _, n := range []string{"p1", "p2"} {
		c := sh("main", "echo "+n+" > file; sleep 0.5; cat file; pwd")
		c.WorkingDir = path
		h.create(pod(n, c))
	}
	for _, n := range []string{"p1", "p2"} {
		h.final(n)
		if l := h.logs(n, "main"); l != n+"\n"+path+"\n" {
			t.Errorf("%s read %q", n, l)
		}
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(path))); !os.IsNotExist(err) {
		t.Fatalf("a container wrote %s on the host (%v)", path, err)
	}
}

type testIO struct {
	in       io.Reader
	out, err *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Close() error   { return nil }
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func (t *testIO) Stdin() io.Reader            { return t.in }
func (t *testIO) Stdout() io.WriteCloser      { return t.out }
func (t *testIO) Stderr() io.WriteCloser      { return t.err }
func (t *testIO) TTY() bool                   { return false }
func (t *testIO) Resize() <-chan api.TermSize { return nil }

func (h *harness) running(name string) {
	h.t.Helper()
	h.waitFor(name, "Running", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
}

func TestExecStreamsExitCodeAndStreamDrop(t *testing.T) {
	h := newHarness(t)
	c := sh("main", "sleep 30")
	c.WorkingDir = "/tmp/exec-wd"
	c.Env = []v1.EnvVar{{Name: "FROM_POD", Value: "yes"}}
	h.create(pod("ex", c))
	h.running("ex")
	io1 := &testIO{in: strings.NewReader("hello"), out: &syncBuffer{}, err: &syncBuffer{}}
	err := h.rt.RunInContainer(context.Background(), "default", "ex", "main", []string{"sh", "-c", "cat; echo; pwd; echo $FROM_POD; echo oops >&2; exit 5"}, io1)
	var ce utilexec.CodeExitError
	if !errors.As(err, &ce) || ce.Code != 5 {
		t.Fatalf("exec error %v, want exit code 5; stdout %q stderr %q", err, io1.out.String(), io1.err.String())
	}
	if io1.out.String() != "hello\n/tmp/exec-wd\nyes\n" || io1.err.String() != "oops\n" {
		t.Fatalf("stdout %q stderr %q", io1.out.String(), io1.err.String())
	}
	// The stream drops: the exec'd process is killed.
	ctx, cancel := context.WithCancel(context.Background())
	marker := fmt.Sprintf("%d", time.Now().UnixNano()%100000+100000)
	done := make(chan error, 1)
	go func() {
		done <- h.rt.RunInContainer(ctx, "default", "ex", "main", []string{"sleep", marker}, &testIO{out: &syncBuffer{}, err: &syncBuffer{}})
	}()
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("exec still running 5s after its stream dropped")
	}
	if pids := pgrep("sleep " + marker); len(pids) > 0 {
		t.Fatalf("exec'd process still alive: %v", pids)
	}
}

func pgrep(cmdline string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), cmdline) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestDeleteKillsContainersAndRemovesSandbox(t *testing.T) {
	h := newHarness(t)
	p := pod("del", sh("main", "trap '' TERM; sleep 60"))
	h.create(p)
	h.running("del")
	time.Sleep(300 * time.Millisecond) // the shell has set its trap
	grace := int64(1)
	p.DeletionGracePeriodSeconds = &grace
	start := time.Now()
	if err := h.rt.Delete(p); err != nil {
		t.Fatal(err)
	}
	got := h.final("del")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to stop a container ignoring SIGTERM with 1s grace", d)
	}
	if term := got.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 137 {
		t.Fatalf("terminated %+v, want SIGKILL's 137", term)
	}
	if !h.hasEvent(v1.EventTypeNormal, events.KillingContainer, "main") {
		t.Errorf("no Killing event: %v", h.eventLines())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(h.rt.StateDir, "pods", string(p.UID))); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sandbox directory not removed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRunAsUserAppliesToTheContainerAndItsExecs(t *testing.T) {
	h := newHarness(t)
	uid, gid := int64(1234), int64(4321)
	c := sh("main", "id -u; id -g; echo $HOME; sleep 30")
	c.SecurityContext = &v1.SecurityContext{RunAsUser: &uid}
	p := pod("runas", c)
	p.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: ptrTo(int64(1)), RunAsGroup: &gid}
	h.create(p)
	h.running("runas")
	out := &syncBuffer{}
	if err := h.rt.RunInContainer(context.Background(), "default", "runas", "main", []string{"sh", "-c", "id -u; id -g"}, &testIO{out: out, err: &syncBuffer{}}); err != nil {
		t.Fatalf("exec: %v", err)
	}
	if out.String() != "1234\n4321\n" {
		t.Fatalf("exec ran as %q, want uid 1234 (the container's) and gid 4321 (the pod's)", out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	// HOME is / for a uid without a home, as runc sets it.
	for h.logs("runas", "main") != "1234\n4321\n/\n" {
		if time.Now().After(deadline) {
			t.Fatalf("container ran as %q, want uid 1234, gid 4321 and HOME /", h.logs("runas", "main"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestSidecarRunsBesideMainAndIsStopped(t *testing.T) {
	h := newHarness(t)
	p := pod("side", sh("main", "sleep 0.3; echo main-done"))
	always := v1.ContainerRestartPolicyAlways
	sc := sh("sidecar", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
	sc.RestartPolicy = &always
	p.Spec.InitContainers = []v1.Container{sc}
	h.create(p)
	got := h.final("side")
	if got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("phase %s: %+v", got.Status.Phase, got.Status)
	}
	if got.Status.InitContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("sidecar not stopped: %+v", got.Status.InitContainerStatuses[0].State)
	}
	if !h.hasEvent(v1.EventTypeNormal, events.KillingContainer, "sidecar") {
		t.Errorf("no Killing event for the sidecar: %v", h.eventLines())
	}
}

func TestFaultOOMKilled(t *testing.T) {
	h := newHarness(t)
	p := pod("oom", sh("main", "sleep 30"))
	p.Annotations[FaultAnnotation] = FaultOOM
	h.create(p)
	got := h.final("oom")
	term := got.Status.ContainerStatuses[0].State.Terminated
	if got.Status.Phase != v1.PodFailed || term.Reason != reasonOOMKilled || term.ExitCode != 137 {
		t.Fatalf("status %+v", got.Status)
	}
	// By image rule too.
	h.create(pod("oom2", v1.Container{Name: "main", Image: "atc.test/oom", Command: []string{"sleep", "30"}}))
	if term := h.final("oom2").Status.ContainerStatuses[0].State.Terminated; term.Reason != reasonOOMKilled {
		t.Fatalf("image rule: %+v", term)
	}
}

func TestFaultEvicted(t *testing.T) {
	h := newHarness(t)
	p := pod("ev", sh("main", "sleep 30"))
	p.Annotations[FaultAnnotation] = FaultEvict
	h.create(p)
	got := h.final("ev")
	if got.Status.Phase != v1.PodFailed || got.Status.Reason != eviction.Reason {
		t.Fatalf("status %+v", got.Status)
	}
	if !h.hasEvent(v1.EventTypeWarning, eviction.Reason, "low on resource") {
		t.Errorf("no Evicted event: %v", h.eventLines())
	}
}

func TestFaultExecFails(t *testing.T) {
	h := newHarness(t)
	p := pod("xf", sh("main", "sleep 30"))
	p.Annotations[FaultAnnotation] = FaultExecFail
	h.create(p)
	h.running("xf")
	err := h.rt.RunInContainer(context.Background(), "default", "xf", "main", []string{"true"}, &testIO{out: &syncBuffer{}, err: &syncBuffer{}})
	var ce utilexec.CodeExitError
	if err == nil || errors.As(err, &ce) {
		t.Fatalf("exec: %v, want an error that is not an exit code", err)
	}
}

func TestFaultImagePullAndUnknownImage(t *testing.T) {
	h := newHarness(t)
	p := pod("pull", sh("main", "true"))
	p.Annotations[FaultAnnotation] = FaultImagePull
	h.create(p)
	h.create(pod("unknown", v1.Container{Name: "main", Image: "nosuch.example/image:1", Command: []string{"true"}}))
	for _, n := range []string{"pull", "unknown"} {
		for _, reason := range []string{images.ErrImagePull.Error(), images.ErrImagePullBackOff.Error()} {
			got := h.waitFor(n, "waiting "+reason, func(p *v1.Pod) bool {
				w := p.Status.ContainerStatuses[0].State.Waiting
				return w != nil && w.Reason == reason
			})
			if got.Status.Phase != v1.PodPending {
				t.Fatalf("%s: phase %s", n, got.Status.Phase)
			}
		}
	}
	if !h.hasEvent(v1.EventTypeWarning, events.FailedToPullImage, "Failed to pull image") || !h.hasEvent(v1.EventTypeNormal, events.BackOffPullImage, "Back-off pulling image") {
		t.Errorf("events: %v", h.eventLines())
	}
}

func TestLogsFollowUntilTheContainerEnds(t *testing.T) {
	h := newHarness(t)
	h.create(pod("follow", sh("main", "for i in 1 2 3; do echo line $i; sleep 0.2; done")))
	h.running("follow")
	r, err := h.rt.GetContainerLogs(context.Background(), "default", "follow", "main", api.ContainerLogOpts{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "line 1\nline 2\nline 3\n" {
		t.Fatalf("followed %q (%v)", b, err)
	}
}

func TestSafeRemoveAllRefuses(t *testing.T) {
	for _, c := range [][2]string{{"/tmp/x", "/tmp"}, {"/tmp/x", "/tmp/x"}, {"/tmp/x", "/tmp/x/../y"}, {"/", "/work"}, {"", "/work"}} {
		if err := safeRemoveAll(c[0], c[1]); err == nil {
			t.Errorf("safeRemoveAll(%q, %q) did not refuse", c[0], c[1])
		}
	}
	for _, d := range []string{"/", "/work", "/tmp", "relative/dir"} {
		if checkStateDir(d) == nil {
			t.Errorf("state dir %q accepted", d)
		}
	}
}

func TestImageLookup(t *testing.T) {
	m := &ImageMap{Images: []ImageRule{
		{Image: "concourse/*-resource", Host: true},
		{Image: "busybox", Host: true},
		{Prefix: "atc.test/", Rootfs: "/r"},
	}}
	for ref, want := range map[string]string{
		"concourse/git-resource":              "concourse/*-resource",
		"concourse/registry-image-resource:1": "",
		"docker.io/library/busybox:latest":    "busybox",
		"busybox":                             "busybox",
		"atc.test/anything:2":                 "atc.test/",
		"nosuch":                              "",
	} {
		r := m.Lookup(ref)
		got := ""
		if r != nil {
			got = r.Image + r.Prefix
		}
		if got != want {
			t.Errorf("Lookup(%q) = %q, want %q", ref, got, want)
		}
	}
}
