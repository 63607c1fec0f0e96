package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTwoHostsReachEachOther(t *testing.T) {
	lab := New(t, Options{})
	lan := lab.AddBridge("lan")
	a4, a6 := LANAddrs(21)
	b4, b6 := LANAddrs(22)
	a := lab.AddHost("a")
	a.Attach(lan, "eth0", a4, a6)
	b := lab.AddHost("b")
	b.Attach(lan, "eth0", b4, b6)

	for _, dst := range []netip.Addr{b4.Addr(), b6.Addr()} {
		if out, err := a.Run(t.Context(), "ping", "-c", "1", "-W", "2", dst.String()); err != nil {
			t.Errorf("ping %s from a: %v\n%s", dst, err, out)
		}
	}
	// A TCP connection from Go code running in a to a listener made in b.
	ln, err := b.Listen("tcp", netip.AddrPortFrom(b6.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello from b\n"))
			c.Close()
		}
	}()
	got, err := a.Connect(t.Context(), netip.MustParseAddrPort(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	if got != "hello from b\n" {
		t.Errorf("Connect = %q, want %q", got, "hello from b\n")
	}
	// The machine's own namespace never sees the lab's addresses.
	if _, err := net4Reachable(t.Context(), b4.Addr()); err == nil {
		t.Errorf("%s is reachable from the machine's own namespace", b4.Addr())
	}
}

// net4Reachable pings addr from the machine's own namespace.
func net4Reachable(ctx context.Context, addr netip.Addr) (string, error) {
	out, err := exec.CommandContext(ctx, "ping", "-c", "1", "-W", "1", addr.String()).CombinedOutput()
	return string(out), err
}

func TestDetachCutsTheHostOff(t *testing.T) {
	lab := New(t, Options{})
	lan := lab.AddBridge("lan")
	a4, _ := LANAddrs(21)
	b4, _ := LANAddrs(22)
	a := lab.AddHost("a")
	a.Attach(lan, "eth0", a4)
	b := lab.AddHost("b")
	bl := b.Attach(lan, "eth0", b4)
	ping := func() error {
		_, err := a.Run(t.Context(), "ping", "-c", "1", "-W", "1", b4.Addr().String())
		return err
	}
	if err := ping(); err != nil {
		t.Fatalf("before detach: %v", err)
	}
	if err := bl.Detach(); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err == nil {
		t.Errorf("b answers while detached")
	}
	if err := bl.Attach(); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err != nil {
		t.Errorf("after re-attach: %v", err)
	}
	if err := bl.SetCarrier(false); err != nil {
		t.Fatal(err)
	}
	if out := b.MustRun("ip", "link", "show", "dev", "eth0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("eth0 of b after SetCarrier(false): %s", out)
	}
}

func TestProcessLifetimeAndLeftovers(t *testing.T) {
	var pid int
	var prefix string
	t.Run("lab", func(t *testing.T) {
		lab := New(t, Options{})
		h := lab.AddHost("a")
		p := h.Start("sleeper", "sleep", "600")
		pid, prefix = p.Pid(), lab.Prefix()
		if err := syscallKill0(pid); err != nil {
			t.Fatalf("process not running: %v", err)
		}
	})
	if err := syscallKill0(pid); err == nil {
		t.Errorf("process %d still runs after the lab closed", pid)
	}
	for _, ns := range listNetns() {
		if strings.HasPrefix(ns, prefix+"-") {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if _, err := os.Stat(ownerFile(prefix)); !os.IsNotExist(err) {
		t.Errorf("owner file of %s left behind: %v", prefix, err)
	}
}

func TestCleanLeftoversRemovesCrashedRuns(t *testing.T) {
	RequireRoot(t)
	// Simulate a crashed run: an owner file naming a dead process, a namespace with a
	// process in it, and a namespace with no owner file at all.
	dead := "hlzzzz0"
	orphan := "hlzzzz1"
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ownerFile(dead), []byte("999999999 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{dead + "-a", orphan + "-b"} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	}
	sleeper := exec.Command("ip", "netns", "exec", dead+"-a", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	// Wait until ip has entered the namespace and exec'ed sleep.
	for i := 0; ; i++ {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", sleeper.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if i == 500 {
			t.Fatalf("the simulated leftover did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := CleanLeftovers(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		sleeper.Process.Kill()
		t.Errorf("the leftover's process was not killed")
	}
	for _, ns := range listNetns() {
		if strings.HasPrefix(ns, dead+"-") || strings.HasPrefix(ns, orphan+"-") {
			t.Errorf("leftover namespace %s was not removed", ns)
		}
	}
	if _, err := os.Stat(ownerFile(dead)); !os.IsNotExist(err) {
		t.Errorf("leftover owner file: %v", err)
	}
}

func TestCleanLeftoversKeepsLiveLabs(t *testing.T) {
	lab := New(t, Options{})
	lab.AddHost("a")
	if err := CleanLeftovers(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ns := range listNetns() {
		found = found || ns == lab.Prefix()+"-a"
	}
	if !found {
		t.Errorf("CleanLeftovers removed the live lab %s", lab.Prefix())
	}
}

func syscallKill0(pid int) error { return syscall.Kill(pid, 0) }
