//go:build linux

package layer2

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real-socket smoke test runs the Announcer in one network namespace
// and asks for its addresses with arping and ndisc6 from another, over a
// veth pair. The Announcer runs in a child process (this test binary, run
// with smokeHelperEnv set, under "ip netns exec") so the test process never
// changes namespace.
const (
	smokeHelperEnv = "HERALD_L2_SMOKE_HELPER"
	smokeIfaceEnv  = "HERALD_L2_SMOKE_IFACE"
	smokeAddrsEnv  = "HERALD_L2_SMOKE_ADDRS"
)

func TestMain(m *testing.M) {
	if os.Getenv(smokeHelperEnv) == "1" {
		os.Exit(smokeHelper())
	}
	os.Exit(m.Run())
}

// smokeHelper announces the addresses in smokeAddrsEnv on smokeIfaceEnv
// until its standard input closes, printing "ready", then one line per
// conflict, then a final stats line.
func smokeHelper() int {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	iface := os.Getenv(smokeIfaceEnv)
	desired := Desired{}
	for _, s := range strings.Split(os.Getenv(smokeAddrsEnv), ",") {
		desired[netip.MustParseAddr(s)] = []string{iface}
	}
	a := NewAnnouncer(ctx, Config{})
	if err := a.Set(ctx, desired); err != nil {
		fmt.Fprintln(os.Stderr, "helper: set:", err)
		return 1
	}
	fmt.Println("ready")
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	for {
		select {
		case c := <-a.Conflicts():
			fmt.Printf("conflict %s %s %s\n", c.Addr, c.OtherMAC, c.Evidence)
		case err := <-a.Errors():
			fmt.Fprintln(os.Stderr, "helper: error:", err)
		case <-ctx.Done():
			<-a.Done()
			s := a.Stats()
			fmt.Printf("stats arpReplies=%d ndpReplies=%d ndpRequests=%d\n", s.ARP.Replies, s.NDP.Replies, s.NDP.Requests)
			return 0
		}
	}
}

