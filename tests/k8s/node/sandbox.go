package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	kubecontainer "k8s.io/kubernetes/pkg/kubelet/container"
	"k8s.io/kubernetes/pkg/kubelet/events"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/images"
	kubeletstatus "k8s.io/kubernetes/pkg/kubelet/status"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// Container state reasons. Waiting reasons the kubelet sets itself are
// constants of package k8s.io/kubernetes/pkg/kubelet (kubelet_pods.go),
// which is the whole kubelet to link; terminated reasons come from the
// container runtime (containerd, CRI-O), not from the kubelet. These are
// their values.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCompleted         = "Completed"
	reasonError             = "Error"
	reasonOOMKilled         = "OOMKilled"
	reasonStartError        = "StartError"
)

type ctr struct {
	spec    v1.Container
	init    bool // an init container
	sidecar bool // an init container with restartPolicy: Always
	status  v1.ContainerStatus
	proc    *process
	log     *containerLog
	env     []string
	runs    int           // runs started so far; run n logs to NAME-n.log
	started chan struct{} // closed at a sidecar's first start
	stopped bool          // stopped on purpose (a sidecar after the main containers): no restart
}

// sandbox is one pod: its directory under the state dir, its containers
// and the status the agent reports.
type sandbox struct {
	rt       *Runtime
	node     string
	key      string
	recorder record.EventRecorder
	notify   func(*v1.Pod)
	dir      string
	ctx      context.Context
	cancel   context.CancelFunc
	finished chan struct{} // run has returned

	mu          sync.Mutex
	pod         *v1.Pod
	ctrs        []*ctr
	volumes     map[string]string // volume name -> host directory
	evicted     bool
	terminating bool
	done        bool // the phase is final
}

func newSandbox(r *Runtime, node string, pod *v1.Pod, recorder record.EventRecorder, notify func(*v1.Pod)) *sandbox {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sandbox{
		rt: r, node: node, key: podKey(pod.Namespace, pod.Name), recorder: recorder, notify: notify,
		dir: filepath.Join(r.StateDir, "pods", string(pod.UID)), ctx: ctx, cancel: cancel,
		finished: make(chan struct{}), pod: pod.DeepCopy(), volumes: map[string]string{},
	}
	for _, c := range pod.Spec.InitContainers {
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
		s.ctrs = append(s.ctrs, &ctr{spec: c, init: true, sidecar: sidecar, started: make(chan struct{})})
	}
	for _, c := range pod.Spec.Containers {
		s.ctrs = append(s.ctrs, &ctr{spec: c, started: make(chan struct{})})
	}
	now := metav1.Now()
	st := &s.pod.Status
	st.Phase = v1.PodPending
	st.HostIP, st.HostIPs = "127.0.0.1", []v1.HostIP{{IP: "127.0.0.1"}}
	st.PodIP, st.PodIPs = r.PodIP, []v1.PodIP{{IP: r.PodIP}}
	st.StartTime = &now
	for _, c := range s.ctrs {
		reason := reasonContainerCreating
		if !c.init && len(pod.Spec.InitContainers) > 0 {
			reason = reasonPodInitializing
		}
		c.status = v1.ContainerStatus{
			Name: c.spec.Name, Image: c.spec.Image,
			State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}},
		}
		f := false
		c.status.Started = &f
	}
	s.setCondition(v1.PodScheduled, true, "", "")
	s.setCondition(v1.PodReadyToStartContainers, false, "", "")
	s.setCondition(v1.PodInitialized, len(pod.Spec.InitContainers) == 0, "ContainersNotInitialized", "")
	s.setCondition(v1.ContainersReady, false, "ContainersNotReady", "")
	s.setCondition(v1.PodReady, false, "ContainersNotReady", "")
	return s
}

