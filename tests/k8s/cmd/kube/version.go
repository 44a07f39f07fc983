package main

import (
	"fmt"
	"runtime/debug"
)

// printVersions prints the module versions this binary was built from, as
// the build recorded them.
func printVersions() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Println("no build information")
		return
	}
	fmt.Println("go", info.GoVersion)
	for _, dep := range info.Deps {
		switch dep.Path {
		case "k8s.io/kubernetes", "k8s.io/client-go", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/client/v3":
			v := dep.Version
			if dep.Replace != nil {
				v = dep.Replace.Version
			}
			fmt.Println(dep.Path, v)
		}
	}
}
