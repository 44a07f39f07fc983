// Command process-node is the test cluster's node agent: it registers the
// nodes of a config file with the API server and runs their pods as local
// processes (see tests/k8s/node/README.md). It needs root.
//
//	process-node --kubeconfig F --config nodes.yaml [--images images.yaml]
//	    --listen 127.0.0.1:PORT --tls-cert F --tls-key F --client-ca F --state-dir DIR
//
// `process-node container-init SPEC` is how it starts a container (in new
// mount and UTS namespaces); it is not meant to be run by hand.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"atc.test/k8s/node"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "container-init" {
		os.Exit(node.ContainerInit(os.Args[2:]))
	}
	var o node.Options
	fs := flag.NewFlagSet("process-node", flag.ExitOnError)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig of the agent's identity")
	fs.StringVar(&o.Config, "config", "tests/k8s/node/nodes.yaml", "nodes, storage and delays")
	fs.StringVar(&o.Images, "images", "", "image map (default: the images: path in --config)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:10250", "kubelet API address of every node")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "kubelet API serving certificate")
	fs.StringVar(&o.TLSKey, "tls-key", "", "kubelet API serving key")
	fs.StringVar(&o.ClientCA, "client-ca", "", "CA of the API server's kubelet client certificate")
	fs.StringVar(&o.StateDir, "state-dir", "", "pod sandboxes, logs and volumes")
	fs.DurationVar(&o.PVCBindDelay, "pvc-bind-delay", -1, "how long a claim stays Pending before it is bound (default: storage.bindDelay in --config)")
	_ = fs.Parse(os.Args[1:])
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "process-node: needs root (mount namespaces, bind mounts, chroot)")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := node.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "process-node:", err)
		os.Exit(1)
	}
}