// setCondition sets a pod condition; the caller holds s.mu or owns s.
func (s *sandbox) setCondition(t v1.PodConditionType, ok bool, reason, message string) {
	status := v1.ConditionFalse
	if ok {
		status = v1.ConditionTrue
		reason, message = "", ""
	}
	conds := s.pod.Status.Conditions
	for i := range conds {
		if conds[i].Type == t {
			if conds[i].Status != status {
				conds[i].LastTransitionTime = metav1.Now()
			}
			conds[i].Status, conds[i].Reason, conds[i].Message = status, reason, message
			return
		}
	}
	s.pod.Status.Conditions = append(conds, v1.PodCondition{Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: metav1.Now()})
}

// snapshot is the pod with its current status.
func (s *sandbox) snapshot() *v1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *sandbox) snapshotLocked() *v1.Pod {
	p := s.pod.DeepCopy()
	p.Status.InitContainerStatuses, p.Status.ContainerStatuses = nil, nil
	for _, c := range s.ctrs {
		if c.init {
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, *c.status.DeepCopy())
		} else {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, *c.status.DeepCopy())
		}
	}
	return p
}

// update reports the current status.
func (s *sandbox) update() {
	s.mu.Lock()
	p := s.snapshotLocked()
	s.mu.Unlock()
	if s.notify != nil {
		s.notify(p)
	}
}

// updateSpec takes what may change in a running pod: its labels and
// annotations (a fault annotation set later applies from then on), the
// deletion fields, and the mutable parts of its spec.
func (s *sandbox) updateSpec(pod *v1.Pod) {
	p := pod.DeepCopy()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pod.Labels, s.pod.Annotations = p.Labels, p.Annotations
	s.pod.DeletionTimestamp, s.pod.DeletionGracePeriodSeconds = p.DeletionTimestamp, p.DeletionGracePeriodSeconds
	s.pod.Spec.ActiveDeadlineSeconds, s.pod.Spec.Tolerations = p.Spec.ActiveDeadlineSeconds, p.Spec.Tolerations
	for i := range s.pod.Spec.Containers {
		if i < len(p.Spec.Containers) {
			s.pod.Spec.Containers[i].Image = p.Spec.Containers[i].Image
		}
	}
	for i := range s.pod.Spec.InitContainers {
		if i < len(p.Spec.InitContainers) {
			s.pod.Spec.InitContainers[i].Image = p.Spec.InitContainers[i].Image
		}
	}
}

func (s *sandbox) containerNamed(name string) *ctr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.ctrs {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (s *sandbox) runningProcess(c *ctr) (*process, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.proc == nil || !c.proc.running() {
		return nil, nil
	}
	return c.proc, c.env
}

func (s *sandbox) logOf(c *ctr, previous bool) *containerLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	if previous {
		if c.runs < 2 {
			return nil
		}
		return openFinishedLog(s.logPath(c, c.runs-2))
	}
	return c.log
}

func (s *sandbox) logPath(c *ctr, run int) string {
	return filepath.Join(s.dir, "logs", fmt.Sprintf("%s-%d.log", c.spec.Name, run))
}

// podFaults is the faults asked for by the pod's annotation.
type podFaults []string

func (f podFaults) has(name string) bool {
	for _, x := range f {
		if x == name {
			return true
		}
	}
	return false
}

