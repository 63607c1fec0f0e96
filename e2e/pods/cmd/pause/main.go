// Command pause is the pods lab's sandbox image: it holds a pod's namespaces and waits
// for SIGTERM or SIGINT, as registry.k8s.io/pause does (no registry is reachable from
// the lab, so the lab builds its own).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
