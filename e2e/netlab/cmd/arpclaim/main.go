// Command arpclaim plays a rogue host on a lab link: it claims IPv4 addresses with
// gratuitous ARP replies from its interface's MAC, again and again, as a compromised
// node or a misconfigured device does. It answers no request, so an ARP request shows
// only the legitimate owner while its neighbours' caches see the claims. It runs until
// it is killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mdlayher/arp"
)

func main() {
	iface := flag.String("interface", "eth0", "interface to claim the addresses on")
	addrs := flag.String("addr", "", "comma-separated IPv4 addresses to claim")
	every := flag.Duration("every", 200*time.Millisecond, "time between two claims")
	flag.Parse()
	if err := run(*iface, *addrs, *every); err != nil {
		fmt.Fprintln(os.Stderr, "arpclaim:", err)
		os.Exit(1)
	}
}

func run(iface, addrList string, every time.Duration) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	var addrs []netip.Addr
	for _, s := range strings.Split(addrList, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return fmt.Errorf("address %q: want IPv4", s)
		}
		addrs = append(addrs, a)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("open ARP on %s: %w", iface, err)
	}
	defer c.Close()
	broadcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	fmt.Printf("claiming %v from %s on %s\n", addrs, ifi.HardwareAddr, iface)
	for n := 0; ; n++ {
		for _, a := range addrs {
			p, err := arp.NewPacket(arp.OperationReply, ifi.HardwareAddr, a, broadcast, a)
			if err != nil {
				return err
			}
			if err := c.WriteTo(p, broadcast); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
		if n == 0 {
			fmt.Println("sent the first claims")
		}
		time.Sleep(every)
	}
}
