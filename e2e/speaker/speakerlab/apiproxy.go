package speakerlab

import (
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/herald-dev/herald/e2e/netlab"
)

// apiProxy forwards TCP connections from a listener inside a host's
// namespace to the apiserver in the machine's namespace. setDown(true)
// closes the listener and every connection, as if the apiserver became
// unreachable; setDown(false) listens again.
type apiProxy struct {
	host   *netlab.Host
	listen string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	down  bool
}

func newAPIProxy(t netlab.T, h *netlab.Host, listen, target string) (*apiProxy, error) {
	p := &apiProxy{host: h, listen: listen, target: target, conns: map[net.Conn]struct{}{}}
	if err := p.start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = p.setDown(true) })
	return p, nil
}

func (p *apiProxy) start() error {
	ln, err := p.host.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("speakerlab: API proxy on %s: %w", p.host.Name(), err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
	return nil
}

func (p *apiProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *apiProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *apiProxy) setDown(down bool) error {
	p.mu.Lock()
	if p.down == down {
		p.mu.Unlock()
		return nil
	}
	p.down = down
	if !down {
		p.mu.Unlock()
		return p.start()
	}
	ln := p.ln
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	ln.Close()
	for c := range conns {
		c.Close()
	}
	return nil
}

// ServeAPI forwards TCP connections to listen inside h's namespace to the
// apiserver at target in the machine's namespace, until t's cleanup: how
// processes in a host reach the control plane (measure-scale's hollow
// speakers share one).
func ServeAPI(t netlab.T, h *netlab.Host, listen, target string) error {
	_, err := newAPIProxy(t, h, listen, target)
	return err
}
