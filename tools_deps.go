//go:build deps

// Package main pins modules the project needs before code imports them.
package main

import (
	_ "charm.land/bubbles/v2/spinner"
	_ "charm.land/bubbletea/v2"
	_ "charm.land/lipgloss/v2"
	_ "github.com/charmbracelet/x/exp/golden"
	_ "github.com/gopacket/gopacket/layers"
	_ "github.com/miekg/dns"
	_ "github.com/spf13/cobra"
	_ "k8s.io/cli-runtime/pkg/genericclioptions"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "k8s.io/client-go/tools/remotecommand"
	_ "k8s.io/kubelet/config/v1beta1"
	_ "sigs.k8s.io/yaml"
)