func (s *sandbox) faults() podFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out podFaults
	for _, f := range strings.Split(s.pod.Annotations[FaultAnnotation], ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// podFault reports whether a pod-wide fault (evict) is asked for, by the
// pod's annotation or by the image rule of any of its containers.
func (s *sandbox) podFault(fault string) bool {
	if s.faults().has(fault) {
		return true
	}
	for _, c := range s.ctrs {
		if r := s.rt.Images.Lookup(c.spec.Image); r != nil && r.Fault == fault {
			return true
		}
	}
	return false
}

// faultOn reports whether fault applies to container c: by the pod's
// annotation (to the container atc.test/fault-container names, or to every
// container) or by c's image rule.
func (s *sandbox) faultOn(c *ctr, fault string) bool {
	if r := s.rt.Images.Lookup(c.spec.Image); r != nil && r.Fault == fault {
		return true
	}
	if !s.faults().has(fault) {
		return false
	}
	s.mu.Lock()
	target := s.pod.Annotations[FaultContainerAnnotation]
	s.mu.Unlock()
	if target != "" {
		return target == c.spec.Name
	}
	if fault == FaultOOM {
		// Without a name, the first main container is the one killed.
		for _, x := range s.ctrs {
			if !x.init {
				return x == c
			}
		}
	}
	return true
}

func (s *sandbox) event(eventType, reason, format string, args ...any) {
	if s.recorder == nil {
		return
	}
	s.mu.Lock()
	ref := s.pod.DeepCopy()
	s.mu.Unlock()
	s.recorder.Eventf(ref, eventType, reason, format, args...)
}

// containerEvent records an Event about container c, its involvedObject's
// fieldPath naming the container as a kubelet's does
// (spec.containers{NAME}, spec.initContainers{NAME}).
func (s *sandbox) containerEvent(c *ctr, eventType, reason, format string, args ...any) {
	if s.recorder == nil {
		return
	}
	field := "spec.containers{" + c.spec.Name + "}"
	if c.init {
		field = "spec.initContainers{" + c.spec.Name + "}"
	}
	s.mu.Lock()
	ref := &v1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: s.pod.Namespace, Name: s.pod.Name,
		UID: s.pod.UID, ResourceVersion: s.pod.ResourceVersion, FieldPath: field,
	}
	s.mu.Unlock()
	s.recorder.Eventf(ref, eventType, reason, format, args...)
}

// sleep waits d unless the pod is being stopped; false if it is.
func (s *sandbox) sleep(d time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (s *sandbox) setWaiting(c *ctr, reason, message string) {
	s.mu.Lock()
	c.status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason, Message: message}}
	s.mu.Unlock()
	s.update()
}

// run is the pod's life: volumes, init containers in order, then the main
// containers and sidecars, then the final phase.
func (s *sandbox) run() {
	defer close(s.finished)
	s.update()
	for {
		err := s.prepareVolumes()
		if err == nil {
			break
		}
		s.event(v1.EventTypeWarning, events.FailedMountVolume, "MountVolume.SetUp failed: %v", err)
		if !s.sleep(2 * time.Second) {
			return
		}
	}
	s.mu.Lock()
	s.setCondition(v1.PodReadyToStartContainers, true, "", "")
	s.mu.Unlock()
	s.update()
	if s.podFault(FaultEvict) {
		go s.evictAfter(s.rt.FaultDelay)
	}
	var sidecars []*ctr
	// The final status is reported once the sidecars' ends are recorded:
	// virtual-kubelet sends no status after Succeeded or Failed.
	var sidecarsDone sync.WaitGroup
	for _, c := range s.ctrs {
		if !c.init {
			continue
		}
		if c.sidecar {
			sidecars = append(sidecars, c)
			sidecarsDone.Add(1)
			go func() {
				defer sidecarsDone.Done()
				s.supervise(c, v1.RestartPolicyAlways)
			}()
			select {
			case <-c.started:
			case <-s.ctx.Done():
				return
			}
			continue
		}
		for {
			code, ok := s.runOnce(c)
			if !ok {
				return
			}
			if code == 0 {
				break
			}
			if s.pod.Spec.RestartPolicy == v1.RestartPolicyNever {
				s.stopSidecars(sidecars, &sidecarsDone)
				s.finish()
				return
			}
			if !s.backOff(c) {
				return
			}
		}
	}
	s.mu.Lock()
	s.setCondition(v1.PodInitialized, true, "", "")
	s.mu.Unlock()
	s.update()
	var wg sync.WaitGroup
	for _, c := range s.ctrs {
		if c.init {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.supervise(c, s.pod.Spec.RestartPolicy)
		}()
	}
	wg.Wait()
	if s.ctx.Err() != nil {
		return
	}
	// The main containers have ended: the sidecars are stopped.
	s.stopSidecars(sidecars, &sidecarsDone)
	s.finish()
}

