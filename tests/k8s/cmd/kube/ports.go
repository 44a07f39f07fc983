package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// freePorts prints n TCP ports on 127.0.0.1 that were free a moment ago,
// one a line, by holding n listeners open at once so they differ.
func freePorts(args []string) int {
	n := 1
	if len(args) > 0 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 || v > 100 {
			fmt.Fprintln(os.Stderr, "free-ports: N must be between 1 and 100")
			return 2
		}
		n = v
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "free-ports:", err)
			return 1
		}
		listeners = append(listeners, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}
