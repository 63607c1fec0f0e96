// Command podserver is the network lab's pod: it accepts TCP connections on every
// -listen address and answers each with one line, "<name> <client address:port>", then
// closes it. The client's address shows whether kube-proxy kept the source (Local
// traffic policy) or masqueraded it (Cluster). It runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "", "name to answer with")
	listen := flag.String("listen", ":8080", "comma-separated addresses to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *name, strings.Split(*listen, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "podserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, addrs []string) error {
	if name == "" {
		return errors.New("-name is required")
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		go func() {
			<-ctx.Done()
			ln.Close()
		}()
		go serve(ln, name)
		fmt.Println("listening on", ln.Addr())
	}
	<-ctx.Done()
	return nil
}

func serve(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
		}()
	}
}
