package netlab

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestAPIProxyFaults: the proxy in front of the apiserver delays, refuses and
// resets as told, and is healthy again after.
func TestAPIProxyFaults(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newTCPProxy([]net.Listener{ln}, echo.Addr().String())
	defer p.close()

	// roundTrip sends a byte through a new connection and returns how long the
	// echo took, or an error.
	roundTrip := func(c net.Conn) (time.Duration, error) {
		start := time.Now()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte{1}); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	open := dial()
	defer open.Close()
	if _, err := roundTrip(open); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	p.setFault(APIFault{Delay: 100 * time.Millisecond}, false)
	if d, err := roundTrip(open); err != nil || d < 200*time.Millisecond {
		t.Fatalf("delayed round trip took %v (%v), want at least 200ms (100ms each way)", d, err)
	}
	p.setFault(APIFault{RefusePercent: 100}, true)
	if _, err := roundTrip(open); err == nil {
		t.Fatal("a connection open before a reset still works")
	}
	refused := dial()
	defer refused.Close()
	if _, err := roundTrip(refused); err == nil {
		t.Fatal("a new connection was not refused")
	}
	p.setFault(APIFault{}, false)
	healthy := dial()
	defer healthy.Close()
	if _, err := roundTrip(healthy); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}