// stopSidecars stops the sidecars and waits until their ends are recorded.
func (s *sandbox) stopSidecars(sidecars []*ctr, supervisors *sync.WaitGroup) {
	var wg sync.WaitGroup
	for _, c := range sidecars {
		s.mu.Lock()
		c.stopped = true
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stopContainer(c, s.gracePeriod())
		}()
	}
	wg.Wait()
	supervisors.Wait()
}

// supervise runs a container until it ends for good under policy.
func (s *sandbox) supervise(c *ctr, policy v1.RestartPolicy) {
	for {
		code, ok := s.runOnce(c)
		if !ok {
			return
		}
		if policy == v1.RestartPolicyNever || policy == v1.RestartPolicyOnFailure && code == 0 {
			return
		}
		s.mu.Lock()
		stopped := c.stopped
		s.mu.Unlock()
		if stopped || s.evictedNow() || !s.backOff(c) {
			return
		}
	}
}

func (s *sandbox) evictedNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// backOff waits before a container's restart, as CrashLoopBackOff.
func (s *sandbox) backOff(c *ctr) bool {
	s.mu.Lock()
	restarts := c.status.RestartCount
	last := c.status.State.Terminated
	c.status.LastTerminationState = v1.ContainerState{Terminated: last}
	s.mu.Unlock()
	d := time.Second << min(restarts, 5)
	s.containerEvent(c, v1.EventTypeWarning, events.BackOffStartContainer, "Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, s.pod.Name, s.pod.Namespace, s.pod.UID)
	s.mu.Lock()
	c.status.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{
		Reason:  kubecontainer.ErrCrashLoopBackOff.Error(),
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", d, c.spec.Name, s.pod.Name, s.pod.Namespace, s.pod.UID),
	}}
	s.mu.Unlock()
	s.update()
	for end := time.Now().Add(d); time.Now().Before(end); {
		s.mu.Lock()
		stopped := c.stopped
		s.mu.Unlock()
		if stopped || !s.sleep(100*time.Millisecond) {
			return false
		}
	}
	s.mu.Lock()
	c.status.RestartCount++
	s.mu.Unlock()
	return true
}

