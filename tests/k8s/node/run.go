package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
)

// Options is process-node's command line.
type Options struct {
	Kubeconfig string
	Config     string
	Images     string // default: the images: path in Config
	Listen     string
	TLSCert    string
	TLSKey     string
	ClientCA   string
	StateDir   string
	// PVCBindDelay overrides the config's storage.bindDelay when >= 0.
	PVCBindDelay time.Duration
}

// Run registers the configured nodes, serves their kubelet API on one
// port and runs their pods until ctx ends.
func Run(ctx context.Context, o Options) error {
	vklog.L = vkslog.FromSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	cfg, err := LoadConfig(o.Config)
	if err != nil {
		return err
	}
	imagesPath := o.Images
	if imagesPath == "" {
		imagesPath = cfg.Images
	}
	images := &ImageMap{}
	if imagesPath != "" {
		if images, err = LoadImages(imagesPath); err != nil {
			return err
		}
	}
	images.DefaultPullDelay = cfg.ImagePullDelay.Duration
	if o.StateDir == "" {
		return errors.New("--state-dir is required")
	}
	stateDir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	// virtual-kubelet makes a client of its own from $KUBECONFIG before it
	// takes ours: give it the same file.
	os.Setenv("KUBECONFIG", o.Kubeconfig)
	restCfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	restCfg.QPS, restCfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rt, err := NewRuntime(stateDir, self, images, client)
	if err != nil {
		return err
	}
	rt.FaultDelay = cfg.FaultDelay.Duration
	if rt.APIServerHost, rt.APIServerPort, err = apiServerAddress(restCfg.Host); err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	rt.RemoveOrphans()
	_, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	tlsCfg, err := serverTLS(o)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", o.Listen, tlsCfg)
	if err != nil {
		return err
	}
	srv := serveKubeletAPI(rt, ln)
	defer srv.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bind := cfg.Storage.BindDelay.Duration
	if o.PVCBindDelay >= 0 {
		bind = o.PVCBindDelay
	}
	prov := &Provisioner{
		Client: client, StorageClass: cfg.Storage.StorageClass,
		Dir: filepath.Join(stateDir, "pv"), StateDir: stateDir, BindDelay: bind,
	}
	go prov.Run(ctx)

	errs := make(chan error, len(cfg.Nodes))
	var nodes []*nodeutil.Node
	for _, nc := range cfg.Nodes {
		n, err := newNode(ctx, rt, client, nc, int32(port))
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		go func() {
			if err := n.Run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("node %s: %w", nc.Name, err)
			}
		}()
	}
	for i, n := range nodes {
		if err := n.WaitReady(ctx, 2*time.Minute); err != nil {
			return fmt.Errorf("node %s: %w", cfg.Nodes[i].Name, err)
		}
	}
	fmt.Fprintln(os.Stderr, "process-node: ready")
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	rt.StopAll(5 * time.Second)
	return err
}

func newNode(ctx context.Context, rt *Runtime, client kubernetes.Interface, nc NodeConfig, port int32) (*nodeutil.Node, error) {
	eb := record.NewBroadcaster(record.WithContext(ctx))
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := eb.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: nc.Name})
	spec := nodeObject(nc, port)
	health := &nodeHealth{client: client, base: spec, recorder: recorder}
	return nodeutil.NewNode(nc.Name,
		func(nodeutil.ProviderConfig) (nodeutil.Provider, vknode.NodeProvider, error) {
			return NewProvider(rt, nc.Name, recorder), health, nil
		},
		nodeutil.WithClient(client),
		func(c *nodeutil.NodeConfig) error {
			c.NodeSpec = spec
			c.EventRecorder = recorder
			c.NumWorkers = 4
			// The kubelet API of every node is one server (serveKubeletAPI):
			// no TLS config here, so the node starts none of its own.
			c.TLSConfig = nil
			c.Handler = nil
			return nil
		},
	)
}

// serverTLS serves the kubelet API with the given certificate to clients
// with a certificate from --client-ca (the API server's kubelet client).
func serverTLS(o Options) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(o.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("--client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--client-ca: no certificate in %s", o.ClientCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// serveKubeletAPI serves logs, exec, attach and the pod lists of every node:
// requests name their pod, which the runtime finds whichever node has it.
func serveKubeletAPI(rt *Runtime, ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	api.AttachPodRoutes(api.PodHandlerConfig{
		RunInContainer:        rt.RunInContainer,
		AttachToContainer:     rt.AttachToContainer,
		GetContainerLogs:      rt.GetContainerLogs,
		GetPods:               rt.GetPods,
		GetPodsFromKubernetes: rt.GetPods,
		StreamIdleTimeout:     4 * time.Hour,
		StreamCreationTimeout: 30 * time.Second,
	}, mux, true)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// apiServerAddress is the host and port of the API server's URL.
func apiServerAddress(server string) (string, string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", "", fmt.Errorf("server %q: %w", server, err)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return u.Hostname(), port, nil
}
