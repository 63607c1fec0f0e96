package report

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-dev/herald/config/v1alpha1"
)

var (
	descGossipKey = prometheus.NewDesc("herald_speaker_gossip_key",
		"1 for each gossip key this speaker decrypts with, by fingerprint (first 8 hex digits of its SHA-256) and whether it encrypts with it (primary true or false).",
		[]string{"fingerprint", "primary"}, nil)
	descGossipWaiting = prometheus.NewDesc("herald_speaker_gossip_key_rotation_waiting",
		"Gossip key rotation steps (use a new key, remove an old one) waiting for other speakers.", nil, nil)
	descGossipSecretInvalid = prometheus.NewDesc("herald_speaker_gossip_key_secret_invalid",
		"1 while the gossip key Secret's current content is invalid and not applied (the speaker keeps its keys), else 0.", nil, nil)
)

// RegisterGossipKeyMetrics exports the gossip keyring that keys returns
// (nil without encryption: nothing is exported), read at scrape time.
func RegisterGossipKeyMetrics(reg prometheus.Registerer, keys func() *v1alpha1.GossipKeyStatus) {
	reg.MustRegister(&gossipKeyCollector{keys: keys})
}

type gossipKeyCollector struct {
	keys func() *v1alpha1.GossipKeyStatus
}

func (c *gossipKeyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGossipKey
	ch <- descGossipWaiting
	ch <- descGossipSecretInvalid
}

func (c *gossipKeyCollector) Collect(ch chan<- prometheus.Metric) {
	k := c.keys()
	if k == nil {
		return
	}
	for _, fp := range k.Installed {
		primary := "false"
		if fp == k.Primary {
			primary = "true"
		}
		ch <- prometheus.MustNewConstMetric(descGossipKey, prometheus.GaugeValue, 1, fp, primary)
	}
	ch <- prometheus.MustNewConstMetric(descGossipWaiting, prometheus.GaugeValue, float64(len(k.Waiting)))
	invalid := 0.0
	if k.SecretProblem != "" {
		invalid = 1
	}
	ch <- prometheus.MustNewConstMetric(descGossipSecretInvalid, prometheus.GaugeValue, invalid)
}
