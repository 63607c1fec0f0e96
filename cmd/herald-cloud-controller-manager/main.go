// Command herald-cloud-controller-manager is the upstream
// cloud-controller-manager (k8s.io/cloud-provider/app) with Herald's cloud
// provider, "herald", and only the service controller: it gives Services of
// type LoadBalancer without a loadBalancerClass addresses from Herald's
// IPPools, as a cloud's controller manager would. It takes the upstream
// command's flags (`--help` lists them); the cloud-config file
// (--cloud-config) is read by controller/cloudprovider.ParseConfig. See
// docs/install.md, "The cloud-controller-manager".
package main

import (
	"os"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go's metrics on /metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
)

func main() {
	os.Exit(cli.Run(newCommand(wait.NeverStop)))
}