// requireSmokeTools fails under CI=true, and skips otherwise, when the test
// cannot run here.
func requireSmokeTools(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "arping", "ndisc6", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("real-socket smoke test needs %s (Debian packages iproute2, arping, ndisc6, iputils-ping; run as root)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestSmokeRealSockets(t *testing.T) {
	requireSmokeTools(t)
	id := fmt.Sprint(os.Getpid())
	nsA, nsB := "herald-l2-"+id+"-a", "herald-l2-"+id+"-b"
	vethA, vethB := "hl2a"+id, "hl2b"+id
	const (
		macA = "02:68:6c:32:00:0a"
		macB = "02:68:6c:32:00:0b"
	)
	addr4, free4 := "198.51.100.10", "198.51.100.11"
	addr6 := "2001:db8:5::10"

	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("remove namespace %s: %v\n%s", ns, err, out)
			}
		})
	}
	// If the veth ends up in the root namespace by mistake, remove it there;
	// deleting the namespaces removes it otherwise.
	t.Cleanup(func() { exec.Command("ip", "link", "del", vethA).Run() })
	run(t, "ip", "link", "add", vethA, "address", macA, "netns", nsA, "type", "veth",
		"peer", "name", vethB, "address", macB, "netns", nsB)
	in := func(t *testing.T, ns string, args ...string) string {
		t.Helper()
		return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	inB := func(t *testing.T, args ...string) string { t.Helper(); return in(t, nsB, args...) }
	for _, side := range []struct{ ns, veth, v4, v6 string }{
		{nsA, vethA, "198.51.100.1/24", "2001:db8:5::1/64"},
		{nsB, vethB, "198.51.100.2/24", "2001:db8:5::2/64"},
	} {
		in(t, side.ns, "ip", "link", "set", "lo", "up")
		in(t, side.ns, "ip", "addr", "add", side.v4, "dev", side.veth)
		in(t, side.ns, "ip", "addr", "add", side.v6, "dev", side.veth, "nodad")
		in(t, side.ns, "ip", "link", "set", side.veth, "up")
	}

	// The Announcer, in namespace A.
	helper := exec.Command("ip", "netns", "exec", nsA, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), smokeHelperEnv+"=1", smokeIfaceEnv+"="+vethA, smokeAddrsEnv+"="+addr4+","+addr6)
	helper.Stderr = &testWriter{t: t, prefix: "helper: "}
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	stopped := false
	stopHelper := func() {
		if stopped {
			return
		}
		stopped = true
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- helper.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			helper.Process.Kill()
			<-done
			t.Error("helper did not stop within 10 s; killed")
		}
	}
	t.Cleanup(stopHelper)
	expectLine := func(t *testing.T, prefix string) string {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper output ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q line from the helper", prefix)
			}
		}
	}
	expectLine(t, "ready")

	t.Run("arping gets the announcing MAC", func(t *testing.T) {
		out := inB(t, "arping", "-c", "1", "-w", "3", "-r", "-i", vethB, addr4)
		if got := strings.TrimSpace(out); !strings.EqualFold(got, macA) {
			t.Errorf("arping %s answered %q, want %s", addr4, got, macA)
		}
	})
	t.Run("an address not owned gets no answer", func(t *testing.T) {
		cmd := exec.Command("ip", "netns", "exec", nsB, "arping", "-c", "1", "-w", "2", "-r", "-i", vethB, free4)
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(strings.ToLower(string(out)), macA) {
			t.Errorf("arping %s: err %v, output %q; want no reply", free4, err, out)
		}
	})
	t.Run("ndisc6 gets the announcing MAC", func(t *testing.T) {
		out := inB(t, "ndisc6", "-q", "-1", "-r", "3", "-w", "1000", addr6, vethB)
		if got := strings.TrimSpace(out); !strings.EqualFold(got, macA) {
			t.Errorf("ndisc6 %s answered %q, want %s", addr6, got, macA)
		}
	})
	t.Run("a unicast neighbour solicitation (NUD probe) is answered", func(t *testing.T) {
		// Make B's kernel probe the cached entry with unicast solicitations
		// after 1 s: only a solicited advertisement makes it REACHABLE again,
		// and without an answer it ends FAILED.
		inB(t, "sysctl", "-q", "-w", "net.ipv6.neigh."+vethB+".delay_first_probe_time=1")
		inB(t, "ip", "-6", "neigh", "replace", addr6, "lladdr", macA, "dev", vethB, "nud", "stale")
		exec.Command("ip", "netns", "exec", nsB, "ping", "-6", "-c", "1", "-W", "1", addr6).Run()
		deadline := time.Now().Add(8 * time.Second)
		var state string
		for time.Now().Before(deadline) {
			state = inB(t, "ip", "-6", "neigh", "show", addr6, "dev", vethB)
			if strings.Contains(state, "REACHABLE") || strings.Contains(state, "FAILED") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(state, "REACHABLE") {
			t.Errorf("neighbour entry %q, want REACHABLE after the unicast probe", strings.TrimSpace(state))
		}
	})
	t.Run("another MAC's gratuitous ARP is reported as a conflict", func(t *testing.T) {
		// arping waits for an answer that never comes to a gratuitous ARP,
		// so its exit status says nothing here.
		exec.Command("ip", "netns", "exec", nsB, "arping", "-U", "-c", "1", "-w", "1", "-S", addr4, "-i", vethB, addr4).Run()
		l := expectLine(t, "conflict")
		if want := fmt.Sprintf("conflict %s %s %s", addr4, macB, EvidenceARPRequest); l != want {
			t.Errorf("got %q, want %q", l, want)
		}
	})

	stopHelper()
	for l := range lines {
		if strings.HasPrefix(l, "stats ") {
			t.Logf("helper %s", l)
		}
	}
}

// testWriter forwards a child's output to the test log.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
