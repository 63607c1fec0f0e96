package speakerlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-dev/herald/config/v1alpha1"
	"github.com/herald-dev/herald/e2e/bgp"
	"github.com/herald-dev/herald/e2e/netlab"
)

// The BGP set-up of StartRouter.
const (
	// SecretNamespace is where the speakers read Secrets (they run with
	// --namespace=herald-system).
	SecretNamespace = "herald-system"
	// PasswordSecret holds the BGPPeer's password under "password".
	PasswordSecret = "bgp-password"
	// PeerName is the BGPPeer towards the router.
	PeerName = "tor"
	// RoutedPoolName is the IPPool over netlab.RoutedPoolV4, advertised
	// over BGP by the BGPAdvertisement of the same name.
	RoutedPoolName = "routed"
)

// StartRouter adds an FRR router (AS bgp.RouterASN, on the LAN at
// netlab.RouterHostNumber) with every node as a neighbour (AS bgp.NodeASN,
// hold time 9 s, TCP MD5 password), and writes the password Secret, the
// BGPPeer PeerName selecting every node, the IPPool RoutedPoolName and its
// BGPAdvertisement. The router's routes only live in bgpd (no zebra).
func (l *Lab) StartRouter(ctx context.Context, password string) (*netlab.Router, error) {
	return l.StartRouterWith(ctx, RouterOptions{Password: password})
}

// RouterOptions are StartRouterWith's choices.
type RouterOptions struct {
	// Password is the TCP MD5 password of every session.
	Password string
	// BFD runs BFD (300 ms x 3) on the router's sessions and in the BGPPeer.
	BFD bool
	// GracefulRestart turns graceful restart on in the BGPPeer (the router,
	// FRR, is a graceful restart helper by default).
	GracefulRestart bool
}

// StartRouterWith is StartRouter with BFD and graceful restart as chosen.
func (l *Lab) StartRouterWith(ctx context.Context, o RouterOptions) (*netlab.Router, error) {
	bgp.RequireFRR(l.T)
	h := l.addRouterHost()
	r := netlab.NewRouter(h)
	r.StartBGP(netlab.BGPConfig{ASN: bgp.RouterASN, Neighbors: l.routerNeighbors(o)})
	return r, l.writeBGPObjects(ctx, o, h.Addr4())
}

// StartBirdRouter is StartRouterWith with BIRD 2 as the router
// (netlab.BirdRouter) in place of FRR: the same address, neighbours (with
// BFD at 300 ms x 3 when asked for), Secret, BGPPeer, IPPool and
// BGPAdvertisement. BIRD installs the routes it learns into the router's
// kernel table, merging equal paths into multipath routes.
func (l *Lab) StartBirdRouter(ctx context.Context, o RouterOptions) (*netlab.BirdRouter, error) {
	netlab.RequireCommands(l.T, netlab.BirdPath, netlab.BirdcPath)
	h := l.addRouterHost()
	r := netlab.NewBirdRouter(h)
	r.Start(netlab.BirdConfig{ASN: bgp.RouterASN, Neighbors: l.routerNeighbors(o)})
	return r, l.writeBGPObjects(ctx, o, h.Addr4())
}

// addRouterHost adds the router's host on the LAN at netlab.RouterHostNumber.
func (l *Lab) addRouterHost() *netlab.Host {
	h := l.Net.AddHost("router")
	r4, r6 := netlab.LANAddrs(netlab.RouterHostNumber)
	h.Attach(l.ClientLink.Bridge, "eth0", r4, r6)
	return h
}

// routerNeighbors returns the router's neighbour entry per node: AS
// bgp.NodeASN, hold time 9 s, o's password and BFD.
func (l *Lab) routerNeighbors(o RouterOptions) []netlab.BGPNeighborConfig {
	var neighbors []netlab.BGPNeighborConfig
	for _, n := range l.Nodes {
		neighbors = append(neighbors, netlab.BGPNeighborConfig{
			Address: n.Addr4, ASN: bgp.NodeASN, Password: o.Password, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			BFD: o.BFD,
		})
	}
	return neighbors
}

// writeBGPObjects writes the password Secret, the BGPPeer PeerName towards
// routerAddr selecting every node, the IPPool RoutedPoolName and its
// BGPAdvertisement.
func (l *Lab) writeBGPObjects(ctx context.Context, o RouterOptions, routerAddr netip.Addr) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SecretNamespace}}
	if _, err := l.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("speakerlab: create namespace %s: %w", SecretNamespace, err)
	}
	if err := l.SetBGPPassword(ctx, o.Password); err != nil {
		return err
	}
	hc := l.Herald.HeraldV1alpha1()
	peer := &v1alpha1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: PeerName},
		Spec: v1alpha1.BGPPeerSpec{
			PeerAddress: routerAddr.String(), PeerASN: bgp.RouterASN, MyASN: bgp.NodeASN,
			HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
			PasswordSecretRef: &v1alpha1.SecretKeyReference{Name: PasswordSecret},
		},
	}
	if o.BFD {
		peer.Spec.BFD = &v1alpha1.BFDSettings{}
	}
	if o.GracefulRestart {
		peer.Spec.GracefulRestart = &v1alpha1.GracefulRestart{}
	}
	if _, err := hc.BGPPeers().Create(ctx, peer, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: create BGPPeer: %w", err)
	}
	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: RoutedPoolName}, Spec: v1alpha1.IPPoolSpec{Addresses: []string{netlab.RoutedPoolV4.String()}}}
	if _, err := hc.IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: create IPPool: %w", err)
	}
	ad := &v1alpha1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: RoutedPoolName}, Spec: v1alpha1.BGPAdvertisementSpec{IPPools: []string{RoutedPoolName}}}
	if _, err := hc.BGPAdvertisements().Create(ctx, ad, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("speakerlab: create BGPAdvertisement: %w", err)
	}
	return nil
}

// SetBGPPassword creates or updates the BGPPeer's password Secret.
func (l *Lab) SetBGPPassword(ctx context.Context, password string) error {
	api := l.Kube.CoreV1().Secrets(SecretNamespace)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: PasswordSecret}, Data: map[string][]byte{"password": []byte(password)}}
	_, err := api.Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = api.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("speakerlab: write Secret %s: %w", PasswordSecret, err)
	}
	return nil
}

// RoutedAddr returns the i-th address of the routed pool.
func RoutedAddr(i int) netip.Addr {
	a := netlab.RoutedPoolV4.Addr()
	for range i {
		a = a.Next()
	}
	return a
}

// NextHops returns the next hops of r's selected paths (best and
// multipath) to prefix, sorted; none when r has no route.
func NextHops(ctx context.Context, r *netlab.Router, prefix netip.Prefix) ([]netip.Addr, error) {
	route, ok, err := r.Route(ctx, prefix)
	if err != nil || !ok {
		return nil, err
	}
	var out []netip.Addr
	for _, p := range route.Paths {
		if p.Selected() {
			out = append(out, p.NextHops...)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}