// pull makes c's image present on the node, as the kubelet's image manager
// reports it; false when the pod is stopped first.
func (s *sandbox) pull(c *ctr) (*ImageRule, bool) {
	image := c.spec.Image
	backoff := 2 * time.Second
	for {
		rule := s.rt.Images.Lookup(image)
		fault := s.faultOn(c, FaultImagePull)
		present := rule != nil && !fault && s.rt.hasImage(s.node, image)
		if present && c.spec.ImagePullPolicy != v1.PullAlways {
			s.containerEvent(c, v1.EventTypeNormal, events.PulledImage, "Container image %q already present on machine", image)
			return rule, true
		}
		s.containerEvent(c, v1.EventTypeNormal, events.PullingImage, "Pulling image %q", image)
		start := time.Now()
		delay := 500 * time.Millisecond
		if rule != nil {
			delay = s.rt.Images.pullDelay(rule)
		}
		if !s.sleep(delay) {
			return nil, false
		}
		if rule != nil && !fault {
			s.rt.addImage(s.node, image)
			s.containerEvent(c, v1.EventTypeNormal, events.PulledImage, "Successfully pulled image %q in %s (%s including waiting). Image size: 0 bytes.",
				image, time.Since(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			return rule, true
		}
		why := fmt.Sprintf("failed to resolve reference %q: %s: not found", image, image)
		if fault {
			why = fmt.Sprintf("injected fault (%s=%s)", FaultAnnotation, FaultImagePull)
		}
		msg := fmt.Sprintf("Failed to pull image %q: %s", image, why)
		s.containerEvent(c, v1.EventTypeWarning, events.FailedToPullImage, "%s", msg)
		s.containerEvent(c, v1.EventTypeWarning, events.FailedToPullImage, "Error: %s", images.ErrImagePull.Error())
		s.setWaiting(c, images.ErrImagePull.Error(), msg)
		if !s.sleep(time.Second) {
			return nil, false
		}
		s.containerEvent(c, v1.EventTypeNormal, events.BackOffPullImage, "Back-off pulling image %q", image)
		s.containerEvent(c, v1.EventTypeWarning, events.FailedToPullImage, "Error: %s", images.ErrImagePullBackOff.Error())
		s.setWaiting(c, images.ErrImagePullBackOff.Error(), fmt.Sprintf("Back-off pulling image %q: %s", image, msg))
		if !s.sleep(backoff) {
			return nil, false
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runOnce pulls, creates, starts and waits for one run of c. ok is false
// when the pod was stopped before c ended by itself.
func (s *sandbox) runOnce(c *ctr) (code int, ok bool) {
	rule, ok := s.pull(c)
	if !ok {
		return 0, false
	}
	if s.ctx.Err() != nil {
		return 0, false
	}
	spec, env, err := s.containerSpec(c, rule)
	s.mu.Lock()
	run := c.runs
	c.runs++
	s.mu.Unlock()
	var proc *process
	var log *containerLog
	if err == nil {
		if err = os.MkdirAll(filepath.Join(s.dir, "logs"), 0o755); err == nil {
			log, err = newContainerLog(s.logPath(c, run))
		}
	}
	containerID := fmt.Sprintf("atc://%s/%s-%d", s.pod.UID, c.spec.Name, run)
	if err == nil {
		scratch := filepath.Join(s.dir, "containers", fmt.Sprintf("%s-%d", c.spec.Name, run))
		if err = os.MkdirAll(scratch, 0o755); err == nil {
			spec.Scratch = scratch
			s.containerEvent(c, v1.EventTypeNormal, events.CreatedContainer, "Created container: %s", c.spec.Name)
			s.mu.Lock()
			stopped := s.ctx.Err() != nil
			if !stopped {
				proc, err = startProcess(s.rt.Self, spec, scratch+".json", log, c.spec.Stdin)
				if err == nil {
					c.proc, c.log, c.env = proc, log, env
				}
			}
			s.mu.Unlock()
			if stopped {
				log.finish()
				return 0, false
			}
		}
	}
	now := metav1.Now()
	if err != nil {
		if log != nil {
			log.write("stderr", []byte(err.Error()+"\n"))
			log.finish()
		}
		s.containerEvent(c, v1.EventTypeWarning, events.FailedToStartContainer, "Error: %v", err)
		s.mu.Lock()
		c.status.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
			ExitCode: exitStartError, Reason: reasonStartError, Message: err.Error(), StartedAt: now, FinishedAt: now, ContainerID: containerID,
		}}
		c.status.ContainerID = containerID
		s.mu.Unlock()
		s.update()
		return exitStartError, true
	}
	s.containerEvent(c, v1.EventTypeNormal, events.StartedContainer, "Started container %s", c.spec.Name)
	t := true
	s.mu.Lock()
	c.status.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}}
	c.status.ContainerID, c.status.ImageID = containerID, "atc.test/image@"+c.spec.Image
	c.status.Started = &t
	// A readiness probe decides when a main container is ready.
	probed := c.spec.ReadinessProbe != nil && !c.init
	c.status.Ready = !probed
	s.refreshReadyLocked()
	if s.pod.Status.Phase == v1.PodPending && !c.init {
		s.pod.Status.Phase = v1.PodRunning
	}
	select {
	case <-c.started:
	default:
		close(c.started)
	}
	s.mu.Unlock()
	s.update()
	if probed {
		go s.probeReadiness(c, proc)
	}
	if s.faultOn(c, FaultOOM) {
		go func() {
			select {
			case <-time.After(s.rt.FaultDelay):
				proc.kill(FaultOOM)
			case <-proc.done:
			}
		}()
	}
	<-proc.done
	code, killedBy := proc.result()
	reason := reasonCompleted
	switch {
	case killedBy == FaultOOM:
		reason, code = reasonOOMKilled, 137
	case code != 0:
		reason = reasonError
	}
	f := false
	s.mu.Lock()
	c.status.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, StartedAt: now, FinishedAt: metav1.Now(), ContainerID: containerID,
	}}
	c.status.Ready, c.status.Started = false, &f
	s.refreshReadyLocked()
	stopped := s.ctx.Err() != nil
	s.mu.Unlock()
	s.update()
	if stopped {
		return code, false
	}
	return code, true
}

