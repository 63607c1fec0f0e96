package main

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// writeCounts are the apiserver's write requests (POST, PUT, PATCH,
// DELETE) so far, by "VERB resource[/subresource]", from its own
// apiserver_request_total counter.
type writeCounts map[string]float64

var requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)

// apiserverWrites reads the apiserver's write counters from /metrics.
func apiserverWrites(ctx context.Context, kube kubernetes.Interface) (writeCounts, error) {
	body, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read apiserver metrics: %w", err)
	}
	out := writeCounts{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := requestTotal.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				labels[k] = strings.Trim(v, `"`)
			}
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE":
		default:
			continue
		}
		n, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		key := labels["verb"] + " " + labels["resource"]
		if s := labels["subresource"]; s != "" {
			key += "/" + s
		}
		out[key] += n
	}
	return out, sc.Err()
}

// perService describes the writes between before and after, per Service,
// leaving out the test's own Service creates.
func perService(before, after writeCounts, services int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		d := after[k] - before[k]
		if k == "POST services" {
			d -= float64(services)
		}
		if d <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", k, d/float64(services)))
	}
	return strings.Join(parts, ", ")
}
