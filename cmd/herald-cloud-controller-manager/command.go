package main

import (
	"log/slog"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	cloud "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	ccmconfig "k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"

	"github.com/herald-dev/herald/controller/cloudprovider"
)

// Defaults Herald gives the upstream command, where the upstream's would not
// fit: the provider is Herald's, and the leader-election Lease lives in
// Herald's namespace (so its RBAC stays there), not in kube-system.
const (
	commandName         = "herald-cloud-controller-manager"
	defaultLeaseName    = "herald-cloud-controller-manager"
	defaultNamespace    = "herald-system"
	serviceControllerID = "service-controller"
)

// newCommand returns the upstream cloud-controller-manager command with
// Herald's provider registered and selected by default, and the service
// controller as its only controller, so that --controllers accepts only
// "service" (or its full name, service-lb-controller) and "*". It runs until
// stop is closed.
func newCommand(stop <-chan struct{}) *cobra.Command {
	cloudprovider.Register()
	opts, err := newOptions()
	if err != nil {
		// The upstream constructor fails only when its built-in defaults do
		// not convert, which no flag can cause.
		klog.Fatalf("%s: default options: %v", commandName, err)
	}
	cmd := app.NewCloudControllerManagerCommand(opts, initCloud, controllers(), controllerAliases(), cliflag.NamedFlagSets{}, stop)
	cmd.Use = commandName
	cmd.Long = "herald-cloud-controller-manager runs the upstream service controller (k8s.io/cloud-provider)\n" +
		"with Herald's cloud provider: Services of type LoadBalancer without a loadBalancerClass get\n" +
		"addresses from Herald's IPPools, and each address is recorded in Herald's AddressClaims.\n" +
		"Run it instead of a herald-controller that serves Services without a class."
	return cmd
}

// newOptions returns the upstream options with Herald's defaults.
func newOptions() (*options.CloudControllerManagerOptions, error) {
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		return nil, err
	}
	opts.KubeCloudShared.CloudProvider.Name = cloudprovider.ProviderName
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = defaultNamespace
	}
	opts.Generic.LeaderElection.ResourceName = defaultLeaseName
	opts.Generic.LeaderElection.ResourceNamespace = ns
	return opts, nil
}

// controllers is the service controller alone: Herald's provider implements
// only LoadBalancer, so the node, node-lifecycle and route controllers have
// nothing to do.
func controllers() map[string]app.ControllerInitFuncConstructor {
	c := app.DefaultInitFuncConstructors[names.ServiceLBController]
	c.InitContext.ClientName = serviceControllerID
	return map[string]app.ControllerInitFuncConstructor{names.ServiceLBController: c}
}

// controllerAliases are the upstream aliases of the controllers this command
// runs ("service"), so that naming another one is refused.
func controllerAliases() map[string]string {
	aliases := map[string]string{}
	for alias, name := range names.CCMControllerAliases() {
		if _, ok := controllers()[name]; ok {
			aliases[alias] = name
		}
	}
	return aliases
}

// initCloud builds the provider named by --cloud-provider from the
// --cloud-config file, after the upstream command has configured klog, and
// sends the provider's slog output to klog, so that the process writes one
// log stream in the format --logging-format chose. Unlike the upstream
// sample it does not require a cluster ID: Herald's addresses do not depend
// on one.
func initCloud(c *ccmconfig.CompletedConfig) cloud.Interface {
	slog.SetDefault(slog.New(logr.ToSlogHandler(klog.Background())))
	shared := c.ComponentConfig.KubeCloudShared.CloudProvider
	p, err := cloud.InitCloudProvider(shared.Name, shared.CloudConfigFile)
	if err != nil {
		klog.Fatalf("cloud provider %q could not be initialized: %v", shared.Name, err)
	}
	if p == nil {
		klog.Fatalf("cloud provider %q is not known: this command has only %q", shared.Name, cloudprovider.ProviderName)
	}
	return p
}