// refreshReadyLocked sets ContainersReady and Ready from the containers.
func (s *sandbox) refreshReadyLocked() {
	ready := true
	for _, c := range s.ctrs {
		if (!c.init || c.sidecar) && !c.status.Ready {
			ready = false
		}
	}
	if s.done {
		ready = false
	}
	s.setCondition(v1.ContainersReady, ready, "ContainersNotReady", "containers with unready status")
	s.setCondition(v1.PodReady, ready, "ContainersNotReady", "containers with unready status")
}

// containerSpec is what container-init needs to run c, and c's environment.
func (s *sandbox) containerSpec(c *ctr, rule *ImageRule) (*initSpec, []string, error) {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	set("PATH", defaultPath)
	set("HOSTNAME", s.pod.Name)
	// As runc does when the image has no passwd entry for the user: root's
	// home, else /. (A host image's /root is the host's, which a non-root
	// uid cannot read: kubectl would fail on its config there.)
	home := "/root"
	if user, _ := s.runAs(c); user != nil && *user != 0 {
		home = "/"
	}
	set("HOME", home)
	for _, e := range c.spec.Env {
		// virtual-kubelet has resolved valueFrom (fieldRef, secretKeyRef,
		// configMapKeyRef) and envFrom into values already.
		set(e.Name, expansion.Expand(e.Value, expansion.MappingFuncFor(env)))
	}
	if s.rt.APIServerHost != "" {
		// What kube-proxy would do for the `kubernetes` Service: the
		// variables virtual-kubelet set from its cluster IP name the API
		// server itself (whose certificate carries 127.0.0.1).
		hostPort := net.JoinHostPort(s.rt.APIServerHost, s.rt.APIServerPort)
		set("KUBERNETES_SERVICE_HOST", s.rt.APIServerHost)
		set("KUBERNETES_SERVICE_PORT", s.rt.APIServerPort)
		set("KUBERNETES_SERVICE_PORT_HTTPS", s.rt.APIServerPort)
		set("KUBERNETES_PORT", "tcp://"+hostPort)
	}
	var envList []string
	for _, k := range order {
		envList = append(envList, k+"="+env[k])
	}
	mapping := expansion.MappingFuncFor(env)
	var args []string
	command := c.spec.Command
	if len(command) == 0 && rule != nil {
		var err error
		if command, err = rule.entrypoint(); err != nil {
			return nil, nil, fmt.Errorf("image %q: %w", c.spec.Image, err)
		}
	}
	for _, a := range command {
		args = append(args, expansion.Expand(a, mapping))
	}
	for _, a := range c.spec.Args {
		args = append(args, expansion.Expand(a, mapping))
	}
	if len(args) == 0 {
		return nil, nil, fmt.Errorf("no command specified for container %q (and image %q has no command in the image map)", c.spec.Name, c.spec.Image)
	}
	lower := "/"
	if rule != nil && rule.Rootfs != "" {
		lower = rule.Rootfs
	}
	mounts, err := s.mountsFor(c)
	if err != nil {
		return nil, nil, err
	}
	user, group := s.runAs(c)
	return &initSpec{
		Lower: lower, Mounts: mounts, Hostname: s.pod.Name, WorkingDir: c.spec.WorkingDir,
		Args: args, Env: envList, User: user, Group: group,
	}, envList, nil
}

