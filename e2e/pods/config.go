package pods

import (
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/herald-dev/herald/e2e/netlab"
)

// containerdTOML is a node's containerd configuration: every directory under dir, the
// pods' network namespaces there too (not in /run/netns, which the machine's `ip netns`
// lists), Debian's runc, the lab's pause image, and restrict_oom_score_adj (the
// machine's processes lack CAP_SYS_RESOURCE: runc could not lower a sandbox's
// oom_score_adj).
func containerdTOML(dir, sock, binDir string) string {
	d := filepath.Join(dir, "containerd")
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[5]q

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = [%[6]q]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[7]q]
    conf_dir = %[8]q
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %[9]q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), sock, filepath.Join(d, "opt"), PauseImage,
		filepath.Join(d, "cdi"), binDir, filepath.Join(dir, "cni", "net.d"), runc)
}

// cniConflist is the pods' network on a node: the node's bridge cni0 (netlab's, which
// holds the first address of each pod subnet and routes them), addresses from the upper
// half of the node's pod subnets (netlab's own pods take the lower one), and default
// routes through the bridge.
func cniConflist(dir string, podCIDRs []netip.Prefix) string {
	v4, v6 := podCIDRs[0], podCIDRs[1]
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "herald-lab",
  "plugins": [{
    "type": "bridge",
    "bridge": "cni0",
    "isGateway": false,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "dataDir": %q,
      "ranges": [
        [{"subnet": %q, "rangeStart": %q, "rangeEnd": %q, "gateway": %q}],
        [{"subnet": %q, "rangeStart": %q, "rangeEnd": %q, "gateway": %q}]
      ],
      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
    }
  }]
}
`, filepath.Join(dir, "cni", "ipam"),
		v4.String(), netlab.NthAddr(v4.Addr(), 8).String(), netlab.NthAddr(v4.Addr(), 14).String(), v4.Addr().Next().String(),
		v6.String(), netlab.NthAddr(v6.Addr(), 0x100).String(), netlab.NthAddr(v6.Addr(), 0x1ff).String(), v6.Addr().Next().String())
}

// kubeletYAML is a node's kubelet configuration. failCgroupV1 is false because the
// machine's cgroups are v1 (hybrid); the cgroup root is the lab's own; the pods' logs
// and the volume plugins live under dir; the kubelet's API needs no authentication
// from inside the lab (nothing outside reaches it). The eviction thresholds are near
// zero: the lab's node shares the machine's disk with everything else on it, and the
// kubelet's default (evict when under 15% of the image filesystem is free) evicted
// the lab's pods on a 252 GB disk with 38 GB free, which says nothing about Herald.
func kubeletYAML(dir, sock, cgroupRoot string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: %q
containerRuntimeEndpoint: unix://%s
podLogsDir: %q
volumePluginDir: %q
healthzBindAddress: 127.0.0.1
healthzPort: 10248
port: 10250
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
  imagefs.inodesFree: 1%%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
`, cgroupRoot, sock, filepath.Join(dir, "pods"), filepath.Join(dir, "volume-plugins"))
}
