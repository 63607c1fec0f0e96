// Command podserver is the network lab's pod: it accepts TCP connections on every
// -listen address and answers each with one line, "<name> <client address:port>", then
// closes it. The client's address shows whether kube-proxy kept the source (Local
// traffic policy) or masqueraded it (Cluster). With -echo it keeps the connection
// open instead and answers each line the client sends with "<name> <line>", so a
// test can hold one connection across an address move. It runs until SIGTERM or
// SIGINT.
package main

import (
	"bufio"
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
	echo := flag.Bool("echo", false, "keep each connection open and answer every line with the name and the line")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *name, strings.Split(*listen, ","), *echo); err != nil {
		fmt.Fprintln(os.Stderr, "podserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name string, addrs []string, echo bool) error {
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
		go serve(ln, name, echo)
		fmt.Println("listening on", ln.Addr())
	}
	<-ctx.Done()
	return nil
}

func serve(ln net.Listener, name string, echo bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if echo {
				// A test's connection lives as long as the test.
				_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
			} else {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
			if !echo {
				return
			}
			lines := bufio.NewScanner(c)
			for lines.Scan() {
				if _, err := fmt.Fprintf(c, "%s %s\n", name, lines.Text()); err != nil {
					return
				}
			}
		}()
	}
}
