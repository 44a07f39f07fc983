//go:build tools

// Package tools keeps modules in go.mod that `go mod tidy` would otherwise
// drop before the code that imports them exists: the node agent builds on
// virtual-kubelet and must use the same client libraries as the control plane.
package tools

import (
	_ "github.com/virtual-kubelet/virtual-kubelet/node"
)