// runAs is c's runAsUser and runAsGroup: the container's securityContext
// over the pod's, as a kubelet takes them (nil: the image's, here root).
func (s *sandbox) runAs(c *ctr) (user, group *int64) {
	if p := s.pod.Spec.SecurityContext; p != nil {
		user, group = p.RunAsUser, p.RunAsGroup
	}
	if sc := c.spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			group = sc.RunAsGroup
		}
	}
	return user, group
}

func (s *sandbox) gracePeriod() time.Duration {
	if g := s.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// stopContainer stops a running container with a Killing event.
func (s *sandbox) stopContainer(c *ctr, grace time.Duration) {
	proc, _ := s.runningProcess(c)
	if proc == nil {
		return
	}
	s.containerEvent(c, v1.EventTypeNormal, events.KillingContainer, "Stopping container %s", c.spec.Name)
	proc.stop(grace)
}

// evictAfter evicts the pod as the kubelet's eviction manager does under
// memory pressure: every container is killed and the pod Failed/Evicted.
func (s *sandbox) evictAfter(d time.Duration) {
	if !s.sleep(d) {
		return
	}
	msg := fmt.Sprintf("The node was low on resource: %s. ", v1.ResourceMemory)
	s.mu.Lock()
	s.evicted = true
	s.mu.Unlock()
	s.event(v1.EventTypeWarning, eviction.Reason, "%s", msg)
	s.stopAll(0)
	s.mu.Lock()
	s.pod.Status.Reason, s.pod.Status.Message = eviction.Reason, msg
	s.mu.Unlock()
	s.finish()
}

// stopAll stops every container at once, each with grace before SIGKILL,
// and returns once the pod's run has ended.
func (s *sandbox) stopAll(grace time.Duration) {
	s.cancel()
	var wg sync.WaitGroup
	for _, c := range s.ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stopContainer(c, grace)
		}()
	}
	wg.Wait()
	<-s.finished
}

// finish sets the final phase from the containers' ends.
func (s *sandbox) finish() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	phase := v1.PodSucceeded
	for _, c := range s.ctrs {
		if c.sidecar {
			continue
		}
		t := c.status.State.Terminated
		if t == nil {
			// Never started, or still waiting when the pod was stopped.
			phase = v1.PodFailed
			continue
		}
		if t.ExitCode != 0 {
			phase = v1.PodFailed
		}
	}
	if s.evicted {
		phase = v1.PodFailed
	}
	s.pod.Status.Phase = phase
	s.refreshReadyLocked()
	s.setCondition(v1.ContainersReady, false, kubeletstatus.PodCompleted, "")
	s.setCondition(v1.PodReady, false, kubeletstatus.PodCompleted, "")
	s.setCondition(v1.PodReadyToStartContainers, false, "", "")
	s.mu.Unlock()
	s.update()
}

// terminate stops the pod (it is being deleted, or the agent is exiting).
func (s *sandbox) terminate(grace time.Duration) {
	s.mu.Lock()
	if s.terminating {
		s.mu.Unlock()
		<-s.finished
		return
	}
	s.terminating = true
	s.mu.Unlock()
	s.stopAll(grace)
	s.finish()
}

// cleanup removes the pod's directory (nothing is mounted in it on the
// host: every mount is made in a container's own namespace).
func (s *sandbox) cleanup() {
	if err := safeRemoveAll(s.rt.StateDir, s.dir); err != nil {
		fmt.Fprintf(os.Stderr, "process-node: cleanup of %s: %v\n", s.key, err)
	}
}
