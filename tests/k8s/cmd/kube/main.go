// Command kube is the test control plane in one binary: kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl and an embedded etcd, all
// from the pinned k8s.io/kubernetes and go.etcd.io/etcd releases. One binary
// links the shared Kubernetes packages once, which makes a cold build much
// shorter than building each command on its own.
//
// The command to run is the first argument (kube apiserver --flags...), or the
// name the binary was invoked under (a symlink named kubectl).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones, as in the upstream commands

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = `usage: kube COMMAND [ARGS...]

commands:
  apiserver            kube-apiserver
  controller-manager   kube-controller-manager
  scheduler            kube-scheduler
  kubectl              kubectl
  etcd                 embedded etcd server (kube etcd -h for its flags)
  version              print the pinned versions
  free-ports N         print N free TCP ports on 127.0.0.1
`

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "kube-")
	args := os.Args[1:]
	if name == "kube" {
		if len(args) == 0 {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = strings.TrimPrefix(args[0], "kube-"), args[1:]
	}
	// The upstream commands read os.Args themselves (kubectl for plugins and
	// verbosity, cobra for its arguments): make them see their own command line.
	os.Args = append([]string{name}, args...)

	switch name {
	case "apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand()))
	case "controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand()))
	case "scheduler":
		os.Exit(runCobra(scheduler.NewSchedulerCommand()))
	case "kubectl", "ctl":
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck
		command := kubectl.NewDefaultKubectlCommand()
		if err := cli.RunNoErrOutput(command); err != nil {
			kubectlutil.CheckErr(err)
		}
	case "etcd":
		os.Exit(runEtcd(args))
	case "version":
		printVersions()
	case "free-ports":
		os.Exit(freePorts(args))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "kube: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
}

func runCobra(command *cobra.Command) int {
	command.SetArgs(os.Args[1:])
	return cli.Run(command)
}
