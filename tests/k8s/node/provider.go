package node

import (
	"context"
	"io"
	"runtime"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/kubernetes/pkg/kubelet/events"
)

// KubeletVersion is what the nodes report: the control plane's release.
const KubeletVersion = "v1.37.2"

// Provider is one node's virtual-kubelet provider; the pods themselves run
// in the Runtime all nodes share.
type Provider struct {
	rt       *Runtime
	node     string
	recorder record.EventRecorder

	mu     sync.Mutex
	notify func(*v1.Pod)
}

func NewProvider(rt *Runtime, node string, recorder record.EventRecorder) *Provider {
	return &Provider{rt: rt, node: node, recorder: recorder}
}

func (p *Provider) notifyPod(pod *v1.Pod) {
	p.mu.Lock()
	f := p.notify
	p.mu.Unlock()
	if f != nil {
		f(pod)
	}
}

func (p *Provider) CreatePod(_ context.Context, pod *v1.Pod) error {
	return p.rt.Create(p.node, pod, p.recorder, p.notifyPod)
}

func (p *Provider) UpdatePod(_ context.Context, pod *v1.Pod) error { return p.rt.Update(pod) }

func (p *Provider) DeletePod(_ context.Context, pod *v1.Pod) error { return p.rt.Delete(pod) }

func (p *Provider) GetPod(_ context.Context, namespace, name string) (*v1.Pod, error) {
	s := p.rt.get(namespace, name)
	if s == nil || s.node != p.node {
		return nil, errdefs.NotFoundf("pod %s/%s is not on node %s", namespace, name, p.node)
	}
	return s.snapshot(), nil
}

func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*v1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *Provider) GetPods(context.Context) ([]*v1.Pod, error) {
	var out []*v1.Pod
	for _, s := range p.rt.podsOf(p.node) {
		out = append(out, s.snapshot())
	}
	return out, nil
}

// NotifyPods is virtual-kubelet's asynchronous status interface: every
// status change is pushed as it happens.
func (p *Provider) NotifyPods(_ context.Context, f func(*v1.Pod)) {
	p.mu.Lock()
	p.notify = f
	p.mu.Unlock()
}

// The kubelet API goes to the shared handler (serveKubeletAPI); these
// satisfy nodeutil.Provider.
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, pod, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	return p.rt.GetContainerLogs(ctx, namespace, pod, container, opts)
}

func (p *Provider) RunInContainer(ctx context.Context, namespace, pod, container string, cmd []string, attach api.AttachIO) error {
	return p.rt.RunInContainer(ctx, namespace, pod, container, cmd, attach)
}

func (p *Provider) AttachToContainer(ctx context.Context, namespace, pod, container string, attach api.AttachIO) error {
	return p.rt.AttachToContainer(ctx, namespace, pod, container, attach)
}

func (p *Provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return nil, errdefs.InvalidInput("stats are not collected by this node")
}

func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

func (p *Provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.InvalidInput("port forwarding is not supported by this node")
}

// nodeObject is the Node registered for one configured node.
func nodeObject(c NodeConfig, kubeletPort int32) v1.Node {
	labels := map[string]string{
		"type":                   "virtual-kubelet",
		"kubernetes.io/role":     "agent",
		"kubernetes.io/hostname": c.Name,
		"kubernetes.io/os":       runtime.GOOS,
		"kubernetes.io/arch":     runtime.GOARCH,
		"beta.kubernetes.io/os":  runtime.GOOS,
	}
	for k, v := range c.Labels {
		labels[k] = v
	}
	capacity := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse("8"),
		v1.ResourceMemory:           resource.MustParse("32Gi"),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	now := metav1.Now()
	cond := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Labels: labels},
		Spec:       v1.NodeSpec{Taints: c.Taints},
		Status: v1.NodeStatus{
			Phase:       v1.NodeRunning,
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			Addresses: []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: v1.NodeHostName, Address: c.Name},
			},
			DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: kubeletPort}},
			NodeInfo: v1.NodeSystemInfo{
				KubeletVersion: KubeletVersion, OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
				OSImage: "atc test node (processes)", ContainerRuntimeVersion: "atc-process://1",
			},
			Conditions: []v1.NodeCondition{
				readyCondition(true),
				cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
				cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
				cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
				cond(v1.NodeNetworkUnavailable, v1.ConditionFalse, "RouteCreated", "pods share the host's network"),
			},
		},
	}
}

func readyCondition(ready bool) v1.NodeCondition {
	now := metav1.Now()
	if ready {
		return v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return v1.NodeCondition{Type: v1.NodeReady, Status: v1.ConditionFalse, Reason: "KubeletNotReady", Message: "injected fault (" + FaultAnnotation + "=" + FaultNotReady + ")", LastHeartbeatTime: now, LastTransitionTime: now}
}

// nodeHealth is a node's virtual-kubelet NodeProvider: Ready, unless the
// Node carries the annotation atc.test/fault: not-ready.
type nodeHealth struct {
	client   kubernetes.Interface
	base     v1.Node
	recorder record.EventRecorder
}

func (h *nodeHealth) Ping(context.Context) error { return nil }

func (h *nodeHealth) NotifyNodeStatus(ctx context.Context, cb func(*v1.Node)) {
	go h.watch(ctx, cb)
}

func (h *nodeHealth) watch(ctx context.Context, cb func(*v1.Node)) {
	ready := true
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := h.client.CoreV1().Nodes().Get(ctx, h.base.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		want := n.Annotations[FaultAnnotation] != FaultNotReady
		if want == ready {
			continue
		}
		ready = want
		node := h.base.DeepCopy()
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == v1.NodeReady {
				node.Status.Conditions[i] = readyCondition(ready)
			}
		}
		ref := &v1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID}
		if ready {
			h.recorder.Eventf(ref, v1.EventTypeNormal, events.NodeReady, "Node %s status is now: %s", n.Name, events.NodeReady)
		} else {
			h.recorder.Eventf(ref, v1.EventTypeNormal, events.NodeNotReady, "Node %s status is now: %s", n.Name, events.NodeNotReady)
		}
		cb(node)
	}
}
